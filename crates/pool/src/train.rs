//! Training every adapter of a pool: skip finished adapters, let the trainer resume
//! interrupted ones, run several at once within `jobs` and a memory budget (a cluster runs
//! them as a Slurm job array instead: `slurm`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::{AdapterSpec, PoolError, PoolPlan};

/// File the trainer writes next to a finished adapter (its run record); with the adapter
/// files it marks the adapter as done.
pub const TRAINING_RECORD: &str = "training.json";

/// One adapter to train.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The adapter (id, directions, training files).
    pub adapter: AdapterSpec,
    /// Directory the adapter is written to (`<pool>/<id>`); checkpoints live below it.
    pub out_dir: PathBuf,
    /// The ALMA-layout data directory.
    pub data_dir: PathBuf,
}

/// Something that trains one adapter (the datm-train library in the binary; a fake in
/// tests). It must resume from checkpoints under `job.out_dir` when present, and write
/// the PEFT adapter plus [`TRAINING_RECORD`] into `job.out_dir` at the end.
pub trait AdapterTrainer: Sync {
    /// Trains one adapter to completion.
    fn train(&self, job: &TrainJob) -> anyhow::Result<()>;

    /// Estimated peak memory of one job in bytes, for the memory budget (0: unknown).
    fn memory_bytes(&self, _job: &TrainJob) -> u64 {
        0
    }
}

/// Scheduling options of [`train_pool`].
#[derive(Debug, Clone)]
pub struct PoolTrainOptions {
    /// Most adapters trained at once.
    pub jobs: usize,
    /// Memory budget in bytes shared by running jobs; a job that alone exceeds it still
    /// runs, alone.
    pub memory_budget: Option<u64>,
    /// Train only these adapter ids (all trained adapters when empty).
    pub only: Vec<String>,
}

impl Default for PoolTrainOptions {
    fn default() -> Self {
        PoolTrainOptions {
            jobs: 1,
            memory_budget: None,
            only: Vec::new(),
        }
    }
}

/// What [`train_pool`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainSummary {
    /// Adapters trained (or resumed) in this call.
    pub trained: Vec<String>,
    /// Adapters already finished before the call.
    pub skipped: Vec<String>,
}

/// Whether `dir` holds a finished adapter: config, weights and the training record.
pub fn is_finished(dir: &Path) -> bool {
    [
        "adapter_config.json",
        "adapter_model.safetensors",
        TRAINING_RECORD,
    ]
    .iter()
    .all(|f| dir.join(f).is_file())
}

/// The jobs of a plan: its trained (not merged) adapters, filtered by `only`.
pub fn jobs(
    plan: &PoolPlan,
    pool_dir: &Path,
    data_dir: &Path,
    only: &[String],
) -> Result<Vec<TrainJob>, PoolError> {
    if let Some(id) = only.iter().find(|id| plan.adapter(id).is_none()) {
        return Err(PoolError::Plan(format!(
            "--only {id:?}: no such adapter in the plan"
        )));
    }
    Ok(plan
        .adapters
        .iter()
        .filter(|a| a.is_trained() && (only.is_empty() || only.contains(&a.id)))
        .map(|a| TrainJob {
            adapter: a.clone(),
            out_dir: pool_dir.join(&a.id),
            data_dir: data_dir.to_path_buf(),
        })
        .collect())
}

/// Trains the plan's adapters into `pool_dir` (the caller saves the manifest). Finished
/// adapters are skipped; failures of some adapters do not stop the others
/// and are reported together at the end.
pub fn train_pool(
    plan: &PoolPlan,
    pool_dir: &Path,
    data_dir: &Path,
    trainer: &dyn AdapterTrainer,
    options: &PoolTrainOptions,
) -> Result<TrainSummary, PoolError> {
    plan.check_data(data_dir)?;
    let all = jobs(plan, pool_dir, data_dir, &options.only)?;
    let (done, todo): (Vec<TrainJob>, Vec<TrainJob>) =
        all.into_iter().partition(|j| is_finished(&j.out_dir));
    let summary = TrainSummary {
        skipped: done.into_iter().map(|j| j.adapter.id).collect(),
        trained: todo.iter().map(|j| j.adapter.id.clone()).collect(),
    };
    let failures = run_scheduled(todo, trainer, options);
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(PoolError::Plan(format!(
            "{} adapter(s) failed to train: {}",
            failures.len(),
            failures.join("; ")
        )))
    }
}

/// A counting budget: holders take `cost` units and wait while the total would exceed it
/// (unless nothing else runs).
struct Budget {
    limit: Option<u64>,
    used: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    fn acquire(&self, cost: u64) {
        let Some(limit) = self.limit else { return };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + cost > limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += cost;
    }

    fn release(&self, cost: u64) {
        if self.limit.is_none() {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= cost;
        self.freed.notify_all();
    }
}

fn run_scheduled(
    todo: Vec<TrainJob>,
    trainer: &dyn AdapterTrainer,
    options: &PoolTrainOptions,
) -> Vec<String> {
    let workers = options.jobs.max(1).min(todo.len().max(1));
    let queue = Mutex::new(VecDeque::from(todo));
    let budget = Budget {
        limit: options.memory_budget,
        used: Mutex::new(0),
        freed: Condvar::new(),
    };
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let cost = trainer.memory_bytes(&job);
                budget.acquire(cost);
                let result = trainer.train(&job);
                budget.release(cost);
                let outcome = result.and_then(|()| {
                    if is_finished(&job.out_dir) {
                        Ok(())
                    } else {
                        anyhow::bail!(
                            "the trainer returned but {} holds no finished adapter",
                            job.out_dir.display()
                        )
                    }
                });
                if let Err(e) = outcome {
                    let msg = format!("{} ({}): {e:#}", job.adapter.id, directions(&job.adapter));
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    failures
}

fn directions(a: &AdapterSpec) -> String {
    a.directions
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
