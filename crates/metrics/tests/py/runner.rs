//! Runs a reference script of `tests/py/` under the real sacrebleu, for the differential
//! tests. The interpreter is `$DATM_PYTHON` (default `python3`); when it cannot import
//! sacrebleu the tests are skipped with a message.

use std::path::PathBuf;
use std::process::Command;

/// The interpreter for the reference scripts.
fn python() -> String {
    std::env::var("DATM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `tests/py/{script}` with `args` and parses its JSON output, or returns `None`
/// (after printing why) when sacrebleu is not importable.
pub fn run_reference(
    script: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import sacrebleu"]).output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        eprintln!("SKIPPED: `{py} -c 'import sacrebleu'` failed; set DATM_PYTHON to an interpreter with sacrebleu");
        return None;
    }
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "py", script]
        .iter()
        .collect();
    let mut cmd = Command::new(&py);
    cmd.arg(&path).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("reference script prints JSON"))
}
