//! Batch translation of test splits through a pool: router → adapter → beam search,
//! with ALMA prompts (truncated as in training) and ALMA's output cleaning.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use datm_data::{Example, PromptTemplate};
use datm_lang::{paper, Direction};
use datm_model::{generate, GenerationConfig, LoadOptions, Model};
use datm_train::sequences::{SequenceBuilder, SequenceLimits};

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
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            num_beams: paper::NUM_BEAMS,
            max_new_tokens: paper::MAX_NEW_TOKENS,
            max_source_length: paper::MAX_SOURCE_LENGTH,
            batch_size: 8,
            quantized: true,
        }
    }
}

/// A base model with the pool adapters it has attached so far.
pub struct Translator {
    model: Model,
    template: PromptTemplate,
    decoding: Decoding,
    attached: BTreeSet<String>,
}

impl Translator {
    /// Loads the base model (HF directory or `.gguf`).
    pub fn load(model: &Path, template: PromptTemplate, decoding: Decoding) -> Result<Translator> {
        let opts = LoadOptions {
            quantized: decoding.quantized,
            ..LoadOptions::default()
        };
        let mut model = Model::load(model, &opts)
            .with_context(|| format!("loading base model {}", model.display()))?;
        model.pack_for_inference()?;
        Ok(Translator {
            model,
            template,
            decoding,
            attached: BTreeSet::new(),
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
        let name = adapter.map(|a| self.attach(a)).transpose()?;
        let prompts = self.prompts(direction, sources)?;
        let cfg = GenerationConfig {
            max_new_tokens: self.decoding.max_new_tokens,
            num_beams: self.decoding.num_beams,
            batch_size: self.decoding.batch_size,
            adapter: name,
            ..GenerationConfig::default()
        };
        let generations = generate(&self.model, &prompts, &cfg, on_done)
            .with_context(|| format!("decoding {direction}"))?;
        let tok = self.model.tokenizer()?;
        generations
            .iter()
            .map(|g| {
                let text = tok.decode(&g.token_ids, true)?;
                Ok(self.template.clean_output(direction, &text))
            })
            .collect()
    }

    fn attach(&mut self, adapter: &AdapterRef) -> Result<String> {
        if !self.attached.contains(&adapter.id) {
            let loaded = datm_adapter::Adapter::load(&adapter.path).with_context(|| {
                format!(
                    "loading adapter {:?} from {}",
                    adapter.id,
                    adapter.path.display()
                )
            })?;
            self.model
                .attach_adapter(&adapter.id, &loaded)
                .with_context(|| format!("attaching adapter {:?}", adapter.id))?;
            self.attached.insert(adapter.id.clone());
        }
        Ok(adapter.id.clone())
    }

    /// Prompt token ids: BOS + ALMA prompt, truncated inside the source exactly as the
    /// trainer truncates training prompts.
    fn prompts(&self, direction: Direction, sources: &[String]) -> Result<Vec<Vec<u32>>> {
        let cfg = self.model.config();
        let eos = cfg
            .eos_token_ids
            .first()
            .or(self.model.eos_token_ids().first())
            .copied()
            .context("the model defines no EOS token")?;
        let limits = SequenceLimits {
            max_source_length: self.decoding.max_source_length,
            max_target_length: 2,
        };
        let builder = SequenceBuilder::new(
            self.model.tokenizer()?,
            cfg.bos_token_id,
            eos,
            self.template,
            limits,
        )?;
        sources
            .iter()
            .map(|src| {
                let ex = Example {
                    direction,
                    src: src.clone(),
                    tgt: String::new(),
                };
                let seq = builder.build(&ex)?;
                Ok(seq.ids[..seq.prompt_len].to_vec())
            })
            .collect()
    }
}
