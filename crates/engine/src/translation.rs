//! Translation settings: ALMA prompts (truncated as in training), decoding, output cleaning.

use std::sync::Arc;

use anyhow::{Context, Result};
use datm_data::{Example, PromptTemplate};
use datm_lang::{paper, Direction};
use datm_model::{GenerationConfig, Model};
use datm_train::sequences::{SequenceBuilder, SequenceLimits};

use crate::LineStop;

/// How sources become prompts and generations become translations (paper §2.4 / ALMA's
/// evaluation: deterministic beam 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Translation {
    /// Prompt template.
    pub template: PromptTemplate,
    /// Beams (1 = greedy).
    pub num_beams: usize,
    /// Generated tokens at most.
    pub max_new_tokens: usize,
    /// Prompt tokens at most (BOS included); longer sources are truncated as in training.
    pub max_source_length: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
    /// Finish a row at the end of its first non-blank line ([`LineStop`]), after which ALMA's
    /// cleaning throws everything away.
    pub stop_at_newline: bool,
}

impl Default for Translation {
    fn default() -> Self {
        Translation {
            template: PromptTemplate::Alma,
            num_beams: paper::NUM_BEAMS,
            max_new_tokens: paper::MAX_NEW_TOKENS,
            max_source_length: paper::MAX_SOURCE_LENGTH,
            batch_size: 8,
            stop_at_newline: true,
        }
    }
}

impl Translation {
    /// The decoding settings for rows on `adapter` (`None` = the base model).
    pub fn generation(&self, adapter: Option<&str>) -> GenerationConfig {
        let mut cfg = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            num_beams: self.num_beams,
            batch_size: self.batch_size,
            adapter: adapter.map(str::to_string),
            ..GenerationConfig::default()
        };
        if self.stop_at_newline {
            cfg.stops.push(Arc::new(LineStop));
        }
        cfg
    }

    /// ALMA's cleaning of a generation (the decoded new tokens) in `direction`.
    pub fn clean(&self, direction: Direction, generated: &str) -> String {
        self.template.clean_output(direction, generated)
    }

    /// ALMA prompt token ids (after the BOS the tokenizer adds, if any), truncated inside the
    /// source as the trainer truncates.
    pub(crate) fn prompt_ids(
        &self,
        model: &Model,
        direction: Direction,
        source: &str,
    ) -> Result<Vec<u32>> {
        let cfg = model.config();
        let tok = model.tokenizer()?;
        let eos = cfg
            .eos_token_ids
            .first()
            .or(model.eos_token_ids().first())
            .copied()
            .context("the model defines no EOS token")?;
        // BOS only where the tokenizer adds it, as HF's `tokenizer(prompt)` (ALMA's inference)
        // does; the prompt is otherwise built and truncated as the trainer builds it.
        let bos = tok
            .encode("", true)?
            .first()
            .copied()
            .filter(|&t| Some(t) == cfg.bos_token_id);
        let limits = SequenceLimits {
            max_source_length: self.max_source_length,
            max_target_length: 2,
        };
        let builder = SequenceBuilder::new(tok, bos, eos, self.template, limits)?;
        let seq = builder.build(&Example {
            direction,
            src: source.to_string(),
            tgt: String::new(),
        })?;
        Ok(seq.ids[..seq.prompt_len].to_vec())
    }
}
