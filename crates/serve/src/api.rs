//! The HTTP routes: LibreTranslate, OpenAI (with vLLM's adapter loading), health, metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use datm_engine::Engine;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::request::{
    CompletionRequest, Limits, LoadRequest, Translate, TranslateRequest, UnloadRequest,
};
use crate::routing::Routing;
use crate::worker::{self, Output, Queue, Task, Worker, WorkerConfig};
use crate::ServeConfig;

/// The model id of the base model in the OpenAI API.
const BASE: &str = "base";

/// Shared by every request.
#[derive(Clone)]
pub struct State(Arc<Inner>);

struct Inner {
    queue: Queue,
    routing: Routing,
    metrics: Metrics,
    limits: Limits,
    timeout: Duration,
    completions: AtomicU64,
}

impl State {
    /// Starts the decode worker on `engine` and builds the shared state.
    pub fn start(
        engine: Engine,
        routing: Routing,
        config: &ServeConfig,
    ) -> anyhow::Result<(State, Worker)> {
        let metrics = Metrics::new()?;
        let worker_config = WorkerConfig {
            translation: config.translation,
            max_batch_tokens: config.max_batch_tokens,
            max_queue: config.max_queue,
            panic_on_input: config.panic_on_input.clone(),
        };
        let (queue, worker) = worker::start(engine, worker_config, metrics.clone())?;
        let inner = Inner {
            queue,
            routing,
            metrics,
            limits: Limits {
                max_input_chars: config.max_input_chars,
                max_new_tokens: config.translation.max_new_tokens,
            },
            timeout: config.timeout,
            completions: AtomicU64::new(0),
        };
        Ok((State(Arc::new(inner)), worker))
    }

    /// Runs `task` on the worker within the request timeout.
    async fn run(&self, task: Task, deadline: Instant) -> Result<Vec<Output>, ApiError> {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.0.queue.submit(task))
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no result within {} s", self.0.timeout.as_secs_f64()),
                ))
            })
    }
}

/// The application: routes, body limit, metrics middleware, panic catcher.
pub fn router(state: State, config: &ServeConfig) -> axum::Router {
    let metrics = state.0.metrics.clone();
    axum::Router::new()
        .route("/translate", post(translate))
        .route("/languages", get(languages))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/load_lora_adapter", post(load_adapter))
        .route("/v1/unload_lora_adapter", post(unload_adapter))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| record(metrics.clone(), req, next),
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("the request handler panicked").into_response()
            },
        ))
}

/// Counts every response by route and status and records its latency.
async fn record(metrics: Metrics, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

async fn translate(
    axum::extract::State(state): axum::extract::State<State>,
    body: Result<Json<TranslateRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let deadline = Instant::now() + state.0.timeout;
    let Json(req) = body?;
    let Translate {
        mut texts,
        many,
        legs,
    } = req.check(&state.0.limits, &state.0.routing)?;
    for leg in &legs {
        let task = Task::Translate {
            adapter: leg.adapter.clone(),
            direction: leg.direction,
            sources: texts,
        };
        texts = state
            .run(task, deadline)
            .await?
            .into_iter()
            .map(|o| o.text)
            .collect();
    }
    let translated = if many {
        json!(texts)
    } else {
        json!(texts.into_iter().next().unwrap_or_default())
    };
    let mut body = json!({ "translatedText": translated, "route": legs });
    if legs.len() > 1 {
        body["pivot"] = json!("en");
    }
    Ok(Json(body))
}

async fn languages(axum::extract::State(state): axum::extract::State<State>) -> Json<Value> {
    let langs: Vec<Value> = state
        .0
        .routing
        .languages()
        .into_iter()
        .map(|(l, targets)| {
            let targets: Vec<&str> = targets.iter().map(|t| t.code()).collect();
            json!({ "code": l.code(), "name": l.name(), "targets": targets })
        })
        .collect();
    Json(json!(langs))
}

async fn completions(
    axum::extract::State(state): axum::extract::State<State>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let deadline = Instant::now() + state.0.timeout;
    let Json(req) = body?;
    let adapter = model_adapter(&state, req.model())?;
    let req = req.check(&state.0.limits)?;
    let task = Task::Complete {
        adapter,
        prompts: req.prompts,
        max_tokens: req.max_tokens,
        stop: req.stop,
    };
    let outputs = state.run(task, deadline).await?;
    let (prompt_tokens, tokens) = outputs
        .iter()
        .fold((0, 0), |(p, t), o| (p + o.prompt_tokens, t + o.tokens));
    let choices: Vec<Value> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "text": o.text,
                "index": i,
                "logprobs": null,
                "finish_reason": if o.at_limit { "length" } else { "stop" },
            })
        })
        .collect();
    let n = state.0.completions.fetch_add(1, Ordering::Relaxed);
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Json(json!({
        "id": format!("cmpl-datm-{n}"),
        "object": "text_completion",
        "created": created,
        "model": req.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        },
    })))
}

/// The adapter of an OpenAI `model` (`base` = none); an unknown model is a 404 naming the
/// served ones.
fn model_adapter(state: &State, model: &str) -> Result<Option<String>, ApiError> {
    if model == BASE {
        return Ok(None);
    }
    let resident = state.0.queue.resident();
    if resident.iter().any(|m| m == model) {
        return Ok(Some(model.to_string()));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "model {model:?} is not served; the models are {BASE}, {}",
            resident.join(", ")
        ),
    ))
}

async fn models(axum::extract::State(state): axum::extract::State<State>) -> Json<Value> {
    let data: Vec<Value> = std::iter::once(BASE.to_string())
        .chain(state.0.queue.resident())
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "datm" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn load_adapter(
    axum::extract::State(state): axum::extract::State<State>,
    body: Result<Json<LoadRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let deadline = Instant::now() + state.0.timeout;
    let Json(req) = body?;
    if req.lora_name == BASE || state.0.queue.resident().contains(&req.lora_name) {
        return Err(ApiError::bad_request(format!(
            "an adapter named {:?} is already loaded",
            req.lora_name
        )));
    }
    let task = Task::Load {
        id: req.lora_name.clone(),
        dir: req.lora_path,
    };
    state.run(task, deadline).await?;
    Ok(Json(json!({ "loaded": req.lora_name })))
}

async fn unload_adapter(
    axum::extract::State(state): axum::extract::State<State>,
    body: Result<Json<UnloadRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let deadline = Instant::now() + state.0.timeout;
    let Json(req) = body?;
    let task = Task::Unload {
        id: req.lora_name.clone(),
    };
    state.run(task, deadline).await?;
    Ok(Json(json!({ "unloaded": req.lora_name })))
}

async fn health(axum::extract::State(state): axum::extract::State<State>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "queue_depth": state.0.metrics.queue_depth.get(),
        "adapters": state.0.queue.resident(),
    }))
}

async fn metrics_text(axum::extract::State(state): axum::extract::State<State>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.0.metrics.render(),
    )
        .into_response()
}
