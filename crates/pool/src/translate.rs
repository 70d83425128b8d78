//! Batch translation of test splits through a pool: router → adapter → the engine
//! ([`datm_engine`]: ALMA prompts truncated as in training, beam search, ALMA's cleaning).

use std::path::Path;

use anyhow::{Context, Result};
use datm_data::PromptTemplate;
use datm_engine::{Engine, JobJournal, LoadSpec, Translation};
use datm_lang::Direction;
use datm_model::candle_core::{DType, Device};

use crate::AdapterRef;

/// Decoding settings (paper §2.4 / ALMA eval: deterministic beam 5).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Decoding {
    /// Beams.
    pub num_beams: usize,
    /// Generated tokens at most.
    pub max_new_tokens: usize,
    /// Prompt tokens at most (BOS included); longer sources are truncated as in training.
    pub max_source_length: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
    /// Keep GGUF weights quantized for decoding (fast); `false` dequantizes to f32.
    pub quantized: bool,
    /// Finish a sentence at the end of its first non-blank line (ALMA's cleaning drops the
    /// rest); see [`datm_engine::LineStop`].
    pub stop_at_newline: bool,
}

impl Default for Decoding {
    fn default() -> Self {
        let t = Translation::default();
        Decoding {
            num_beams: t.num_beams,
            max_new_tokens: t.max_new_tokens,
            max_source_length: t.max_source_length,
            batch_size: t.batch_size,
            quantized: true,
            stop_at_newline: t.stop_at_newline,
        }
    }
}

impl Decoding {
    /// The engine's translation settings for `template`.
    pub fn translation(&self, template: PromptTemplate) -> Translation {
        Translation {
            template,
            num_beams: self.num_beams,
            max_new_tokens: self.max_new_tokens,
            max_source_length: self.max_source_length,
            batch_size: self.batch_size,
            stop_at_newline: self.stop_at_newline,
        }
    }

    /// How the base model is loaded on `device` (f32 when not quantized).
    pub fn load_spec(&self, device: &Device) -> LoadSpec {
        LoadSpec {
            device: device.clone(),
            dtype: (!self.quantized).then_some(DType::F32),
            int8: false,
        }
    }
}

/// A base model with the pool adapters it has attached so far.
pub struct Translator {
    engine: Engine,
    settings: Translation,
}

impl Translator {
    /// Loads the base model (HF directory or `.gguf`) onto `device`. The device is where
    /// the work runs, not part of the decoding settings (nor of their cache fingerprint).
    pub fn load(
        model: &Path,
        template: PromptTemplate,
        decoding: Decoding,
        device: &Device,
    ) -> Result<Translator> {
        Ok(Translator {
            engine: Engine::load(model, &decoding.load_spec(device))?,
            settings: decoding.translation(template),
        })
    }

    /// Translates `sources` in `direction`, with `adapter` (attached on first use) or the
    /// base model when `None`. `on_done` gets the number of sentences finished so far.
    pub fn translate(
        &mut self,
        adapter: Option<&AdapterRef>,
        direction: Direction,
        sources: &[String],
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<String>> {
        if let Some(a) = adapter {
            self.engine.ensure_attached(&a.id, &a.path)?;
        }
        let id = adapter.map(|a| a.id.as_str());
        self.engine
            .translate(id, direction, sources, &self.settings, on_done)
    }

    /// [`Translator::translate`], keeping each finished sentence in the journal at
    /// `journal` ([`Engine::open_journal`]), from which a run that was stopped resumes;
    /// returns the journal too, to be removed once the translations are stored.
    pub fn translate_journaled(
        &mut self,
        adapter: Option<&AdapterRef>,
        direction: Direction,
        sources: &[String],
        journal: &Path,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<(Vec<String>, JobJournal)> {
        if let Some(a) = adapter {
            self.engine.ensure_attached(&a.id, &a.path)?;
        }
        let prompts = self
            .engine
            .translation_prompts(&self.settings, direction, sources)?;
        let cfg = self.settings.generation(adapter.map(|a| a.id.as_str()));
        let mut journal = self.engine.open_journal(journal, &prompts, &cfg)?;
        let gens = self
            .engine
            .generate_texts_journaled(&prompts, &cfg, &mut journal, on_done)
            .with_context(|| format!("decoding {direction}"))?;
        let hyps = gens
            .iter()
            .map(|g| self.settings.clean(direction, &g.text))
            .collect();
        Ok((hyps, journal))
    }
}
