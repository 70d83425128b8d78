//! Runs a reference script under the real Python packages, for the differential tests.
//! The interpreter is `$DATM_SACREBLEU_PYTHON` (else `$DATM_PYTHON`, else `python3`, with
//! numpy 2: see datm-testkit); when it cannot import what a
//! script needs, the test is skipped, or fails under `CI=true` (see datm-testkit).

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `tests/py/{script}` (which needs sacrebleu) with `args` and parses its JSON
/// output, or returns `None` (after reporting it missing) when sacrebleu is not importable.
#[track_caller]
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
/// `None` (after reporting it missing) when the interpreter cannot `import {imports}`.
#[track_caller]
pub fn run_script(
    path: &Path,
    imports: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let py = datm_testkit::sacrebleu_python_with(imports)?;
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
