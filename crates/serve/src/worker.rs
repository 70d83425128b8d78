//! The decode worker: one thread owns the engine and serves a bounded queue of jobs.
//!
//! Each round takes every job waiting in the queue, groups their rows (one per input text)
//! by adapter and decoding settings, and decodes each group as one batch: rows of different
//! directions and requests share a batch, rows of different adapters do not (per-adapter
//! sub-batches; the LoRA layers apply one adapter per forward pass). Every prompt of a batch
//! is decoded as it would be alone, so a request's output does not depend on its batch
//! neighbours and equals `datm translate --pool`'s for the same settings. Jobs whose client
//! has gone (timed out) are dropped before decoding.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use axum::http::StatusCode;
use datm_engine::{Engine, Translation};
use datm_lang::Direction;
use datm_model::generate::{StopCriterion, StopString};
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

/// One input text of a decode job.
struct Row {
    job: usize,
    index: usize,
    prompt: Vec<u32>,
    direction: Option<Direction>,
}

/// What rows of one batch share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BatchKey {
    adapter: Option<String>,
    max_tokens: usize,
    /// `None`: translation (newline stop per settings, ALMA cleaning).
    stop: Option<Vec<String>>,
}

struct WorkerState {
    engine: Engine,
    config: WorkerConfig,
    metrics: Metrics,
    resident: Arc<RwLock<Vec<String>>>,
}

impl WorkerState {
    fn serve(&mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            jobs.extend(rx.try_iter());
            self.metrics.queue_depth.sub(jobs.len() as i64);
            let (replies, jobs): (Vec<_>, Vec<_>) =
                jobs.into_iter().map(|j| (j.reply, j.task)).unzip();
            let mut answers: Vec<Option<Reply>> = vec![None; jobs.len()];
            let round = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.round(&jobs, &replies, &mut answers)
            }));
            for (reply, answer) in replies.into_iter().zip(answers) {
                let answer = match (&round, answer) {
                    (_, Some(a)) => a,
                    (Err(_), None) => Err(ApiError::internal("decoding panicked")),
                    (Ok(()), None) => continue,
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// Answers every job: adapter changes first, then the decode rows in batches.
    fn round(
        &mut self,
        jobs: &[Task],
        replies: &[oneshot::Sender<Reply>],
        answers: &mut [Option<Reply>],
    ) {
        let mut groups: BTreeMap<BatchKey, Vec<Row>> = BTreeMap::new();
        for (j, task) in jobs.iter().enumerate() {
            if replies[j].is_closed() {
                answers[j] = Some(Err(ApiError::internal("abandoned")));
                continue;
            }
            match self.prepare(j, task) {
                Ok(Some((key, rows))) => groups.entry(key).or_default().extend(rows),
                Ok(None) => answers[j] = Some(Ok(Vec::new())),
                Err(e) => answers[j] = Some(Err(e)),
            }
        }
        let mut outputs: BTreeMap<usize, Vec<Option<Output>>> = BTreeMap::new();
        for (key, rows) in groups {
            for chunk in self.chunks(rows) {
                // A client that timed out or went away while earlier batches decoded is
                // not decoded for: under load, that work would only make the next
                // requests time out too.
                let (chunk, gone): (Vec<Row>, Vec<Row>) =
                    chunk.into_iter().partition(|r| !replies[r.job].is_closed());
                for row in gone {
                    answers[row.job] = Some(Err(ApiError::internal("abandoned")));
                }
                if chunk.is_empty() {
                    continue;
                }
                match self.decode(&key, &chunk) {
                    Ok(outs) => {
                        for (row, out) in chunk.iter().zip(outs) {
                            let slot = outputs.entry(row.job).or_default();
                            if slot.len() <= row.index {
                                slot.resize(row.index + 1, None);
                            }
                            slot[row.index] = Some(out);
                        }
                    }
                    Err(e) => {
                        for row in &chunk {
                            answers[row.job] = Some(Err(e.clone()));
                        }
                    }
                }
            }
        }
        for (job, outs) in outputs {
            if answers[job].is_none() {
                answers[job] = Some(Ok(outs.into_iter().flatten().collect()));
            }
        }
    }

    /// Applies adapter jobs; turns decode jobs into rows.
    fn prepare(
        &mut self,
        job: usize,
        task: &Task,
    ) -> Result<Option<(BatchKey, Vec<Row>)>, ApiError> {
        let row = |index, prompt, direction| Row {
            job,
            index,
            prompt,
            direction,
        };
        match task {
            Task::Load { id, dir } => {
                self.engine
                    .attach(id, dir)
                    .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
                self.publish_adapters();
                Ok(None)
            }
            Task::Unload { id } => {
                if !self.engine.detach(id) {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no adapter {id:?} is loaded"),
                    ));
                }
                self.publish_adapters();
                Ok(None)
            }
            Task::Translate {
                adapter,
                direction,
                sources,
            } => {
                self.check_resident(adapter.as_deref())?;
                let settings = &self.config.translation;
                let rows = sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| -> anyhow::Result<Row> {
                        let p = self.engine.translation_prompt(settings, *direction, s)?;
                        Ok(row(i, p, Some(*direction)))
                    })
                    .collect::<anyhow::Result<Vec<Row>>>()
                    .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
                let key = BatchKey {
                    adapter: adapter.clone(),
                    max_tokens: settings.max_new_tokens,
                    stop: None,
                };
                Ok(Some((key, rows)))
            }
            Task::Complete {
                adapter,
                prompts,
                max_tokens,
                stop,
            } => {
                self.check_resident(adapter.as_deref())?;
                let ids = self
                    .engine
                    .encode(prompts)
                    .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
                let rows = ids
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| row(i, p, None))
                    .collect();
                let key = BatchKey {
                    adapter: adapter.clone(),
                    max_tokens: *max_tokens,
                    stop: Some(stop.clone()),
                };
                Ok(Some((key, rows)))
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

    /// Splits rows into batches of at most `max_batch_tokens` prompt tokens (a longer row
    /// alone).
    fn chunks(&self, rows: Vec<Row>) -> Vec<Vec<Row>> {
        let mut out: Vec<Vec<Row>> = Vec::new();
        let mut tokens = 0;
        for row in rows {
            let n = row.prompt.len();
            match out.last_mut() {
                Some(last) if tokens + n <= self.config.max_batch_tokens => {
                    tokens += n;
                    last.push(row);
                }
                _ => {
                    tokens = n;
                    out.push(vec![row]);
                }
            }
        }
        out
    }

    /// Decodes one batch; a panic fails this batch only.
    fn decode(&self, key: &BatchKey, rows: &[Row]) -> Result<Vec<Output>, ApiError> {
        let settings = &self.config.translation;
        let mut cfg: GenerationConfig = settings.generation(key.adapter.as_deref());
        cfg.max_new_tokens = key.max_tokens;
        cfg.batch_size = rows.len();
        if let Some(stop) = &key.stop {
            cfg.stops = stop
                .iter()
                .map(|s| Arc::new(StopString(s.clone())) as Arc<dyn StopCriterion>)
                .collect();
        }
        let prompts: Vec<Vec<u32>> = rows.iter().map(|r| r.prompt.clone()).collect();
        let gens = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.engine.generate_texts(&prompts, &cfg, &mut |_| {})
        }))
        .map_err(|_| ApiError::internal("decoding panicked"))?
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        self.metrics.batch_rows.observe(rows.len() as f64);
        let eos = self.engine.model().eos_token_ids();
        Ok(rows
            .iter()
            .zip(gens)
            .map(|(row, g)| {
                self.metrics.tokens.inc_by(g.token_ids.len() as u64);
                let ended = g.token_ids.last().is_some_and(|t| eos.contains(t));
                let text = match (row.direction, &key.stop) {
                    (Some(d), _) => settings.clean(d, &g.text),
                    (None, Some(stop)) => cut_at_stop(&g.text, stop),
                    (None, None) => g.text.clone(),
                };
                let stopped = ended || text.len() < g.text.len();
                Output {
                    at_limit: g.token_ids.len() >= key.max_tokens && !stopped,
                    prompt_tokens: g.prompt_ids.len(),
                    tokens: g.token_ids.len(),
                    text,
                }
            })
            .collect())
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
