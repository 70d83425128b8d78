//! Rebuilding a `tokenizers::Tokenizer` from GGUF metadata, the way HF transformers does
//! (`integrations/gguf/gguf_tokenizer_mapping.py`), so ids equal HF's for the same file:
//!
//! * `tokenizer.ggml.model == "llama"` (SentencePiece): a BPE with byte fallback whose merges
//!   are the file's, or derived from the vocabulary ([`super::merges`]): ranked by token score,
//!   or for Gemma files by position in the vocabulary (Gemma's scores do not follow its merge
//!   order), after respelling Gemma's all-space tokens ("  ") as "▁▁". Gemma splits on spaces
//!   after a `" " → "▁"` normalizer; other SentencePiece models use a first-word `Metaspace`.
//! * `tokenizer.ggml.model == "gpt2"`: byte-level BPE with the file's merges and GPT-2's regex
//!   split, or the split of a known `tokenizer.ggml.pre`.
//!
//! Control tokens become special added tokens, user-defined ones plain added tokens, and a
//! template post-processor adds BOS/EOS per `tokenizer.ggml.add_bos_token`/`add_eos_token`.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use super::{merges, SpecialIds};

/// The `tokenizer.ggml.model` values that can be rebuilt.
pub const SUPPORTED_GGUF_TOKENIZERS: &[&str] = &["llama (SentencePiece)", "gpt2 (byte-level BPE)"];

/// GGUF architectures whose SentencePiece vocabularies follow Gemma's conventions.
const GEMMA_ARCHS: &[&str] = &["gemma", "gemma2", "gemma3"];

/// GGUF token types (`tokenizer.ggml.token_type`).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex HF uses for a `tokenizer.ggml.pre` value, where it overrides GPT-2's.
fn pre_tokenizer_split(pre: &str) -> Option<&'static str> {
    match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => Some(LLAMA3_SPLIT),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => Some(QWEN2_SPLIT),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => Some(GPT4O_SPLIT),
        _ => None,
    }
}

/// The tokenizer entries of a GGUF file.
struct GgufVocab {
    model: String,
    pre: Option<String>,
    tokens: Vec<String>,
    scores: Option<Vec<f64>>,
    types: Option<Vec<i64>>,
    merges: Option<Vec<(String, String)>>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
}

impl GgufVocab {
    fn read(md: &HashMap<String, Value>) -> Result<Self> {
        let model = string(md, "tokenizer.ggml.model")?
            .ok_or_else(|| anyhow!("missing metadata tokenizer.ggml.model"))?;
        let tokens = array(md, "tokenizer.ggml.tokens", |v| v.to_string().ok().cloned())?
            .ok_or_else(|| anyhow!("missing metadata tokenizer.ggml.tokens"))?;
        let merges = array(md, "tokenizer.ggml.merges", |v| {
            let m = v.to_string().ok()?;
            let (l, r) = m.split_once(' ')?;
            Some((l.to_string(), r.to_string()))
        })?;
        let v = GgufVocab {
            pre: string(md, "tokenizer.ggml.pre")?,
            scores: array(md, "tokenizer.ggml.scores", float)?,
            types: array(md, "tokenizer.ggml.token_type", integer)?,
            merges,
            bos: id(md, "tokenizer.ggml.bos_token_id")?,
            eos: id(md, "tokenizer.ggml.eos_token_id")?,
            unk: id(md, "tokenizer.ggml.unknown_token_id")?,
            pad: id(md, "tokenizer.ggml.padding_token_id")?,
            add_bos: flag(md, "tokenizer.ggml.add_bos_token")?,
            add_eos: flag(md, "tokenizer.ggml.add_eos_token")?,
            model,
            tokens,
        };
        v.check()?;
        Ok(v)
    }

    fn check(&self) -> Result<()> {
        let n = self.tokens.len();
        for (key, len) in [
            ("tokenizer.ggml.scores", self.scores.as_ref().map(Vec::len)),
            (
                "tokenizer.ggml.token_type",
                self.types.as_ref().map(Vec::len),
            ),
        ] {
            if let Some(len) = len.filter(|&l| l != n) {
                bail!("{key} has {len} entries, expected {n} (one per token)");
            }
        }
        for (key, id) in [
            ("bos_token_id", self.bos),
            ("eos_token_id", self.eos),
            ("unknown_token_id", self.unk),
            ("padding_token_id", self.pad),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= n) {
                bail!("tokenizer.ggml.{key} = {id} is outside the vocabulary of {n} tokens");
            }
        }
        Ok(())
    }

    fn token(&self, id: Option<u32>) -> Option<&str> {
        id.map(|i| self.tokens[i as usize].as_str())
    }
}

/// Builds the tokenizer HF would build for this metadata, and its special ids.
pub(super) fn build(
    arch: &str,
    md: &HashMap<String, Value>,
) -> Result<(tokenizers::Tokenizer, SpecialIds)> {
    let v = GgufVocab::read(md)?;
    let gemma = GEMMA_ARCHS.contains(&arch);
    let mut tok = match v.model.as_str() {
        "llama" if gemma => gemma_sentencepiece(&v)?,
        "llama" => sentencepiece(&v)?,
        "gpt2" => byte_level(&v)?,
        other => bail!(
            "tokenizer.ggml.model {other:?} is not supported (supported: {})",
            SUPPORTED_GGUF_TOKENIZERS.join(", ")
        ),
    };
    add_special_tokens(&mut tok, &v, gemma)?;
    if let Some(split) = v.pre.as_deref().and_then(pre_tokenizer_split) {
        let split = Split::new(
            SplitPattern::Regex(split.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| anyhow!("split regex: {e}"))?;
        let seq = PreSequence::new(vec![
            split.into(),
            ByteLevel::new(false, true, false).into(),
        ]);
        tok.with_pre_tokenizer(Some(seq));
    }
    // HF: SentencePiece files add BOS unless they say otherwise; nothing is added without a BOS.
    let add_bos = v.add_bos.unwrap_or(v.model == "llama") && v.bos.is_some();
    let add_eos = v.add_eos.unwrap_or(false) && v.eos.is_some();
    tok.with_post_processor(Some(template(&v, add_bos, add_eos)?));
    let special = SpecialIds {
        bos: v.bos,
        eos: v.eos.into_iter().collect(),
        pad: v.pad,
        add_bos,
    };
    Ok((tok, special))
}

/// HF `TokenizersBackend.update_post_processor`: `[BOS] $A [EOS]`, pair `… [BOS]:1 $B:1 [EOS]:1`.
fn template(v: &GgufVocab, add_bos: bool, add_eos: bool) -> Result<TemplateProcessing> {
    let bos = v.token(v.bos).filter(|_| add_bos);
    let eos = v.token(v.eos).filter(|_| add_eos);
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Vec::new();
    for (type_id, seq) in [(0, "$A"), (1, "$B")] {
        let target = if type_id == 0 { &mut single } else { &mut pair };
        if let Some(b) = bos {
            target.push(format!("{b}:{type_id}"));
        }
        target.push(format!("{seq}:{type_id}"));
        if let Some(e) = eos {
            target.push(format!("{e}:{type_id}"));
        }
    }
    let pair: Vec<String> = single.iter().cloned().chain(pair).collect();
    if let (Some(b), Some(id)) = (bos, v.bos) {
        specials.push((b.to_string(), id));
    }
    if let (Some(e), Some(id)) = (eos, v.eos) {
        specials.push((e.to_string(), id));
    }
    TemplateProcessing::builder()
        .try_single(single)
        .map_err(|e| anyhow!("template: {e}"))?
        .try_pair(pair)
        .map_err(|e| anyhow!("template: {e}"))?
        .special_tokens(specials)
        .build()
        .map_err(|e| anyhow!("template: {e}"))
}

/// A BPE model over `tokens` (later duplicates win, as in a Python dict).
fn bpe(tokens: Vec<String>, merges: Vec<(String, String)>, spm: bool) -> Result<BPE> {
    let mut vocab = Vocab::default();
    vocab.reserve(tokens.len());
    for (i, t) in tokens.into_iter().enumerate() {
        vocab.insert(t, i as u32);
    }
    let builder = BPE::builder().vocab_and_merges(vocab, merges);
    let builder = if spm {
        builder
            .unk_token("<unk>".into())
            .fuse_unk(true)
            .byte_fallback(true)
    } else {
        builder
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix(String::new())
            .fuse_unk(false)
    };
    builder.build().map_err(|e| anyhow!("building BPE: {e}"))
}

/// Token → id, later duplicates winning.
fn token_ids(tokens: &[String]) -> merges::TokenIds<'_> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u32))
        .collect()
}

/// Distinct tokens in first-seen order with the score of their last occurrence (a Python dict
/// built from the token list); `ids` is [`token_ids`] of `tokens`.
fn scored_tokens<'a>(
    tokens: &'a [String],
    ids: &merges::TokenIds<'a>,
    score: impl Fn(usize) -> f64,
) -> Vec<(&'a str, f64)> {
    if ids.len() == tokens.len() {
        // No duplicates (the rule): every token in place.
        return tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), score(i)))
            .collect();
    }
    let mut seen = foldhash::HashSet::default();
    tokens
        .iter()
        .filter(|t| seen.insert(t.as_str()))
        .map(|t| (t.as_str(), score(ids[t.as_str()] as usize)))
        .collect()
}

/// The file's merges, or those implied by the tokens' scores (`score(i)`: token `i`'s), which
/// a file without merges must have.
fn merges_or_derived(
    v: &GgufVocab,
    tokens: &[String],
    score: Option<impl Fn(usize) -> f64>,
) -> Result<Vec<(String, String)>> {
    if let Some(m) = &v.merges {
        return Ok(m.clone());
    }
    let score =
        score.context("SentencePiece vocabulary without tokenizer.ggml.scores or merges")?;
    let ids = token_ids(tokens);
    Ok(merges::from_scores(
        &ids,
        &scored_tokens(tokens, &ids, score),
    ))
}

/// SentencePiece decoding: `▁` → space, byte tokens → bytes.
fn spm_decoders() -> Vec<DecoderWrapper> {
    vec![
        Replace::new("▁", " ").expect("literal pattern").into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ]
}

/// HF `gemma_tokenizer`: all-space tokens respelled, merges ranked by vocabulary position.
fn gemma_sentencepiece(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let tokens: Vec<String> = v
        .tokens
        .iter()
        .map(|t| {
            if t.contains(' ') && t.trim().is_empty() {
                "▁".repeat(t.chars().count())
            } else {
                t.clone()
            }
        })
        .collect();
    let merges = merges_or_derived(v, &tokens, Some(|i: usize| -(i as f64)))?;
    let mut tok = tokenizers::Tokenizer::new(bpe(tokens, merges, true)?);
    tok.with_normalizer(Some(Replace::new(" ", "▁").map_err(|e| anyhow!("{e}"))?))
        .map_err(|e| anyhow!("{e}"))?;
    let split = Split::new(" ", SplitDelimiterBehavior::MergedWithPrevious, false)
        .map_err(|e| anyhow!("{e}"))?;
    tok.with_pre_tokenizer(Some(split));
    tok.with_decoder(Some(DecoderSequence::new(spm_decoders())));
    Ok(tok)
}

/// HF `sentencepiece_tokenizer` with `LlamaTokenizer`: merges ranked by score, first-word
/// `Metaspace`, and a decoder that strips the prefix space.
fn sentencepiece(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let scores = v.scores.as_deref();
    let merges = merges_or_derived(v, &v.tokens, scores.map(|s| move |i: usize| s[i]))?;
    let mut tok = tokenizers::Tokenizer::new(bpe(v.tokens.clone(), merges, true)?);
    tok.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::First, false)));
    let mut decoders = spm_decoders();
    decoders.push(Strip::new(' ', 1, 0).into());
    tok.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tok)
}

/// HF `byte_level_tokenizer` with `GPT2Tokenizer`.
fn byte_level(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let alphabet = byte_alphabet();
    let in_alphabet: std::collections::HashSet<char> = alphabet.iter().copied().collect();
    let tokens: Vec<String> = v
        .tokens
        .iter()
        .map(|t| {
            if t.chars().all(|c| in_alphabet.contains(&c)) {
                t.clone()
            } else {
                t.bytes().map(|b| alphabet[b as usize]).collect()
            }
        })
        .collect();
    let merges = v
        .merges
        .clone()
        .context("gpt2 vocabulary without tokenizer.ggml.merges")?;
    let mut tok = tokenizers::Tokenizer::new(bpe(tokens, merges, false)?);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tok)
}

/// GPT-2's printable spelling of each byte (`bytes_to_unicode`).
fn byte_alphabet() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).expect("latin-1")
            } else {
                next += 1;
                char::from_u32(next - 1).expect("below surrogates")
            }
        })
        .collect()
}

/// HF `add_gguf_special_tokens`, then the special tokens the tokenizer class registers (BOS, EOS,
/// UNK, PAD, and Gemma's `<mask>`, which gets a new id when the vocabulary lacks it): control
/// tokens become special added tokens, user-defined tokens found in the vocabulary plain added
/// tokens, all matched before normalization.
fn add_special_tokens(tok: &mut tokenizers::Tokenizer, v: &GgufVocab, gemma: bool) -> Result<()> {
    let types = v.types.as_deref().unwrap_or(&[]);
    let byte_level = v.model == "gpt2";
    let alphabet: std::collections::HashSet<char> = byte_alphabet().into_iter().collect();
    let control: Vec<AddedToken> = v
        .tokens
        .iter()
        .zip(types)
        .filter(|(t, &ty)| {
            ty == CONTROL && (!byte_level || t.chars().all(|c| alphabet.contains(&c)))
        })
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(control)
        .map_err(|e| anyhow!("adding control tokens: {e}"))?;
    let user: Vec<AddedToken> = v
        .tokens
        .iter()
        .zip(types)
        .filter(|(t, &ty)| ty == USER_DEFINED && tok.token_to_id(t).is_some())
        .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    tok.add_tokens(user)
        .map_err(|e| anyhow!("adding user-defined tokens: {e}"))?;
    let named = [v.bos, v.eos, v.unk, v.pad]
        .into_iter()
        .filter_map(|id| v.token(id))
        .chain(gemma.then_some("<mask>"))
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect::<Vec<_>>();
    tok.add_special_tokens(named)
        .map_err(|e| anyhow!("adding special tokens: {e}"))?;
    Ok(())
}

fn string(md: &HashMap<String, Value>, key: &str) -> Result<Option<String>> {
    md.get(key)
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| anyhow!("metadata {key}: {e}"))
        })
        .transpose()
}

fn id(md: &HashMap<String, Value>, key: &str) -> Result<Option<u32>> {
    md.get(key)
        .map(|v| {
            integer(v)
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| anyhow!("metadata {key}: expected a token id"))
        })
        .transpose()
}

fn flag(md: &HashMap<String, Value>, key: &str) -> Result<Option<bool>> {
    md.get(key)
        .map(|v| v.to_bool().map_err(|e| anyhow!("metadata {key}: {e}")))
        .transpose()
}

fn array<T>(
    md: &HashMap<String, Value>,
    key: &str,
    item: impl Fn(&Value) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    let Some(v) = md.get(key) else {
        return Ok(None);
    };
    let items = v.to_vec().map_err(|e| anyhow!("metadata {key}: {e}"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            item(x)
                .ok_or_else(|| anyhow!("metadata {key}[{i}]: unexpected type {:?}", x.value_type()))
        })
        .collect::<Result<Vec<T>>>()
        .map(Some)
}

/// Any GGUF integer value.
pub(crate) fn integer(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

/// Any GGUF float value, as f64.
pub(crate) fn float(v: &Value) -> Option<f64> {
    match v {
        Value::F32(x) => Some(*x as f64),
        Value::F64(x) => Some(*x),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scored_tokens_follow_a_python_dict() {
        let tokens: Vec<String> = ["a", "b", "a", "c"].map(String::from).into();
        let ids = token_ids(&tokens);
        assert_eq!(ids["a"], 2, "later duplicates win");
        // First-seen order, the last occurrence's score.
        let scored = scored_tokens(&tokens, &ids, |i| i as f64 * 10.0);
        assert_eq!(scored, [("a", 20.0), ("b", 10.0), ("c", 30.0)]);
        let unique = &tokens[1..];
        let scored = scored_tokens(unique, &token_ids(unique), |i| i as f64);
        assert_eq!(scored, [("b", 0.0), ("a", 1.0), ("c", 2.0)]);
    }
}
