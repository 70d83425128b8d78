//! `datm serve`: one base model and a pool of LoRA adapters behind HTTP APIs clients
//! already speak.
//!
//! - LibreTranslate: `POST /translate`, `GET /languages`; routing by the pool's router,
//!   non-English pairs pivoted through English (the response names the route).
//! - OpenAI: `POST /v1/completions`, `GET /v1/models` (`model` = an adapter id or `base`),
//!   `POST /v1/load_lora_adapter`, `POST /v1/unload_lora_adapter` (vLLM's shapes).
//! - `GET /health`, `GET /metrics` (Prometheus text).
//!
//! One decode worker thread owns the [`datm_engine::Engine`] and is fed by a bounded queue
//! (429 when full). It decodes with continuous batching: the rows of every request, whatever
//! their adapter, join one running batch at step boundaries and leave when finished (see
//! [`worker`]). A request waits at most `timeout` (504), a panic while decoding fails only the
//! requests in the batch (500), and SIGTERM/SIGINT stop accepting connections, finish the
//! requests in flight and exit.

#![forbid(unsafe_code)]

mod api;
mod error;
mod metrics;
pub mod request;
mod routing;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use datm_engine::{Engine, LoadSpec, Translation};

pub use error::ApiError;
pub use routing::{Leg, Routing};

/// Everything `datm serve` is started with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Base model: HF directory or `.gguf`.
    pub model: PathBuf,
    /// A trained pool (directory with `pool.toml`, or the manifest); `None` serves the base
    /// model for every direction.
    pub pool: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    pub addr: SocketAddr,
    /// Device and dtype of the base model.
    pub load: LoadSpec,
    /// Translation settings (beams, new tokens, prompt template, newline stop).
    pub translation: Translation,
    /// Tokens in the running batch at most: prompt tokens times beams of the rows decoding
    /// together (a longer single input is decoded alone).
    pub max_batch_tokens: usize,
    /// Requests waiting for the decode worker at most; more get 429.
    pub max_queue: usize,
    /// Characters of one input text at most; longer ones get 400.
    pub max_input_chars: usize,
    /// Bytes of a request body at most; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long one request may wait for its result; then 504.
    pub timeout: Duration,
    /// Testing only: decoding an input text equal to this panics (see
    /// [`worker::WorkerConfig::panic_on_input`]).
    pub panic_on_input: Option<String>,
}

/// Loads the model and the pool's adapters, listens, and serves until SIGTERM or SIGINT;
/// `on_listening` gets the bound address (with the real port) once requests are accepted.
pub fn run(config: ServeConfig, on_listening: impl FnOnce(SocketAddr)) -> Result<()> {
    let routing = Routing::open(config.pool.as_deref())?;
    let mut engine = Engine::load(&config.model, &config.load)?;
    for (id, dir) in routing.adapters() {
        engine.attach(&id, &dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let addr = listener.local_addr()?;
        let (state, worker) = api::State::start(engine, routing, &config)?;
        let app = api::router(state, &config);
        on_listening(addr);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        // The app (and with it the queue's sender) is gone: the worker finishes and exits.
        worker.join();
        Ok::<(), anyhow::Error>(())
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
