//! `datm serve` on a loopback port with the tiny fixture model and a DAT pool built from the
//! fixture adapter: routing, pivoting, equality with `datm translate --pool` / `datm
//! generate` (greedy and beam), every error path, adapter loading, metrics, SIGTERM drain.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{datm, lora, model};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The serve tests' pool: DAT for de and fr, En→XX adapters with a doubled `lora_alpha`.
fn fixture_pool(dir: &Path) -> PathBuf {
    common::fixture_pool(dir, "dat", "de,fr", 2.0)
}

/// A running `datm serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(pool: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_datm"))
            .args(["serve", "--model", model().to_str().unwrap()])
            .args(["--pool", pool.to_str().unwrap(), "--port", "0"])
            .args(["--max-new-tokens", "256"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut url = None;
        while url.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("datm serve did not start");
            url = line.strip_prefix("datm: serving on ").map(str::to_string);
        }
        Server {
            child,
            url: url.unwrap(),
            stderr: rx,
        }
    }

    fn get(&self, path: &str) -> (StatusCode, String) {
        let r = Client::new()
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap();
        (r.status(), r.text().unwrap())
    }

    fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        post(&self.url, path, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(url: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
        .post(format!("{url}{path}"))
        .json(body)
        .send()
        .unwrap();
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

const SOURCES: [&str; 3] = [
    "Datei öffnen",
    "Fenster schließen",
    "Das Haus ist wunderbar.",
];

/// `datm translate --pool` on SOURCES.
fn cli_translate(
    dir: &Path,
    pool: &Path,
    src: &str,
    tgt: &str,
    lines: &[String],
    beams: &str,
) -> Vec<String> {
    let input = dir.join(format!("in-{src}-{tgt}-{beams}.txt"));
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = datm(&[
        "translate",
        "--model",
        model().to_str().unwrap(),
        "--pool",
        pool.to_str().unwrap(),
        "--src",
        src,
        "--tgt",
        tgt,
        "-i",
        input.to_str().unwrap(),
        "--num-beams",
        beams,
        "--max-new-tokens",
        "256",
    ]);
    out.lines().map(str::to_string).collect()
}

fn translate(server: &Server, src: &str, tgt: &str, q: Value) -> (StatusCode, Value) {
    server.post(
        "/translate",
        &json!({"q": q, "source": src, "target": tgt, "format": "text"}),
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn check_equal_to_cli(server: &Server, dir: &Path, pool: &Path, beams: &str) {
    let sources: Vec<String> = SOURCES.iter().map(|s| s.to_string()).collect();
    for (src, tgt) in [("de", "en"), ("en", "fr"), ("en", "de")] {
        let (status, body) = translate(server, src, tgt, json!(sources));
        assert_eq!(status, StatusCode::OK, "{body}");
        let want = cli_translate(dir, pool, src, tgt, &sources, beams);
        assert_eq!(
            strings(&body["translatedText"]),
            want,
            "{src}-{tgt} beams {beams}"
        );
        assert!(body.get("pivot").is_none());
    }
    // Pivot: de → en → fr, as two `datm translate --pool` runs.
    let (status, body) = translate(server, "de", "fr", json!(sources));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pivot"], "en");
    assert_eq!(body["route"][0]["direction"], "de-en");
    assert_eq!(body["route"][0]["adapter"], "xx-en.de");
    assert_eq!(body["route"][1]["direction"], "en-fr");
    let english = cli_translate(dir, pool, "de", "en", &sources, beams);
    let want = cli_translate(dir, pool, "en", "fr", &english, beams);
    assert_eq!(
        strings(&body["translatedText"]),
        want,
        "pivot beams {beams}"
    );
    // One string in, one string out.
    let (_, one) = translate(server, "de", "en", json!(SOURCES[0]));
    assert_eq!(
        one["translatedText"],
        json!(cli_translate(dir, pool, "de", "en", &sources[..1], beams)[0])
    );
}

#[test]
fn serve_beam_routes_pivots_errors_adapters_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fixture_pool(dir.path());
    let server = Server::start(
        &pool,
        &[
            "--num-beams",
            "2",
            "--max-input-chars",
            "100",
            "--max-body-bytes",
            "4096",
            "--max-batch-tokens",
            "64",
        ],
    );
    check_equal_to_cli(&server, dir.path(), &pool, "2");

    // The routing table, as LibreTranslate lists it.
    let (status, langs) = server.get("/languages");
    assert_eq!(status, StatusCode::OK);
    let langs: Value = serde_json::from_str(&langs).unwrap();
    let targets = |code: &str| -> Vec<String> {
        let l = langs
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .unwrap();
        strings(&l["targets"])
    };
    assert_eq!(targets("de"), ["en", "fr"]);
    assert_eq!(targets("en"), ["de", "fr"]);
    let (_, health) = server.get("/health");
    assert!(health.contains("\"ok\""), "{health}");

    // Errors: unknown language, unserved direction, same language, limits, bad JSON.
    let (status, body) = translate(&server, "xx", "en", json!("a"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("de, en, fr"),
        "{body}"
    );
    let (status, body) = translate(&server, "ru", "en", json!("a"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("ru-en is not served") && msg.contains("de-fr"),
        "{msg}"
    );
    let (status, _) = translate(&server, "de", "de", json!("a"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = translate(&server, "de", "en", json!("x".repeat(101)));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("at most 100"),
        "{body}"
    );
    let (status, _) = translate(&server, "de", "en", json!(vec!["x"; 2000]));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = translate(&server, "de", "en", json!([]));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.post("/translate", &json!({"q": 1}));
    assert!(status.is_client_error(), "{status} {body}");
    let (status, _) = server.post(
        "/translate",
        &json!({"q": "a", "source": "de", "target": "en", "format": "html"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // OpenAI models and adapter loading.
    let (_, models) = server.get("/v1/models");
    let models: Value = serde_json::from_str(&models).unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["base", "en-xx.g1", "en-xx.g4", "xx-en.de", "xx-en.fr"]
    );
    let complete = |model: &str| {
        server.post(
            "/v1/completions",
            &json!({"model": model, "prompt": "Hallo", "max_tokens": 4}),
        )
    };
    assert_eq!(complete("extra").0, StatusCode::NOT_FOUND);
    let (status, body) = server.post(
        "/v1/load_lora_adapter",
        &json!({"lora_name": "extra", "lora_path": lora()}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(complete("extra").0, StatusCode::OK);
    let (status, _) = server.post(
        "/v1/load_lora_adapter",
        &json!({"lora_name": "extra", "lora_path": lora()}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.post(
        "/v1/load_lora_adapter",
        &json!({"lora_name": "bad", "lora_path": dir.path()}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        server
            .post("/v1/unload_lora_adapter", &json!({"lora_name": "extra"}))
            .0,
        StatusCode::OK
    );
    assert_eq!(complete("extra").0, StatusCode::NOT_FOUND);
    assert_eq!(
        server
            .post("/v1/unload_lora_adapter", &json!({"lora_name": "extra"}))
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = server.post(
        "/v1/completions",
        &json!({"model": "base", "prompt": "a", "max_tokens": 100000}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("datm_requests_total{route=\"/translate\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("datm_requests_total{route=\"/translate\",status=\"400\"}"));
    assert!(metrics.contains("datm_batch_rows_bucket"));
    assert!(metrics.contains("datm_generated_tokens_total"));
    assert!(metrics.contains("datm_request_duration_seconds_bucket"));
    assert!(metrics.contains("datm_queue_depth 0"));

    // SIGTERM while a long request is in flight: it is answered, then the server exits.
    let url = server.url.clone();
    let prompts: Vec<String> = (0..48).map(|i| format!("Satz {i}")).collect();
    let inflight = std::thread::spawn(move || {
        let answer = post(
            &url,
            "/v1/completions",
            &json!({"model": "xx-en.de", "prompt": prompts, "max_tokens": 200}),
        );
        (answer, Instant::now())
    });
    // SIGTERM once the worker is decoding it (the batch holds 64 tokens, a few prompts).
    let steps = |server: &Server| {
        let (_, metrics) = server.get("/metrics");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("datm_batch_rows_count "))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let before = steps(&server);
    while steps(&server) == before {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut server = server;
    // SAFETY: plain syscall on the child's pid.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let signalled = Instant::now();
    let ((status, body), answered) = inflight.join().unwrap();
    assert!(
        answered > signalled,
        "the request was not in flight at SIGTERM"
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"].as_array().unwrap().len(), 48);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    // Everything the server printed: the reader thread ends at the closed pipe's end (the
    // last lines may still be on their way right after `wait`).
    let rest: Vec<String> = server.stderr.iter().collect();
    assert!(rest.iter().any(|l| l == "datm: stopped"), "{rest:?}");
}

#[test]
fn serve_greedy_equals_cli_completions_stop_and_overload() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fixture_pool(dir.path());
    let server = Server::start(&pool, &["--num-beams", "1", "--max-queue", "1"]);
    check_equal_to_cli(&server, dir.path(), &pool, "1");

    // Completions equal `datm generate` with the adapter; `stop` cuts them.
    let prompt = "Translate this from German to English:\nGerman: Hallo\nEnglish:";
    let jsonl = dir.path().join("p.jsonl");
    std::fs::write(&jsonl, json!({"prompt": prompt}).to_string() + "\n").unwrap();
    let adapter = pool.join("xx-en.de");
    let generated: Value = serde_json::from_str(&datm(&[
        "generate",
        "--model",
        model().to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "-i",
        jsonl.to_str().unwrap(),
        "--max-new-tokens",
        "12",
    ]))
    .unwrap();
    let full = generated["text"].as_str().unwrap().to_string();
    let req = |stop: Value| json!({"model": "xx-en.de", "prompt": prompt, "max_tokens": 12, "stop": stop});
    let (status, body) = server.post("/v1/completions", &req(Value::Null));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["text"], full);
    assert_eq!(
        body["usage"]["completion_tokens"],
        generated["token_ids"].as_array().unwrap().len()
    );
    let stop: String = full
        .chars()
        .find(char::is_ascii_alphanumeric)
        .expect("an ASCII letter or digit in the completion")
        .to_string();
    let (_, body) = server.post("/v1/completions", &req(json!(stop)));
    assert_eq!(
        body["choices"][0]["text"],
        full[..full.find(&stop).unwrap()]
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    // A queue of one: concurrent long requests get 429, the others are answered.
    let url = server.url.clone();
    let clients: Vec<_> = (0..12)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let prompts: Vec<String> = (0..8).map(|j| format!("Satz {i} {j}")).collect();
                post(
                    &url,
                    "/v1/completions",
                    &json!({"model": "base", "prompt": prompts, "max_tokens": 200}),
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<StatusCode> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(server.get("/health").0, StatusCode::OK);
}

/// Many clients at once, over every direction of the pool: their rows share decoding steps
/// across adapters, and each answer still equals `datm translate --pool`'s, also when an
/// adapter is loaded meanwhile. A request whose decoding panics fails alone; the server goes
/// on.
#[test]
fn serve_mixes_adapters_in_one_batch_and_survives_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fixture_pool(dir.path());
    let server = Server::start(&pool, &["--num-beams", "2", "--panic-on-input", "BOOM"]);
    let sources: Vec<String> = SOURCES.iter().map(|s| s.to_string()).collect();
    let directions = [("de", "en"), ("fr", "en"), ("en", "de"), ("en", "fr")];
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(directions.len() * sources.len()));
    let clients: Vec<_> = directions
        .iter()
        .flat_map(|&(src, tgt)| sources.iter().map(move |q| (src, tgt, q.clone())))
        .map(|(src, tgt, q)| {
            let (url, barrier) = (server.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let body = json!({"q": q, "source": src, "target": tgt, "format": "text"});
                post(&url, "/translate", &body)
            })
        })
        .collect();
    // An adapter loaded while they decode: it waits for the batch to drain, and rows still
    // waiting then are decoded after it.
    std::thread::sleep(Duration::from_millis(50));
    let (status, body) = server.post(
        "/v1/load_lora_adapter",
        &json!({"lora_name": "extra", "lora_path": lora()}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers: Vec<(StatusCode, Value)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (d, &(src, tgt)) in directions.iter().enumerate() {
        let want = cli_translate(dir.path(), &pool, src, tgt, &sources, "2");
        for (i, want) in want.iter().enumerate() {
            let (status, body) = &answers[d * sources.len() + i];
            assert_eq!(*status, StatusCode::OK, "{body}");
            assert_eq!(
                body["translatedText"],
                json!(want),
                "{src}-{tgt} source {i}"
            );
        }
    }
    // The steps decoded rows of several adapters together.
    let (_, metrics) = server.get("/metrics");
    let mixed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("datm_batch_adapters_bucket{le=\"1\"} "))
        .map(|n| n.parse::<u64>().unwrap());
    let steps = metrics
        .lines()
        .find_map(|l| l.strip_prefix("datm_batch_adapters_count "))
        .map(|n| n.parse::<u64>().unwrap());
    assert!(mixed < steps, "no step mixed adapters:\n{metrics}");

    let (status, body) = translate(&server, "de", "en", json!(["Datei öffnen", "BOOM"]));
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("panicked"),
        "{body}"
    );
    let (status, body) = translate(&server, "de", "en", json!(sources));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        strings(&body["translatedText"]),
        cli_translate(dir.path(), &pool, "de", "en", &sources, "2")
    );
    assert_eq!(server.get("/health").0, StatusCode::OK);
}

#[test]
fn serve_times_out_slow_requests() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fixture_pool(dir.path());
    let server = Server::start(&pool, &["--timeout-s", "0.001"]);
    let prompts: Vec<String> = (0..16).map(|j| format!("Satz {j}")).collect();
    let (status, body) = server.post(
        "/v1/completions",
        &json!({"model": "base", "prompt": prompts, "max_tokens": 200}),
    );
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("0.001"), "{body}");
    // The server is still there.
    assert_eq!(server.get("/health").0, StatusCode::OK);
}

/// The OpenAI Python client as tools use it: `models.list` names the pool's adapters and
/// `base`, and `completions.create` gets what the HTTP API answers (single and batched).
#[test]
fn serve_speaks_to_the_openai_python_client() {
    let Some(python) = datm_testkit::python_with("openai") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pool = fixture_pool(dir.path());
    let server = Server::start(&pool, &["--num-beams", "1"]);
    let prompt = "Translate this from German to English:\nGerman: Hallo\nEnglish:";
    let script = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="unused", max_retries=0)
models = sorted(m.id for m in client.models.list().data)
one = client.completions.create(model="xx-en.de", prompt=sys.argv[2], max_tokens=12)
many = client.completions.create(model="base", prompt=[sys.argv[2], "Hallo"], max_tokens=4)
print(json.dumps({
    "models": models,
    "text": one.choices[0].text,
    "finish": one.choices[0].finish_reason,
    "tokens": one.usage.completion_tokens,
    "many": [c.text for c in sorted(many.choices, key=lambda c: c.index)],
}))
"#;
    let out = Command::new(&python)
        .args(["-c", script, &server.url, prompt])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want_models: Vec<String> = datm_pool::Router::open(&pool)
        .unwrap()
        .adapters()
        .map(|a| a.id.clone())
        .chain(["base".to_string()])
        .collect();
    want_models.sort();
    assert_eq!(got["models"], json!(want_models));
    let (status, direct) = server.post(
        "/v1/completions",
        &json!({"model": "xx-en.de", "prompt": prompt, "max_tokens": 12}),
    );
    assert_eq!(status, StatusCode::OK, "{direct}");
    assert_eq!(got["text"], direct["choices"][0]["text"]);
    assert_eq!(got["finish"], direct["choices"][0]["finish_reason"]);
    assert_eq!(got["tokens"], direct["usage"]["completion_tokens"]);
    let (_, batch) = server.post(
        "/v1/completions",
        &json!({"model": "base", "prompt": [prompt, "Hallo"], "max_tokens": 4}),
    );
    let texts: Vec<&Value> = batch["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["text"])
        .collect();
    assert_eq!(got["many"], json!(texts));
}
