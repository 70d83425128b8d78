//! The request bodies of the HTTP API and the checks they pass before anything reaches the
//! decode worker. The handlers take each body through axum's `Json` extractor, which checks
//! the content type and then deserializes with [`Json::from_bytes`]; [`parse`] is that
//! deserialization alone, for the `serve_request` fuzz target and the tests. The `check`
//! methods are what the handlers run next.

use std::path::PathBuf;

use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::routing::{Leg, Routing};

/// The server's limits on one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Characters of one input text at most.
    pub max_input_chars: usize,
    /// New tokens of a completion at most (the server's `--max-new-tokens`).
    pub max_new_tokens: usize,
}

/// A JSON body deserialized as the handlers' extractor does it; the error is the response
/// the server sends (400 for broken JSON, 422 for a body of the wrong shape).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(Json::<T>::from_bytes(body)?.0)
}

/// One text or a list of texts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> (Vec<String>, bool) {
        match self {
            Texts::One(t) => (vec![t], false),
            Texts::Many(v) => (v, true),
        }
    }
}

/// LibreTranslate's `POST /translate` body.
#[derive(Debug, Deserialize)]
pub struct TranslateRequest {
    q: Texts,
    source: String,
    target: String,
    #[serde(default)]
    format: Option<String>,
}

/// A translation request that passed its checks.
#[derive(Debug)]
pub struct Translate {
    /// The texts, in order.
    pub texts: Vec<String>,
    /// Whether `q` was a list (the response mirrors it).
    pub many: bool,
    /// The decoding passes: one, or two through English.
    pub legs: Vec<Leg>,
}

impl TranslateRequest {
    /// Checks the format, the texts against `limits` and the pair against `routing`.
    pub fn check(self, limits: &Limits, routing: &Routing) -> Result<Translate, ApiError> {
        if let Some(f) = self.format.as_deref().filter(|f| *f != "text") {
            return Err(ApiError::bad_request(format!(
                "format {f:?} is not supported (only \"text\")"
            )));
        }
        let (texts, many) = self.q.into_vec();
        check_lengths(&texts, limits)?;
        let legs = routing.legs(&self.source, &self.target)?;
        Ok(Translate { texts, many, legs })
    }
}

/// OpenAI's `POST /v1/completions` body (the fields datm honours).
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    model: String,
    prompt: Texts,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    stop: Option<Texts>,
    #[serde(default)]
    n: Option<usize>,
}

/// A completion request that passed its checks.
#[derive(Debug)]
pub struct Completion {
    /// The OpenAI model id (an adapter id or `base`).
    pub model: String,
    /// The prompts, in order.
    pub prompts: Vec<String>,
    /// New tokens per prompt at most (16 when not given).
    pub max_tokens: usize,
    /// Stop sequences (at most 4).
    pub stop: Vec<String>,
}

impl CompletionRequest {
    /// The body's model id (looked up in the served models before the other checks).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Checks `n`, `max_tokens`, the stop sequences and the prompts against `limits`.
    pub fn check(self, limits: &Limits) -> Result<Completion, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_request("only n = 1 is supported"));
        }
        let max_tokens = self.max_tokens.unwrap_or(16);
        if max_tokens == 0 || max_tokens > limits.max_new_tokens {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be between 1 and {} (the server's --max-new-tokens)",
                limits.max_new_tokens
            )));
        }
        let stop = self.stop.map(|s| s.into_vec().0).unwrap_or_default();
        if stop.len() > 4 {
            return Err(ApiError::bad_request("at most 4 stop sequences"));
        }
        let (prompts, _) = self.prompt.into_vec();
        check_lengths(&prompts, limits)?;
        Ok(Completion {
            model: self.model,
            prompts,
            max_tokens,
            stop,
        })
    }
}

/// vLLM's `POST /v1/load_lora_adapter` body.
#[derive(Debug, Deserialize)]
pub struct LoadRequest {
    /// The id the adapter is served under.
    pub lora_name: String,
    /// The adapter's directory on the server.
    pub lora_path: PathBuf,
}

/// vLLM's `POST /v1/unload_lora_adapter` body.
#[derive(Debug, Deserialize)]
pub struct UnloadRequest {
    /// The id of the adapter to unload.
    pub lora_name: String,
}

/// At least one text, none longer than the limit.
fn check_lengths(texts: &[String], limits: &Limits) -> Result<(), ApiError> {
    if texts.is_empty() {
        return Err(ApiError::bad_request("no input text"));
    }
    match texts
        .iter()
        .map(|t| t.chars().count())
        .find(|&n| n > limits.max_input_chars)
    {
        Some(n) => Err(ApiError::bad_request(format!(
            "an input text has {n} characters; at most {} are accepted",
            limits.max_input_chars
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_input_chars: 2000,
        max_new_tokens: 256,
    };

    /// The status the server answers `body` with on each route, or 200 when it passes.
    fn statuses(body: &[u8]) -> [u16; 4] {
        let routing = Routing::open(None).expect("base routing");
        let status = |r: Result<(), ApiError>| r.map_or_else(|e| e.status.as_u16(), |()| 200);
        [
            status(
                parse::<TranslateRequest>(body).and_then(|r| r.check(&LIMITS, &routing).map(drop)),
            ),
            status(parse::<CompletionRequest>(body).and_then(|r| r.check(&LIMITS).map(drop))),
            status(parse::<LoadRequest>(body).map(drop)),
            status(parse::<UnloadRequest>(body).map(drop)),
        ]
    }

    #[test]
    fn real_bodies_pass() {
        let translate =
            br#"{"q": ["Hello", "world"], "source": "en", "target": "de", "format": "text"}"#;
        assert_eq!(statuses(translate)[0], 200);
        let completion =
            br#"{"model": "base", "prompt": "Hi", "max_tokens": 8, "stop": ["\n"], "n": 1}"#;
        assert_eq!(statuses(completion)[1], 200);
        assert_eq!(
            statuses(br#"{"lora_name": "a", "lora_path": "/x"}"#)[2],
            200
        );
        assert_eq!(statuses(br#"{"lora_name": "a"}"#)[3], 200);
    }

    #[test]
    fn hostile_bodies_are_client_errors() {
        // Nested 100,000 deep in a field each route reads (an unknown field is skipped
        // without recursing, whatever its depth).
        let deep = |open: &str, close: &str| {
            let v = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
            format!(
                r#"{{"q": {v}, "prompt": {v}, "lora_name": {v}, "model": "base", "source": "en", "target": "de"}}"#
            )
        };
        let many = vec!["x"; 100_000];
        let bodies = [
            deep("[", "]"),
            deep(r#"{"a":"#, "}"),
            serde_json::json!({"q": many, "source": many, "target": "de", "model": many,
                "prompt": "p", "stop": many, "lora_name": many})
            .to_string(),
            serde_json::json!({"q": "x", "source": "en", "target": many, "model": "base",
                "prompt": many, "stop": many, "lora_name": many})
            .to_string(),
            serde_json::json!({"q": ["x", "y".repeat(2001)], "source": "en", "target": "de",
                "model": "base", "prompt": [], "lora_name": 1, "lora_path": []})
            .to_string(),
            r#"{"q": 1, "source": null, "target": {}, "model": 1e400, "prompt": true,
                "max_tokens": -1, "n": 18446744073709551616, "lora_name": false}"#
                .to_string(),
            r#"{"q": [], "source": "en", "target": "en", "model": "base", "prompt": "p",
                "max_tokens": 0, "format": "html", "n": 2}"#
                .to_string(),
            r#"{"q": "x", "source": "xx", "target": "de", "model": "base", "prompt": "p",
                "max_tokens": 100000}"#
                .to_string(),
            String::new(),
            "[".to_string(),
            "\"\\ud800\"".to_string(),
        ];
        for body in bodies
            .iter()
            .map(String::as_bytes)
            .chain([&b"{\"q\": \"\xff\"}"[..]])
        {
            for (route, status) in statuses(body).into_iter().enumerate() {
                let shown = String::from_utf8_lossy(&body[..body.len().min(80)]);
                assert!(
                    (400..500).contains(&status),
                    "route {route}: {status} for {shown}"
                );
            }
        }
    }
}
