//! Tokenizers: HF `tokenizer.json` directories and tokenizers rebuilt from GGUF metadata.
//!
//! [`Tokenizer`] wraps a `tokenizers::Tokenizer` and knows the model's special ids: BOS, the
//! end-of-sequence ids generation stops on (Gemma-3 checkpoints may list several, e.g. `<eos>` and
//! `<end_of_turn>`, in `generation_config.json`), PAD, and whether BOS is added when encoding with
//! special tokens. GGUF tokenizers are rebuilt the way HF transformers' GGUF conversion builds
//! them (see [`gguf`]), so token ids equal HF's for the same file.

mod gguf;
mod merges;

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::Value as Json;

pub use gguf::SUPPORTED_GGUF_TOKENIZERS;
pub(crate) use gguf::{float as gguf_float, integer as gguf_integer};

/// Parses the bytes of an HF `tokenizer.json` (`origin` names it in errors). The tokenizers
/// crate panics on some malformed files (a decoder object with a syntax error inside:
/// `expect` in its `DecoderWrapper` deserializer); that panic is caught and becomes an
/// error, so a bad download cannot abort datm.
pub fn parse_tokenizer_json(bytes: &[u8], origin: &str) -> Result<tokenizers::Tokenizer> {
    let t = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(bytes))
        .map_err(|_| anyhow!("{origin}: cannot load tokenizer: malformed tokenizer.json (the tokenizers crate panicked)"))?
        .map_err(|e| anyhow!("{origin}: cannot load tokenizer: {e}"))?;
    // The tokenizers crate trusts parts of the file it loads: a post-processor template that
    // names a special token the file does not define loads, then panics at every encode with
    // special tokens. One probe encode and decode refuses such files here, by name.
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ids = t.encode("a", true).map(|e| e.get_ids().to_vec());
        ids.map(|ids| t.decode(&ids, false))
    }));
    if probe.is_err() {
        anyhow::bail!(
            "{origin}: cannot load tokenizer: malformed tokenizer.json (the tokenizers crate \
             panicked encoding a probe text; e.g. a post-processor template naming a special \
             token the file does not define)"
        );
    }
    Ok(t)
}

/// The special token ids a model uses for prompting and generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialIds {
    /// Beginning-of-sequence id, if the model has one.
    pub bos: Option<u32>,
    /// Ids that end generation (HF `generation_config.eos_token_id`, which may be a list).
    pub eos: Vec<u32>,
    /// Padding id, if any.
    pub pad: Option<u32>,
    /// Whether encoding with special tokens prepends BOS.
    pub add_bos: bool,
}

/// A text tokenizer with the model's special ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialIds,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

impl Tokenizer {
    /// Wraps an already built tokenizer. Padding and truncation are switched off: callers pad.
    pub fn new(mut inner: tokenizers::Tokenizer, special: SpecialIds) -> Result<Self> {
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| anyhow!("disabling truncation: {e}"))?;
        Ok(Tokenizer { inner, special })
    }

    /// Loads `tokenizer.json` from an HF model directory, with the special ids from
    /// `generation_config.json`, `config.json`, `tokenizer_config.json` and
    /// `special_tokens_map.json` (first found wins, in that order, as HF `generate` does).
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let inner = parse_tokenizer_json(&bytes, &path.display().to_string())?;
        let files = HfSpecialFiles::read(dir)?;
        let bos = files.id("bos_token_id", "bos_token", &inner);
        let eos = files.eos_ids(&inner);
        let pad = files.id("pad_token_id", "pad_token", &inner);
        let mut tok = Tokenizer::new(
            inner,
            SpecialIds {
                bos,
                eos,
                pad,
                add_bos: false,
            },
        )?;
        tok.special.add_bos = tok.detect_add_bos()?;
        Ok(tok)
    }

    /// Rebuilds the tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`) for a model
    /// of GGUF architecture `arch`, as HF transformers does. `origin` names the file in errors.
    pub fn from_gguf_metadata(
        arch: &str,
        metadata: &std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>,
        origin: &str,
    ) -> Result<Self> {
        let (inner, special) =
            gguf::build(arch, metadata).with_context(|| format!("{origin}: GGUF tokenizer"))?;
        Tokenizer::new(inner, special)
    }

    /// Token ids of `text`; with `add_special`, the model's BOS (and whatever its post-processor
    /// adds) is included, as HF `tokenizer(text)` does.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| anyhow!("cannot tokenize {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; with `skip_special`, special tokens (BOS, EOS, control tokens) are dropped.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| anyhow!("cannot decode {} ids: {e}", ids.len()))
    }

    /// The ids that end generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.special.eos
    }

    /// Whether `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.special.eos.contains(&id)
    }

    /// The BOS id, if any.
    pub fn bos_id(&self) -> Option<u32> {
        self.special.bos
    }

    /// The padding id, if any.
    pub fn pad_id(&self) -> Option<u32> {
        self.special.pad
    }

    /// Whether `encode(text, true)` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.special.add_bos
    }

    /// All special ids.
    pub fn special_ids(&self) -> &SpecialIds {
        &self.special
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Writes the tokenizer as an HF `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow!("{}: cannot write tokenizer: {e}", path.display()))
    }

    fn detect_add_bos(&self) -> Result<bool> {
        let Some(bos) = self.special.bos else {
            return Ok(false);
        };
        let with = self.encode("a", true)?;
        let without = self.encode("a", false)?;
        Ok(with.first() == Some(&bos) && without.first() != Some(&bos))
    }
}

/// The JSON files of an HF directory that name special tokens, most authoritative first.
struct HfSpecialFiles {
    /// `generation_config.json`, `config.json` (ids).
    id_files: Vec<Json>,
    /// `tokenizer_config.json`, `special_tokens_map.json` (token strings).
    token_files: Vec<Json>,
}

impl HfSpecialFiles {
    fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Option<Json>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON", path.display()))?;
            Ok(Some(json))
        };
        let id_files = ["generation_config.json", "config.json"];
        let token_files = ["tokenizer_config.json", "special_tokens_map.json"];
        let mut out = HfSpecialFiles {
            id_files: vec![],
            token_files: vec![],
        };
        for name in id_files {
            out.id_files.extend(read(name)?);
        }
        for name in token_files {
            out.token_files.extend(read(name)?);
        }
        Ok(out)
    }

    /// A single id from the id files, else the id of the token named in the token files.
    fn id(&self, id_key: &str, token_key: &str, tok: &tokenizers::Tokenizer) -> Option<u32> {
        self.ids(id_key)
            .and_then(|v| v.first().copied())
            .or_else(|| self.token_id(token_key, tok))
    }

    fn eos_ids(&self, tok: &tokenizers::Tokenizer) -> Vec<u32> {
        self.ids("eos_token_id")
            .or_else(|| self.token_id("eos_token", tok).map(|id| vec![id]))
            .unwrap_or_default()
    }

    fn ids(&self, key: &str) -> Option<Vec<u32>> {
        self.id_files.iter().find_map(|f| match f.get(key)? {
            Json::Number(n) => Some(vec![n.as_u64()? as u32]),
            Json::Array(a) => a.iter().map(|v| v.as_u64().map(|x| x as u32)).collect(),
            _ => None,
        })
    }

    fn token_id(&self, key: &str, tok: &tokenizers::Tokenizer) -> Option<u32> {
        self.token_files.iter().find_map(|f| {
            let content = match f.get(key)? {
                Json::String(s) => s.as_str(),
                Json::Object(o) => o.get("content")?.as_str()?,
                _ => return None,
            };
            tok.token_to_id(content)
        })
    }
}
