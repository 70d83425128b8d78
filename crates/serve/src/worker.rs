//! The decode worker: one thread owns the engine and serves a bounded queue of jobs with
//! continuous batching.
//!
//! The rows of every job (one per input text) join one running batch ([`Decoder`]) at step
//! boundaries while it holds at most `max_batch_tokens` tokens (prompt tokens times beams);
//! finished rows leave, and a job is answered as soon as its last row is done. Rows of
//! different adapters, directions and requests share every step: the base matmuls run once
//! for all rows and each row gets its own adapter's LoRA delta. Every prompt is decoded as it
//! would be alone, so a request's output does not depend on its neighbours and equals
//! `datm translate --pool`'s for the same settings.
//!
//! Adapter jobs (load, unload) wait until the batch has drained, and no row joins meanwhile.
//! The rows of a job whose client has gone (timed out) are dropped at the next step. A panic
//! while decoding fails the jobs in the batch (500); the worker goes on with an empty batch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use axum::http::StatusCode;
use datm_engine::{Engine, Translation};
use datm_lang::Direction;
use datm_model::generate::{DecodeRequest, Decoder, StopCriterion, StopString};
use datm_model::GenerationConfig;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// What a job asks of the engine.
#[derive(Debug)]
pub enum Task {
    /// Translate `sources` in `direction` with `adapter` (ALMA prompts, cleaned outputs).
    Translate {
        /// Adapter id; `None` = the base model.
        adapter: Option<String>,
        /// Direction of every source.
        direction: Direction,
        /// Texts to translate.
        sources: Vec<String>,
    },
    /// Continue raw text prompts (OpenAI completions).
    Complete {
        /// Adapter id; `None` = the base model.
        adapter: Option<String>,
        /// Prompts, tokenized with the model's special tokens.
        prompts: Vec<String>,
        /// New tokens at most.
        max_tokens: usize,
        /// Stop strings (HF `stop_strings` semantics; the text is cut before the stop).
        stop: Vec<String>,
    },
    /// Attach a PEFT adapter.
    Load {
        /// Adapter id.
        id: String,
        /// PEFT directory.
        dir: PathBuf,
    },
    /// Drop an adapter.
    Unload {
        /// Adapter id.
        id: String,
    },
}

/// One output text of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Cleaned translation, or completion text cut before its stop string.
    pub text: String,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub tokens: usize,
    /// Whether decoding ended at the token limit rather than at EOS or a stop.
    pub at_limit: bool,
}

/// A job's answer: one output per input text (none for adapter jobs).
pub type Reply = Result<Vec<Output>, ApiError>;

struct Job {
    task: Task,
    reply: oneshot::Sender<Reply>,
}

/// The handle the HTTP side holds.
#[derive(Clone)]
pub struct Queue {
    tx: SyncSender<Job>,
    metrics: Metrics,
    resident: Arc<RwLock<Vec<String>>>,
}

/// The running worker thread.
pub struct Worker(JoinHandle<()>);

impl Worker {
    /// Waits until the worker has finished every queued job (after the last [`Queue`]
    /// clone is dropped).
    pub fn join(self) {
        let _ = self.0.join();
    }
}

/// Settings of the worker.
pub struct WorkerConfig {
    /// Translation settings.
    pub translation: Translation,
    /// Prompt tokens per batch at most.
    pub max_batch_tokens: usize,
    /// Queued jobs at most.
    pub max_queue: usize,
    /// An input text whose decoding panics on purpose, to test that a panic fails only the
    /// requests in the batch (`datm serve --panic-on-input`, hidden).
    pub panic_on_input: Option<String>,
}

/// Starts the worker thread on `engine`.
pub fn start(
    engine: Engine,
    config: WorkerConfig,
    metrics: Metrics,
) -> std::io::Result<(Queue, Worker)> {
    let (tx, rx) = sync_channel(config.max_queue);
    let resident = Arc::new(RwLock::new(engine.adapters().keys().cloned().collect()));
    let queue = Queue {
        tx,
        metrics: metrics.clone(),
        resident: resident.clone(),
    };
    let mut state = WorkerState {
        engine,
        config,
        metrics,
        resident,
    };
    let handle = std::thread::Builder::new()
        .name("datm-decode".into())
        .spawn(move || state.serve(rx))?;
    Ok((queue, Worker(handle)))
}

impl Task {
    /// Whether the task changes the resident adapters (run while no row is decoding).
    fn is_adapter_change(&self) -> bool {
        matches!(self, Task::Load { .. } | Task::Unload { .. })
    }
}

impl Queue {
    /// Queues `task` and waits for its reply: 429 when the queue is full, 500 when the
    /// worker dropped the job (it panicked outside a batch).
    pub async fn submit(&self, task: Task) -> Reply {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { task, reply }) {
            Ok(()) => self.metrics.queue_depth.inc(),
            Err(TrySendError::Full(_)) => {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "the decode queue is full; retry later",
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the decoder has stopped",
                ))
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiError::internal("the decoder failed on this request")))
    }

    /// Ids of the resident adapters.
    pub fn resident(&self) -> Vec<String> {
        self.resident.read().map(|r| r.clone()).unwrap_or_default()
    }
}

/// How a finished row becomes an output.
#[derive(Debug, Clone)]
enum Finish {
    /// ALMA's cleaning for this direction.
    Translate(Direction),
    /// The completion cut before its first stop string.
    Complete(Vec<String>),
}

/// A decode job made ready: how its rows become outputs, its settings, its prompts.
struct Prepared {
    finish: Finish,
    cfg: Arc<GenerationConfig>,
    prompts: Vec<Vec<u32>>,
}

/// A decode job being answered.
struct ActiveJob {
    reply: oneshot::Sender<Reply>,
    finish: Finish,
    max_tokens: usize,
    outputs: Vec<Option<Output>>,
    /// Rows not finished yet.
    left: usize,
}

/// A row waiting to join the batch.
struct WaitingRow {
    job: u64,
    index: usize,
    prompt: Vec<u32>,
    cfg: Arc<GenerationConfig>,
    /// Fault injection: decoding this row panics.
    panics: bool,
}

/// A row in the batch: its job, its index in the job, and the tokens it holds.
struct RowRef {
    job: u64,
    index: usize,
    cost: usize,
}

/// The jobs being answered with their rows, waiting or in the running batch; kept across
/// batches (an adapter change runs between two).
#[derive(Default)]
struct Backlog {
    jobs: HashMap<u64, ActiveJob>,
    waiting: VecDeque<WaitingRow>,
    /// The rows in the running batch, by decoder id.
    rows: HashMap<u64, RowRef>,
    /// Tokens (prompt tokens times beams) of the rows in the running batch.
    tokens: usize,
    next_job: u64,
    next_row: u64,
}

struct WorkerState {
    engine: Engine,
    config: WorkerConfig,
    metrics: Metrics,
    resident: Arc<RwLock<Vec<String>>>,
}

impl WorkerState {
    fn serve(&mut self, rx: Receiver<Job>) {
        let mut backlog = Backlog::default();
        let mut held = None;
        loop {
            if let Some(job) = held.take() {
                self.change_adapters(job);
            }
            if backlog.waiting.is_empty() {
                let Some(job) = self.receive(&rx, true) else {
                    return;
                };
                if job.task.is_adapter_change() {
                    held = Some(job);
                    continue;
                }
                self.accept(&mut backlog, job);
            }
            held = self.decode(&mut backlog, &rx);
        }
    }

    /// The next queued job, waiting for one if `block`; `None` when there is none (or the
    /// queue is closed).
    fn receive(&self, rx: &Receiver<Job>, block: bool) -> Option<Job> {
        let job = if block {
            rx.recv().ok()
        } else {
            rx.try_recv().ok()
        };
        if job.is_some() {
            self.metrics.queue_depth.dec();
        }
        job
    }

    /// Loads or unloads an adapter (no row is decoding).
    fn change_adapters(&mut self, job: Job) {
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| match &job.task {
            Task::Load { id, dir } => {
                self.engine
                    .attach(id, dir)
                    .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
                self.publish_adapters();
                Ok(Vec::new())
            }
            Task::Unload { id } => {
                if !self.engine.detach(id) {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no adapter {id:?} is loaded"),
                    ));
                }
                self.publish_adapters();
                Ok(Vec::new())
            }
            _ => Err(ApiError::internal("not an adapter job")),
        }))
        .unwrap_or_else(|_| Err(ApiError::internal("changing adapters panicked")));
        let _ = job.reply.send(answer);
    }

    /// Runs one batch: decodes the waiting rows and those of every decode job queued
    /// meanwhile, until the batch is empty; returns an adapter job that arrived meanwhile (no
    /// row joins after it; it runs once the batch has drained).
    fn decode(&self, backlog: &mut Backlog, rx: &Receiver<Job>) -> Option<Job> {
        let mut decoder = self.engine.decoder();
        let mut held = None;
        loop {
            while held.is_none() {
                match self.receive(rx, false) {
                    Some(job) if job.task.is_adapter_change() => held = Some(job),
                    Some(job) => self.accept(backlog, job),
                    None => break,
                }
            }
            let admitting = held.is_none();
            let round = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.drop_abandoned(&mut decoder, backlog)?;
                if admitting {
                    self.admit(&mut decoder, backlog)?;
                }
                self.step(&mut decoder, backlog)
            }));
            let failed = match round {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(ApiError::internal(format!("{e:#}"))),
                Err(_) => Some(ApiError::internal("decoding panicked")),
            };
            if let Some(err) = failed {
                // The decoder's state is unknown: its jobs fail, the batch starts over.
                self.fail_batch(backlog, err);
                decoder = self.engine.decoder();
            }
            if decoder.is_empty() && (backlog.waiting.is_empty() || !admitting) {
                return held;
            }
        }
    }

    /// Turns a decode job into waiting rows (or answers it at once with its error).
    fn accept(&self, batch: &mut Backlog, job: Job) {
        let Prepared {
            finish,
            cfg,
            prompts,
        } = match self.prepare(&job.task) {
            Ok(p) => p,
            Err(e) => {
                let _ = job.reply.send(Err(e));
                return;
            }
        };
        let id = batch.next_job;
        batch.next_job += 1;
        let panics = match (&job.task, &self.config.panic_on_input) {
            (Task::Translate { sources, .. }, Some(p)) => sources.iter().map(|s| s == p).collect(),
            _ => vec![false; prompts.len()],
        };
        batch.jobs.insert(
            id,
            ActiveJob {
                reply: job.reply,
                finish,
                max_tokens: cfg.max_new_tokens,
                outputs: vec![None; prompts.len()],
                left: prompts.len(),
            },
        );
        let rows = prompts.into_iter().zip(panics).enumerate();
        batch
            .waiting
            .extend(rows.map(|(index, (prompt, panics))| WaitingRow {
                job: id,
                index,
                prompt,
                cfg: cfg.clone(),
                panics,
            }));
    }

    /// The output rule, decoding settings and prompts of a decode job.
    fn prepare(&self, task: &Task) -> Result<Prepared, ApiError> {
        let settings = &self.config.translation;
        let bad = |e: anyhow::Error| ApiError::bad_request(format!("{e:#}"));
        match task {
            Task::Translate {
                adapter,
                direction,
                sources,
            } => {
                self.check_resident(adapter.as_deref())?;
                let prompts = sources
                    .iter()
                    .map(|s| self.engine.translation_prompt(settings, *direction, s))
                    .collect::<anyhow::Result<Vec<_>>>()
                    .map_err(bad)?;
                let cfg = settings.generation(adapter.as_deref());
                Ok(Prepared {
                    finish: Finish::Translate(*direction),
                    cfg: Arc::new(cfg),
                    prompts,
                })
            }
            Task::Complete {
                adapter,
                prompts,
                max_tokens,
                stop,
            } => {
                self.check_resident(adapter.as_deref())?;
                let ids = self.engine.encode(prompts).map_err(bad)?;
                let mut cfg = settings.generation(adapter.as_deref());
                cfg.max_new_tokens = *max_tokens;
                cfg.stops = stop
                    .iter()
                    .map(|s| Arc::new(StopString(s.clone())) as Arc<dyn StopCriterion>)
                    .collect();
                Ok(Prepared {
                    finish: Finish::Complete(stop.clone()),
                    cfg: Arc::new(cfg),
                    prompts: ids,
                })
            }
            Task::Load { .. } | Task::Unload { .. } => {
                Err(ApiError::internal("an adapter job reached the decoder"))
            }
        }
    }

    fn check_resident(&self, adapter: Option<&str>) -> Result<(), ApiError> {
        match adapter {
            Some(id) if !self.engine.adapters().contains_key(id) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("adapter {id:?} is not loaded"),
            )),
            _ => Ok(()),
        }
    }

    fn publish_adapters(&self) {
        if let Ok(mut r) = self.resident.write() {
            *r = self.engine.adapters().keys().cloned().collect();
        }
    }

    /// Drops the jobs whose client has gone (timed out, disconnected), with their rows: under
    /// load, decoding for them would only make the next requests time out too.
    fn drop_abandoned(&self, decoder: &mut Decoder, batch: &mut Backlog) -> anyhow::Result<()> {
        let gone: HashSet<u64> = batch
            .jobs
            .iter()
            .filter(|(_, j)| j.reply.is_closed())
            .map(|(&id, _)| id)
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        batch.jobs.retain(|id, _| !gone.contains(id));
        batch.waiting.retain(|w| !gone.contains(&w.job));
        let rows = &batch.rows;
        decoder.retain(|id| rows.get(&id).is_none_or(|r| !gone.contains(&r.job)))?;
        let mut freed = 0;
        batch.rows.retain(|_, r| {
            let keep = !gone.contains(&r.job);
            if !keep {
                freed += r.cost;
            }
            keep
        });
        batch.tokens -= freed;
        Ok(())
    }

    /// Moves waiting rows into the batch, first come first served, while it holds at most
    /// `max_batch_tokens` tokens (a longer row joins an empty batch alone). A job whose
    /// adapter was unloaded meanwhile gets 503.
    fn admit(&self, decoder: &mut Decoder, batch: &mut Backlog) -> anyhow::Result<()> {
        let mut joining = Vec::new();
        while let Some(w) = batch.waiting.front() {
            let cost = w.prompt.len() * w.cfg.num_beams;
            let empty = decoder.is_empty() && joining.is_empty();
            if !empty && batch.tokens + cost > self.config.max_batch_tokens {
                break;
            }
            let Some(w) = batch.waiting.pop_front() else {
                break;
            };
            if let Err(e) = self.check_resident(w.cfg.adapter.as_deref()) {
                batch.waiting.retain(|r| r.job != w.job);
                if let Some(job) = batch.jobs.remove(&w.job) {
                    let _ = job.reply.send(Err(e));
                }
                continue;
            }
            let id = batch.next_row;
            batch.next_row += 1;
            batch.tokens += cost;
            let row = RowRef {
                job: w.job,
                index: w.index,
                cost,
            };
            batch.rows.insert(id, row);
            if w.panics {
                panic!("--panic-on-input: decoding an input given to fail on purpose");
            }
            joining.push(DecodeRequest {
                id,
                prompt: w.prompt,
                cfg: w.cfg,
            });
        }
        decoder.add(joining)
    }

    /// One decoding step; answers the jobs whose last row finished.
    fn step(&self, decoder: &mut Decoder, batch: &mut Backlog) -> anyhow::Result<()> {
        if decoder.is_empty() {
            return Ok(());
        }
        self.metrics.batch_rows.observe(decoder.rows() as f64);
        let adapters = decoder.adapters();
        self.metrics.batch_adapters.observe(adapters as f64);
        for (id, g) in decoder.step()? {
            let Some(row) = batch.rows.remove(&id) else {
                continue;
            };
            batch.tokens -= row.cost;
            self.metrics.tokens.inc_by(g.token_ids.len() as u64);
            let Some(job) = batch.jobs.get_mut(&row.job) else {
                continue;
            };
            let answer = match self.engine.text_generation(g) {
                Ok(text) => {
                    job.outputs[row.index] = Some(self.output(job, text));
                    job.left -= 1;
                    if job.left > 0 {
                        continue;
                    }
                    Ok(std::mem::take(&mut job.outputs)
                        .into_iter()
                        .flatten()
                        .collect())
                }
                Err(e) => Err(ApiError::internal(format!("detokenizing an output: {e:#}"))),
            };
            if let Some(job) = batch.jobs.remove(&row.job) {
                let _ = job.reply.send(answer);
            }
            batch.waiting.retain(|w| w.job != row.job);
        }
        Ok(())
    }

    /// A finished row's output: the cleaned translation, or the completion before its stop.
    fn output(&self, job: &ActiveJob, g: datm_engine::TextGeneration) -> Output {
        let eos = self.engine.model().eos_token_ids();
        let ended = g.token_ids.last().is_some_and(|t| eos.contains(t));
        let text = match &job.finish {
            Finish::Translate(d) => self.config.translation.clean(*d, &g.text),
            Finish::Complete(stop) => cut_at_stop(&g.text, stop),
        };
        let stopped = ended || text.len() < g.text.len();
        Output {
            at_limit: g.token_ids.len() >= job.max_tokens && !stopped,
            prompt_tokens: g.prompt_ids.len(),
            tokens: g.token_ids.len(),
            text,
        }
    }

    /// After a failed or panicked step: answers every job with a row in the batch with
    /// `err` (the batch then starts over, empty).
    fn fail_batch(&self, batch: &mut Backlog, err: ApiError) {
        let failed: HashSet<u64> = batch.rows.values().map(|r| r.job).collect();
        batch.rows.clear();
        batch.tokens = 0;
        batch.waiting.retain(|w| !failed.contains(&w.job));
        for id in failed {
            if let Some(job) = batch.jobs.remove(&id) {
                let _ = job.reply.send(Err(err.clone()));
            }
        }
    }
}

/// The text before the first stop string (OpenAI returns completions without it).
fn cut_at_stop(text: &str, stop: &[String]) -> String {
    let end = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
        .unwrap_or(text.len());
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_cut_before_the_first_stop() {
        let stop = vec!["\n".to_string(), "END".to_string()];
        assert_eq!(cut_at_stop("abc END\nx", &stop), "abc ");
        assert_eq!(cut_at_stop("abc", &stop), "abc");
        assert_eq!(cut_at_stop("a\nEND", &[String::new()]), "a\nEND");
    }
}
