//! The engine: one loaded base model with its resident adapters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datm_adapter::Adapter;
use datm_lang::Direction;
use datm_model::generate::Decoder;
use datm_model::{generate, generate_each, Generation, GenerationConfig, Model};

use crate::journal::{fingerprint, job_key};
use crate::{JobJournal, LoadSpec, Translation};

/// A base model loaded once, with PEFT adapters resident under their ids.
pub struct Engine {
    model: Model,
    /// Resident adapters: id → the directory each was loaded from.
    adapters: BTreeMap<String, PathBuf>,
    /// What the results depend on besides the adapters and the settings: the model file(s),
    /// how they were loaded, the kernel path.
    identity: String,
}

/// A decoded prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct TextGeneration {
    /// Prompt token ids (special tokens included).
    pub prompt_ids: Vec<u32>,
    /// New token ids (EOS included if produced).
    pub token_ids: Vec<u32>,
    /// New tokens decoded, special tokens skipped.
    pub text: String,
}

impl Engine {
    /// Loads the base model (HF directory or `.gguf`) and packs it for inference.
    pub fn load(path: &Path, spec: &LoadSpec) -> Result<Engine> {
        let load = if spec.int8 {
            Model::load_with_int8_products
        } else {
            Model::load_for_inference
        };
        let model = load(path, &spec.options())
            .with_context(|| format!("loading base model {}", path.display()))?;
        let isa = datm_model::cpu::active().map_or_else(|e| e.to_string(), |i| i.to_string());
        let identity = format!("{}\n{spec:?}\nkernels {isa}", fingerprint(path));
        Ok(Engine {
            model,
            adapters: BTreeMap::new(),
            identity,
        })
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Loads the PEFT adapter in `dir` and makes it resident as `id`, replacing an adapter of
    /// that id.
    pub fn attach(&mut self, id: &str, dir: &Path) -> Result<()> {
        let adapter = Adapter::load(dir)
            .with_context(|| format!("loading adapter {id:?} from {}", dir.display()))?;
        self.model.attach_adapter(id, &adapter).with_context(|| {
            format!(
                "adapter {id:?} ({}) does not fit {}",
                dir.display(),
                self.model.source().display()
            )
        })?;
        self.adapters.insert(id.to_string(), dir.to_path_buf());
        Ok(())
    }

    /// [`Engine::attach`] unless `id` is already resident.
    pub fn ensure_attached(&mut self, id: &str, dir: &Path) -> Result<()> {
        if self.adapters.contains_key(id) {
            return Ok(());
        }
        self.attach(id, dir)
    }

    /// Drops a resident adapter; returns whether it was resident.
    pub fn detach(&mut self, id: &str) -> bool {
        self.adapters.remove(id);
        self.model.detach_adapter(id)
    }

    /// Resident adapters: id → the directory each was loaded from.
    pub fn adapters(&self) -> &BTreeMap<String, PathBuf> {
        &self.adapters
    }

    /// Tokenizes text prompts as HF's `tokenizer(text)` does (the model's special tokens added).
    pub fn encode(&self, prompts: &[String]) -> Result<Vec<Vec<u32>>> {
        let tok = self.model.tokenizer()?;
        prompts.iter().map(|p| tok.encode(p, true)).collect()
    }

    /// Decodes token prompts and detokenizes the new tokens (special tokens skipped).
    /// `on_done` gets the number of prompts finished so far.
    pub fn generate_texts(
        &self,
        prompts: &[Vec<u32>],
        cfg: &GenerationConfig,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<TextGeneration>> {
        let gens = generate(&self.model, prompts, cfg, on_done)?;
        gens.into_iter().map(|g| self.text_generation(g)).collect()
    }

    /// Opens the journal at `path` of decoding `prompts` with `cfg` on this engine
    /// ([`Engine::generate_texts_journaled`]): the prompts an earlier run of the same job
    /// finished, if the file holds its journal. The job is everything the results depend
    /// on: the model file(s) (path, sizes, modification times), how they were loaded, the
    /// kernel path, the adapter's files, the settings and the prompts; a file of another
    /// job is replaced.
    pub fn open_journal(
        &self,
        path: &Path,
        prompts: &[Vec<u32>],
        cfg: &GenerationConfig,
    ) -> Result<JobJournal> {
        let adapter = match &cfg.adapter {
            Some(id) => Some(
                self.adapters
                    .get(id)
                    .with_context(|| format!("no resident adapter {id:?}"))?,
            ),
            None => None,
        };
        let key = job_key(&self.identity, adapter.map(PathBuf::as_path), prompts, cfg);
        JobJournal::open(path, &key, prompts)
    }

    /// [`Engine::generate_texts`] for the job of `journal` ([`Engine::open_journal`]):
    /// the prompts it holds are not decoded again, and each prompt that finishes is
    /// recorded in it before the next one can.
    pub fn generate_texts_journaled(
        &self,
        prompts: &[Vec<u32>],
        cfg: &GenerationConfig,
        journal: &mut JobJournal,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<TextGeneration>> {
        let todo: Vec<usize> = (0..prompts.len())
            .filter(|&i| journal.get(i).is_none())
            .collect();
        let rest: Vec<Vec<u32>> = todo.iter().map(|&i| prompts[i].clone()).collect();
        let mut done = prompts.len() - todo.len();
        on_done(done);
        generate_each(&self.model, &rest, cfg, &mut |i, g| {
            journal.record(todo[i], self.text_generation(g)?)?;
            done += 1;
            on_done(done);
            Ok(())
        })?;
        (0..prompts.len())
            .map(|i| journal.get(i).cloned().context("a prompt was not decoded"))
            .collect()
    }

    /// A continuous batch on this model (see [`Decoder`]): prompts of any resident adapter
    /// join at step boundaries and leave when finished.
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder::new(&self.model, 0)
    }

    /// A generation with its new tokens detokenized (special tokens skipped).
    pub fn text_generation(&self, g: Generation) -> Result<TextGeneration> {
        Ok(TextGeneration {
            text: self.model.tokenizer()?.decode(&g.token_ids, true)?,
            prompt_ids: g.prompt_ids,
            token_ids: g.token_ids,
        })
    }

    /// Translates `sources` in `direction` with the resident adapter `adapter` (`None` = the
    /// base model): ALMA prompts, decoding with `settings`, ALMA's output cleaning.
    pub fn translate(
        &self,
        adapter: Option<&str>,
        direction: Direction,
        sources: &[String],
        settings: &Translation,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<String>> {
        let prompts = self.translation_prompts(settings, direction, sources)?;
        let cfg = settings.generation(adapter);
        let gens = self
            .generate_texts(&prompts, &cfg, on_done)
            .with_context(|| format!("decoding {direction}"))?;
        Ok(gens
            .iter()
            .map(|g| settings.clean(direction, &g.text))
            .collect())
    }

    /// The prompt token ids of `sources` ([`Engine::translation_prompt`]).
    pub fn translation_prompts(
        &self,
        settings: &Translation,
        direction: Direction,
        sources: &[String],
    ) -> Result<Vec<Vec<u32>>> {
        sources
            .iter()
            .map(|s| self.translation_prompt(settings, direction, s))
            .collect()
    }

    /// The prompt token ids of one source: the ids of HF's `tokenizer(prompt)` (BOS where the
    /// tokenizer adds one), truncated inside the source text exactly as the trainer
    /// truncates training prompts.
    pub fn translation_prompt(
        &self,
        settings: &Translation,
        direction: Direction,
        source: &str,
    ) -> Result<Vec<u32>> {
        settings.prompt_ids(&self.model, direction, source)
    }
}
