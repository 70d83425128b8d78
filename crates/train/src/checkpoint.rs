//! Checkpoints: `checkpoint-{step}/` under the output directory, holding the PEFT adapter,
//! the optimizer moments (`optimizer.safetensors`) and `trainer_state.json`.
//!
//! A checkpoint is written into a hidden temporary directory, synced, and renamed into place,
//! so a run killed at any moment leaves either a complete checkpoint or none. Only the last
//! `keep` checkpoints are kept. Everything random in training derives from the seed and the step
//! number, so the step number is the whole data position and RNG state.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use datm_adapter::Adapter;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "checkpoint-";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "trainer_state.json";

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: usize,
    /// Steps the run will take in total.
    pub total_steps: usize,
    /// The seed everything random derives from (with the step number).
    pub seed: u64,
    /// Fingerprint of the training configuration and data; a resume must match it.
    pub run_fingerprint: String,
    /// Training metrics so far.
    pub metrics: crate::metrics::Metrics,
    /// The f16 loss scaler's state (none at other precisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<crate::optim::LossScaler>,
}

/// A checkpoint read back from disk.
pub struct Checkpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// The adapter at that step.
    pub adapter: Adapter,
    /// Optimizer state tensors.
    pub optimizer: HashMap<String, Tensor>,
    /// Bookkeeping.
    pub state: TrainerState,
}

/// Writes `checkpoint-{step}` atomically, then deletes all but the newest `keep` checkpoints.
pub fn save(
    out: &Path,
    adapter: &Adapter,
    optimizer: &HashMap<String, Tensor>,
    state: &TrainerState,
    keep: usize,
) -> Result<PathBuf> {
    let final_dir = out.join(format!("{PREFIX}{}", state.step));
    let tmp = out.join(format!(".{PREFIX}{}.tmp", state.step));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    adapter.save(&tmp)?;
    let opt: HashMap<String, Tensor> = optimizer
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&opt, tmp.join(OPTIMIZER_FILE))
        .with_context(|| format!("cannot write {}", tmp.join(OPTIMIZER_FILE).display()))?;
    let state_file = tmp.join(STATE_FILE);
    fs::write(&state_file, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("cannot write {}", state_file.display()))?;
    datm_fsio::publish_dir(&tmp, &final_dir)?;
    for (_, old) in list(out)?.iter().rev().skip(keep) {
        fs::remove_dir_all(old)
            .with_context(|| format!("cannot delete old checkpoint {}", old.display()))?;
    }
    Ok(final_dir)
}

/// Complete checkpoints under `out`, oldest first.
pub fn list(out: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut found = Vec::new();
    if !out.is_dir() {
        return Ok(found);
    }
    for entry in fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(step) = name
            .strip_prefix(PREFIX)
            .and_then(|s| s.parse::<usize>().ok())
        {
            if path.join(STATE_FILE).is_file() {
                found.push((step, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The newest complete checkpoint under `out`, if any.
pub fn latest(out: &Path) -> Result<Option<Checkpoint>> {
    let Some((_, dir)) = list(out)?.pop() else {
        return Ok(None);
    };
    load(&dir).map(Some)
}

/// Reads one checkpoint directory.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let state_path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&state_path)
        .with_context(|| format!("cannot read {}", state_path.display()))?;
    let state: TrainerState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a trainer state", state_path.display()))?;
    let adapter = Adapter::load(dir)?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    if !opt_path.is_file() {
        bail!("{}: missing optimizer state", opt_path.display());
    }
    let optimizer = candle_core::safetensors::load(&opt_path, &Device::Cpu)
        .with_context(|| format!("{}: unreadable optimizer state", opt_path.display()))?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        adapter,
        optimizer,
        state,
    })
}
