//! Helpers shared by the CLI's integration tests: running the binary, the tiny fixture
//! model, and pools built from the fixture adapter.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tiny LLaMA fixture model.
pub fn model() -> PathBuf {
    repo().join("tests/fixtures/model/tiny-llama")
}

/// The fixture LoRA adapter of the tiny model.
pub fn lora() -> PathBuf {
    repo().join("tests/fixtures/model/tiny-llama-lora")
}

/// Runs `datm` with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `datm` with `args`, which must succeed; returns its stdout.
pub fn datm(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "datm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `strategy` pool for `langs` in `dir/pool`, every adapter a copy of the fixture
/// adapter; the En→XX ones (ids starting `en-`) with `lora_alpha` times `en_scale`, so that
/// routing to the wrong side shows in the outputs.
pub fn fixture_pool(dir: &Path, strategy: &str, langs: &str, en_scale: f64) -> PathBuf {
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let plan = datm(&["pool", "plan", "--strategy", strategy, "--langs", langs]);
    std::fs::write(pool.join("pool.toml"), plan).unwrap();
    let router = datm_pool::Router::open(&pool).unwrap();
    for a in &router.plan().adapters {
        let out = pool.join(&a.id);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(
            lora().join("adapter_model.safetensors"),
            out.join("adapter_model.safetensors"),
        )
        .unwrap();
        let mut cfg: Value = serde_json::from_str(
            &std::fs::read_to_string(lora().join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        if a.id.starts_with("en-") {
            cfg["lora_alpha"] = json!(cfg["lora_alpha"].as_f64().unwrap() * en_scale);
        }
        std::fs::write(out.join("adapter_config.json"), cfg.to_string()).unwrap();
    }
    pool
}
