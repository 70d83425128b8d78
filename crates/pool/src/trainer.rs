//! The datm-train library as the pool's [`AdapterTrainer`]: one base model per worker,
//! loaded once and reused for every adapter that worker trains.

use std::sync::Mutex;

use anyhow::{Context, Result};
use datm_model::Model;
use datm_train::metrics::{EvalRecord, StepRecord};
use datm_train::progress::Progress;
use datm_train::trainer::ADAPTER_NAME;
use datm_train::TrainConfig;
use sha2::{Digest, Sha256};

use crate::train::{AdapterTrainer, TrainJob};

/// Trains adapters with datm-train. `base` holds every setting but the per-adapter
/// directions, data and output directory, which each job fills in; jobs always resume
/// from their own checkpoints when present.
pub struct LibraryTrainer {
    base: TrainConfig,
    /// Loaded models not in use, with the device each lives on.
    idle_models: Mutex<Vec<(String, Model)>>,
    log_every: usize,
}

impl LibraryTrainer {
    /// A trainer over `base`; progress lines every `log_every` steps (0: only start/end).
    pub fn new(base: TrainConfig, log_every: usize) -> LibraryTrainer {
        LibraryTrainer {
            base,
            idle_models: Mutex::new(Vec::new()),
            log_every,
        }
    }

    /// The run configuration of one job.
    pub fn job_config(&self, job: &TrainJob) -> TrainConfig {
        let mut cfg = self.base.clone();
        cfg.directions = job.adapter.directions.clone();
        cfg.data = job.data_dir.clone();
        cfg.out = job.out_dir.clone();
        cfg.resume = true;
        if let Some(d) = &job.device {
            cfg.device = d.clone();
        }
        cfg
    }

    /// An idle model on `device`, or a newly loaded one.
    fn take_model(&self, device: &str) -> Result<Model> {
        let mut idle = self.idle_models.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = idle.iter().position(|(d, _)| d == device) {
            return Ok(idle.swap_remove(i).1);
        }
        drop(idle);
        datm_train::load_model(&self.base.model, self.base.precision, device)
    }
}

impl AdapterTrainer for LibraryTrainer {
    fn train(&self, job: &TrainJob) -> Result<()> {
        let cfg = self.job_config(job);
        let data = datm_train::data::load(&cfg.data, &cfg.directions)?;
        let mut model = self.take_model(&cfg.device)?;
        let mut progress = JobProgress {
            id: &job.adapter.id,
            every: self.log_every,
        };
        let result = datm_train::train_model(&mut model, &data, &cfg, &mut progress);
        model.detach_adapter(ADAPTER_NAME);
        self.idle_models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((cfg.device.clone(), model));
        result.map(|_| ())
    }

    /// SHA-256 over the run configuration (output folder and data path aside), the base
    /// model file's identity (path, size, modification time) and the examples themselves.
    fn training_key(&self, job: &TrainJob) -> Result<Option<String>> {
        let mut cfg = self.job_config(job);
        let data = datm_train::data::load(&cfg.data, &cfg.directions)?;
        cfg.out = Default::default();
        cfg.data = Default::default();
        cfg.resume = false;
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&cfg)?);
        h.update(model_identity(&self.base.model)?);
        h.update(serde_json::to_vec(&data.train)?);
        h.update(serde_json::to_vec(&data.valid)?);
        Ok(Some(format!("{:x}", h.finalize())))
    }

    /// Dequantized weights (4 bytes per parameter, estimated from the file size of a
    /// 4-bit GGUF or the safetensors of an HF directory) plus activations, as a rough
    /// bound: 8 × the model's size on disk.
    fn memory_bytes(&self, _job: &TrainJob) -> u64 {
        8 * disk_size(&self.base.model)
    }
}

/// The base model's canonical path with the size and modification time of its file (or of
/// each file of an HF directory).
fn model_identity(path: &std::path::Path) -> Result<Vec<u8>> {
    let canonical = std::fs::canonicalize(path)
        .with_context(|| format!("reading base model {}", path.display()))?;
    let mut files = vec![canonical.clone()];
    if canonical.is_dir() {
        files = std::fs::read_dir(&canonical)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.sort();
    }
    let mut id = Vec::new();
    for f in files {
        let meta = std::fs::metadata(&f)?;
        let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?;
        id.extend(format!("{}\0{}\0{}\n", f.display(), meta.len(), mtime.as_nanos()).bytes());
    }
    Ok(id)
}

fn disk_size(path: &std::path::Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// Plain progress lines prefixed with the adapter id (several adapters may train at once).
struct JobProgress<'a> {
    id: &'a str,
    every: usize,
}

impl Progress for JobProgress<'_> {
    fn start(&mut self, total: usize, done: usize) {
        eprintln!("[{}] training: {total} steps ({done} done)", self.id);
    }
    fn step(&mut self, r: &StepRecord, total: usize) {
        if self.every > 0 && (r.step.is_multiple_of(self.every) || r.step == total) {
            eprintln!(
                "[{}] step {}/{total} loss {:.4} lr {:.2e} {:.0} tok/s",
                self.id,
                r.step,
                r.loss,
                r.lr,
                r.tokens as f64 / r.seconds.max(1e-9)
            );
        }
    }
    fn eval(&mut self, r: &EvalRecord) {
        eprintln!(
            "[{}] step {} validation loss {:.4}",
            self.id, r.step, r.loss
        );
    }
    fn message(&mut self, text: &str) {
        eprintln!("[{}] {text}", self.id);
    }
    fn finish(&mut self) {
        eprintln!("[{}] done", self.id);
    }
}
