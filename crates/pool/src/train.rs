//! Training every adapter of a pool: skip finished adapters, let the trainer resume
//! interrupted ones, run several at once within `jobs` and a memory budget (a cluster runs
//! them as a Slurm job array instead: `slurm`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::{AdapterSpec, PoolError, PoolPlan};

/// File the trainer writes next to a finished adapter (its run record); with the adapter
/// files it marks the adapter as done.
pub const TRAINING_RECORD: &str = "training.json";

/// File holding a finished adapter's training key ([`AdapterTrainer::training_key`]): an
/// adapter of another strategy with the same key is copied from it instead of trained.
pub const TRAINING_KEY: &str = "training-key";

/// The PEFT adapter's files; with [`TRAINING_RECORD`] they make a finished adapter.
const ADAPTER_FILES: [&str; 2] = ["adapter_config.json", "adapter_model.safetensors"];

/// One adapter to train.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The adapter (id, directions, training files).
    pub adapter: AdapterSpec,
    /// Directory the adapter is written to (`<pool>/<id>`); checkpoints live below it.
    pub out_dir: PathBuf,
    /// The ALMA-layout data directory.
    pub data_dir: PathBuf,
    /// The device the scheduler gave this job (`cuda:1`), or `None` for the trainer's own.
    pub device: Option<String>,
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

    /// A hash of everything that determines the trained adapter (base model, examples,
    /// settings, seed; not the adapter's id or folder), or `None` when unknown. Jobs with
    /// equal keys are trained once: `separate`'s `de-en` and DAT's `xx-en.de` are one
    /// training.
    fn training_key(&self, _job: &TrainJob) -> anyhow::Result<Option<String>> {
        Ok(None)
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
    /// One worker per device (`cuda:0`, `cuda:1`, …), each training one adapter at a time
    /// from the shared queue; replaces `jobs` when not empty.
    pub devices: Vec<String>,
    /// Times a failed adapter goes back to the queue before it is reported.
    pub retries: usize,
}

impl Default for PoolTrainOptions {
    fn default() -> Self {
        PoolTrainOptions {
            jobs: 1,
            memory_budget: None,
            only: Vec::new(),
            devices: Vec::new(),
            retries: 1,
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
    /// Adapters copied from an adapter of the pool with the same training key, as
    /// `(id, copied from)`.
    pub reused: Vec<(String, String)>,
}

/// Whether `dir` holds a finished adapter: config, weights and the training record.
pub fn is_finished(dir: &Path) -> bool {
    ADAPTER_FILES
        .iter()
        .chain([&TRAINING_RECORD])
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
            device: None,
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
    let mut known = finished_keys(pool_dir);
    let mut train = Vec::new();
    let mut copies = Vec::new();
    for job in todo {
        let key = trainer
            .training_key(&job)
            .map_err(|e| PoolError::Plan(format!("{}: {e:#}", job.adapter.id)))?;
        match key {
            Some(k) => match known.get(&k) {
                Some(from) => copies.push((job, from.clone(), k)),
                None => {
                    known.insert(k.clone(), job.out_dir.clone());
                    train.push((job, Some(k)));
                }
            },
            None => train.push((job, None)),
        }
    }
    let summary = TrainSummary {
        skipped: done.into_iter().map(|j| j.adapter.id).collect(),
        trained: train.iter().map(|(j, _)| j.adapter.id.clone()).collect(),
        reused: copies
            .iter()
            .map(|(j, from, _)| (j.adapter.id.clone(), folder_name(from)))
            .collect(),
    };
    let mut failures = run_scheduled(train, trainer, options);
    for (job, from, key) in &copies {
        if let Err(e) = copy_adapter(from, &job.out_dir, key) {
            failures.push(format!(
                "{}: reusing {}: {e}",
                job.adapter.id,
                from.display()
            ));
        }
    }
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

/// The training keys of the finished adapters under `pool_dir`, to their folders.
fn finished_keys(pool_dir: &Path) -> HashMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(pool_dir) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|dir| is_finished(dir))
        .filter_map(|dir| {
            let key = std::fs::read_to_string(dir.join(TRAINING_KEY)).ok()?;
            Some((key.trim().to_string(), dir))
        })
        .collect()
}

/// Copies the finished adapter in `from` to `to`, with its training key.
fn copy_adapter(from: &Path, to: &Path, key: &str) -> std::io::Result<()> {
    if !is_finished(from) {
        return Err(std::io::Error::other("it did not finish training"));
    }
    std::fs::create_dir_all(to)?;
    for f in ADAPTER_FILES {
        std::fs::copy(from.join(f), to.join(f))?;
    }
    std::fs::write(to.join(TRAINING_KEY), key)?;
    // The record goes last: it is what marks the copy as finished.
    std::fs::copy(from.join(TRAINING_RECORD), to.join(TRAINING_RECORD))?;
    Ok(())
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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

/// A job in the queue: the job, its training key, and the attempts it has had.
type Queued = (TrainJob, Option<String>, usize);

/// Trains the jobs on one worker per device (or `options.jobs` workers); a finished job
/// with a key gets its [`TRAINING_KEY`] file, a failed one goes back to the queue until it
/// has had `1 + retries` attempts. Returns the failures, sorted.
fn run_scheduled(
    todo: Vec<(TrainJob, Option<String>)>,
    trainer: &dyn AdapterTrainer,
    options: &PoolTrainOptions,
) -> Vec<String> {
    let devices: Vec<Option<&str>> = if options.devices.is_empty() {
        vec![None; options.jobs.max(1).min(todo.len().max(1))]
    } else {
        options.devices.iter().map(|d| Some(d.as_str())).collect()
    };
    let queue: Mutex<VecDeque<Queued>> =
        Mutex::new(todo.into_iter().map(|(j, k)| (j, k, 0)).collect());
    let budget = Budget {
        limit: options.memory_budget,
        used: Mutex::new(0),
        freed: Condvar::new(),
    };
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for device in devices {
            let (queue, budget, failures) = (&queue, &budget, &failures);
            scope.spawn(move || loop {
                let Some((mut job, key, attempts)) =
                    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    break;
                };
                job.device = device.map(str::to_string);
                let cost = trainer.memory_bytes(&job);
                budget.acquire(cost);
                let outcome = train_one(trainer, &job, key.as_deref());
                budget.release(cost);
                let Err(e) = outcome else { continue };
                if attempts < options.retries {
                    eprintln!("[{}] failed ({e:#}); queued again", job.adapter.id);
                    let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.push_back((job, key, attempts + 1));
                } else {
                    let on = job.device.map(|d| format!(" on {d}")).unwrap_or_default();
                    let msg = format!(
                        "{} ({}){on}, {} attempt(s): {e:#}",
                        job.adapter.id,
                        directions(&job.adapter),
                        attempts + 1
                    );
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    failures
}

/// Trains one job and checks that it left a finished adapter, marked with its key.
fn train_one(
    trainer: &dyn AdapterTrainer,
    job: &TrainJob,
    key: Option<&str>,
) -> anyhow::Result<()> {
    trainer.train(job)?;
    if !is_finished(&job.out_dir) {
        anyhow::bail!(
            "the trainer returned but {} holds no finished adapter",
            job.out_dir.display()
        )
    }
    if let Some(k) = key {
        std::fs::write(job.out_dir.join(TRAINING_KEY), k)?;
    }
    Ok(())
}

fn directions(a: &AdapterSpec) -> String {
    a.directions
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
