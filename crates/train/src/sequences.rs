//! Training sequences: `BOS + prompt`, then `target + EOS`, with the loss on the second part only.
//!
//! **Tokenization.** The prompt and the target are tokenized separately (no special tokens)
//! and concatenated: `[BOS] + enc(prompt) + enc(target) + [EOS]`, and the loss mask is exactly
//! the length of `[BOS] + enc(prompt)`. Tokenizing `prompt + target` as one string can merge
//! tokens across the boundary (`"English:" + "Hallo"`), which makes any prompt-length mask
//! inexact; separate tokenization is also what inference sees, where the prompt is tokenized
//! alone and the model continues it token by token. (ALMA tokenizes the joined text and masks
//! BOS plus `len(enc(prompt)) − 1` tokens, leaving the last prompt token in the loss: a bug we
//! do not copy.)
//!
//! **Truncation.** A prompt longer than `max_source_length` (BOS included) loses tokens from the
//! end of its source text; the template's closing marker (`"\n{Tgt}:"`) is kept so the model
//! still sees where to start. A target longer than `max_target_length − 1` is cut, then EOS is
//! appended. A limit too small to hold the template itself is an error.

use anyhow::{bail, ensure, Result};
use datm_data::prompt::{Example, PromptTemplate};
use datm_lang::Direction;

/// Text → token ids without special tokens.
pub trait TokenEncoder {
    /// Token ids of `text`, no BOS/EOS added.
    fn token_ids(&self, text: &str) -> Result<Vec<u32>>;
}

impl TokenEncoder for datm_model::tokenizer::Tokenizer {
    fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text, false)
    }
}

/// One tokenized example.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sequence {
    /// `[BOS] + prompt + target + [EOS]`.
    pub ids: Vec<u32>,
    /// Tokens before the first labelled token (BOS and prompt).
    pub prompt_len: usize,
    /// The example's direction.
    pub direction: Direction,
}

impl Sequence {
    /// Tokens that carry a loss (target and EOS).
    pub fn target_len(&self) -> usize {
        self.ids.len() - self.prompt_len
    }

    /// `(position, label)` pairs: the hidden state at `position` predicts `label`.
    pub fn predictions(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        (self.prompt_len..self.ids.len()).map(|i| (i - 1, self.ids[i]))
    }
}

/// How examples become sequences.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SequenceLimits {
    /// Prompt tokens at most, BOS included.
    pub max_source_length: usize,
    /// Target tokens at most, EOS included.
    pub max_target_length: usize,
}

/// Turns examples into sequences with one tokenizer and special-token set.
pub struct SequenceBuilder<'a> {
    tokenizer: &'a dyn TokenEncoder,
    bos: Option<u32>,
    eos: u32,
    template: PromptTemplate,
    limits: SequenceLimits,
}

impl<'a> SequenceBuilder<'a> {
    /// A builder; `bos` is prepended when the model has one, `eos` ends every target.
    pub fn new(
        tokenizer: &'a dyn TokenEncoder,
        bos: Option<u32>,
        eos: u32,
        template: PromptTemplate,
        limits: SequenceLimits,
    ) -> Result<Self> {
        ensure!(
            limits.max_target_length >= 2,
            "--max-target-length must be at least 2 (a token and EOS)"
        );
        Ok(SequenceBuilder {
            tokenizer,
            bos,
            eos,
            template,
            limits,
        })
    }

    /// Tokenizes, masks and truncates one example.
    pub fn build(&self, ex: &Example) -> Result<Sequence> {
        let mut ids: Vec<u32> = self.bos.into_iter().collect();
        ids.extend(self.prompt_ids(ex)?);
        let prompt_len = ids.len();
        let mut target = self.tokenizer.token_ids(&ex.tgt)?;
        target.truncate(self.limits.max_target_length - 1);
        ids.extend(target);
        ids.push(self.eos);
        Ok(Sequence {
            ids,
            prompt_len,
            direction: ex.direction,
        })
    }

    /// Prompt tokens (without BOS), truncated inside the source text if too long.
    fn prompt_ids(&self, ex: &Example) -> Result<Vec<u32>> {
        let budget = self
            .limits
            .max_source_length
            .saturating_sub(usize::from(self.bos.is_some()));
        let ids = self.tokenizer.token_ids(&ex.prompt(self.template))?;
        if ids.len() <= budget {
            return Ok(ids);
        }
        let prompt = ex.prompt(self.template);
        let marker = self.template.key_word(ex.direction);
        let Some(head) = prompt.strip_suffix(marker.as_str()) else {
            bail!("prompt for {} does not end with {marker:?}", ex.direction)
        };
        let tail = self.tokenizer.token_ids(&marker)?;
        let empty = self
            .tokenizer
            .token_ids(&self.template.prompt(ex.direction, ""))?;
        ensure!(
            empty.len() <= budget,
            "--max-source-length {} cannot hold the {} prompt template ({} tokens with BOS)",
            self.limits.max_source_length,
            ex.direction,
            empty.len() + usize::from(self.bos.is_some())
        );
        let mut out = self.tokenizer.token_ids(head)?;
        out.truncate(budget - tail.len());
        out.extend(tail);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per character (code point), so lengths are easy to reason about.
    struct Chars;
    impl TokenEncoder for Chars {
        fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
            Ok(text.chars().map(|c| c as u32 + 10).collect())
        }
    }

    fn example(src: &str, tgt: &str) -> Example {
        Example {
            direction: "de-en".parse().unwrap(),
            src: src.into(),
            tgt: tgt.into(),
        }
    }

    fn builder(max_source_length: usize, max_target_length: usize) -> SequenceBuilder<'static> {
        let limits = SequenceLimits {
            max_source_length,
            max_target_length,
        };
        SequenceBuilder::new(&Chars, Some(1), 2, PromptTemplate::Alma, limits).unwrap()
    }

    #[test]
    fn mask_covers_bos_and_prompt_exactly() {
        let ex = example("Hallo", "Hi");
        let s = builder(256, 256).build(&ex).unwrap();
        let prompt = ex.prompt(PromptTemplate::Alma);
        assert_eq!(s.prompt_len, 1 + prompt.chars().count());
        assert_eq!(s.ids[0], 1);
        assert_eq!(
            &s.ids[s.prompt_len..],
            &[b'H' as u32 + 10, b'i' as u32 + 10, 2]
        );
        assert_eq!(s.target_len(), 3);
        let preds: Vec<_> = s.predictions().collect();
        assert_eq!(preds[0], (s.prompt_len - 1, b'H' as u32 + 10));
        assert_eq!(preds.last().unwrap(), &(s.ids.len() - 2, 2));
    }

    #[test]
    fn long_source_is_cut_inside_the_text_keeping_the_marker() {
        let full = example(&"x".repeat(100), "ok");
        let empty_len = PromptTemplate::Alma
            .prompt(full.direction, "")
            .chars()
            .count();
        let s = builder(1 + empty_len + 10, 256).build(&full).unwrap();
        assert_eq!(s.prompt_len, 1 + empty_len + 10);
        let marker: Vec<u32> = "\nEnglish:".chars().map(|c| c as u32 + 10).collect();
        assert!(s.ids[..s.prompt_len].ends_with(&marker));
    }

    #[test]
    fn long_target_is_cut_before_eos() {
        let s = builder(256, 4).build(&example("a", "abcdefgh")).unwrap();
        assert_eq!(s.target_len(), 4);
        assert_eq!(*s.ids.last().unwrap(), 2);
    }

    #[test]
    fn source_limit_below_template_is_an_error() {
        let err = builder(10, 256)
            .build(&example(&"x".repeat(50), "y"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot hold the de-en prompt template"),
            "{err}"
        );
    }
}
