//! Runs a reference script under the real Python packages, for the differential tests.
//! The interpreter is `$DATM_PYTHON` (default `python3`); when it cannot import what a
//! script needs, the tests are skipped with a message.

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter for the reference scripts.
pub fn python() -> String {
    std::env::var("DATM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `tests/py/{script}` (which needs sacrebleu) with `args` and parses its JSON
/// output, or returns `None` (after printing why) when sacrebleu is not importable.
pub fn run_reference(
    script: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "py", script]
        .iter()
        .collect();
    run_script(&path, "sacrebleu", args, envs)
}

/// Runs the Python script at `path` with `args` and parses its JSON output, or returns
/// `None` (after printing why) when the interpreter cannot `import {imports}`.
pub fn run_script(
    path: &Path,
    imports: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let py = python();
    let probe = Command::new(&py)
        .args(["-c", &format!("import {imports}")])
        .output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        eprintln!(
            "SKIPPED: `{py} -c 'import {imports}'` failed; set DATM_PYTHON to an interpreter \
             with those packages (scripts/test.sh installs them)"
        );
        return None;
    }
    let mut cmd = Command::new(&py);
    cmd.arg(path).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("reference script prints JSON"))
}
