//! SentencePiece segmentation for sacrebleu's `spm`/`flores101`, `flores200` and
//! `spBLEU-1K` tokenizers, which are `" ".join(sp.EncodeAsPieces(line))` with a
//! SentencePiece model file.
//!
//! [`SentencePiece::load`] reads a real `.model` file (a protobuf `ModelProto`) and
//! [`SentencePiece::encode_as_pieces`] reproduces the C++ library's `EncodeAsPieces`
//! as of sentencepiece 0.2.3 (the reference of `tests/spm_differential.rs`): the
//! precompiled-charsmap normalizer with its whitespace switches, user-defined symbols,
//! unigram (Viterbi) / BPE (score-ordered merges) / word / char models, unused pieces,
//! unknown characters (consecutive ones merged into one piece) and byte fallback
//! (`<0xXX>` pieces). Sampling, n-best and the encode extra options (`bos`, `eos`,
//! `reverse`, `unk`) are not part of it: sacrebleu uses none of them.
//!
//! sacrebleu loads the models from `$SACREBLEU/models` (default `~/.sacrebleu/models`)
//! under these file names: `sacrebleu_tokenizer_spm.model` (`spm`, `flores101`),
//! `flores200sacrebleuspm` (`flores200`; the base name of its tinyurl download
//! address) and `spbleu-1k_tokenizer_spm.model` (`spBLEU-1K`).
//!
//! ```no_run
//! use datm_metrics::spm::SentencePiece;
//! let sp = SentencePiece::load("flores200sacrebleuspm".as_ref()).unwrap();
//! assert_eq!(sp.tokenize("Hello world"), "▁Hello ▁world");
//! ```

mod bpe;
mod charsmap;
mod normalizer;
pub mod proto;
mod trie;
mod unigram;
mod vocab;

use std::path::Path;

use anyhow::{bail, Context, Result};
use prost::Message;

use normalizer::{Normalizer, SPACE_SYMBOL};
use proto::{ModelProto, PieceType};
use unigram::Unigram;
use vocab::{Id, Vocab};

/// A loaded SentencePiece model.
#[derive(Debug, Clone)]
pub struct SentencePiece {
    normalizer: Normalizer,
    vocab: Vocab,
    model: Model,
    byte_fallback: bool,
}

/// The segmentation algorithm of a model (`TrainerSpec.model_type`).
#[derive(Debug, Clone)]
enum Model {
    Unigram(Unigram),
    Bpe,
    Word,
    Char,
}

impl SentencePiece {
    /// Loads a `.model` file. Errors name the file and say what is wrong with it
    /// (missing, not a `ModelProto`, an inconsistent vocabulary, an unknown model type,
    /// broken normalization rules).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the SentencePiece model {}", path.display()))?;
        Self::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable SentencePiece model", path.display()))
    }

    /// Parses the bytes of a `.model` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let proto = ModelProto::decode(bytes)
            .context("not a SentencePiece ModelProto (protobuf decoding failed)")?;
        Self::from_proto(&proto)
    }

    /// Builds a segmenter from a decoded model.
    pub fn from_proto(proto: &ModelProto) -> Result<Self> {
        if proto.pieces.is_empty() {
            bail!("not a SentencePiece ModelProto: it has no pieces");
        }
        let trainer = proto.trainer_spec.clone().unwrap_or_default();
        let byte_fallback = trainer.byte_fallback();
        let model_type = trainer.model_type();
        if !(1..=4).contains(&model_type) {
            bail!("model type {model_type} is not one of UNIGRAM (1), BPE (2), WORD (3), CHAR (4)");
        }
        let vocab = Vocab::new(&proto.pieces, byte_fallback, model_type == 2)?;
        let model = match model_type {
            1 => Model::Unigram(Unigram::new(&vocab)?),
            2 => Model::Bpe,
            3 => Model::Word,
            _ => Model::Char,
        };
        let normalizer =
            Normalizer::new(&proto.normalizer_spec.clone().unwrap_or_default(), &trainer)?;
        Ok(Self {
            normalizer,
            vocab,
            model,
            byte_fallback,
        })
    }

    /// The pieces of one line, as the Python `SentencePieceProcessor.EncodeAsPieces`
    /// returns them.
    pub fn encode_as_pieces(&self, line: &str) -> Vec<String> {
        let text = self.normalizer.normalize(line, self.vocab.user_defined());
        let segments = match &self.model {
            Model::Unigram(unigram) => unigram.encode(&self.vocab, &text),
            Model::Bpe => bpe::encode(&self.vocab, &text),
            Model::Word => self.encode_words(&text),
            Model::Char => self.encode_chars(&text),
        };
        self.surface_pieces(&segments)
    }

    /// sacrebleu's tokenization: the pieces joined by single spaces.
    pub fn tokenize(&self, line: &str) -> String {
        self.encode_as_pieces(line).join(" ")
    }

    /// Turns model output into the pieces the library reports: unknown pieces are
    /// spelled as byte pieces under byte fallback, else runs of them are merged.
    fn surface_pieces(&self, segments: &[(&str, Id)]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(segments.len());
        let mut prev_unknown = false;
        for &(piece, id) in segments {
            let unknown = self.vocab.kind(id) == PieceType::Unknown;
            if unknown && self.byte_fallback {
                out.extend(piece.bytes().map(|b| format!("<0x{b:02X}>")));
            } else if unknown && prev_unknown {
                if let Some(last) = out.last_mut() {
                    last.push_str(piece);
                }
            } else {
                out.push(piece.to_string());
            }
            prev_unknown = unknown;
        }
        out
    }

    /// `word::Model`: a new piece starts at the beginning and at every `▁`; pieces
    /// not in the vocabulary (or unused) are unknown.
    fn encode_words<'a>(&self, text: &'a str) -> Vec<(&'a str, Id)> {
        let mut starts: Vec<usize> = text.match_indices(SPACE_SYMBOL).map(|(i, _)| i).collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        starts.push(text.len());
        starts
            .windows(2)
            .filter(|w| w[0] < w[1])
            .map(|w| &text[w[0]..w[1]])
            .map(|w| (w, self.vocab.usable_or_unk(w)))
            .collect()
    }

    /// `character::Model`: one piece per character (user-defined symbols whole);
    /// characters not in the vocabulary (or unused) are unknown.
    fn encode_chars<'a>(&self, text: &'a str) -> Vec<(&'a str, Id)> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (len, _) = self.vocab.prefix_match(rest);
            let (piece, tail) = rest.split_at(len);
            out.push((piece, self.vocab.usable_or_unk(piece)));
            rest = tail;
        }
        out
    }
}

#[cfg(test)]
mod tests;
