//! datm-testkit: how a datm test requires a reference it cannot run without (a Python with
//! torch/PEFT/sacrebleu, a real GGUF model, GNU gettext's tools, the system's catalogs).
//!
//! When the reference is missing:
//! - under `CI=true` or `DATM_REQUIRE_REFERENCES=1` the test **fails**, saying what to
//!   install (`scripts/test.sh` installs everything);
//! - otherwise it prints a `SKIPPED` line and appends it to the file named by
//!   `DATM_SKIP_LOG`, so the test script can count skips that cargo's output hides.
//!
//! Use it as a dev-dependency only.

#![forbid(unsafe_code)]

use std::io::Write;
use std::panic::Location;
use std::path::PathBuf;
use std::process::Command;

/// Whether a missing reference fails the test (`CI=true` or `DATM_REQUIRE_REFERENCES=1`).
pub fn references_required() -> bool {
    let var = |name: &str| std::env::var(name).ok();
    required(
        var("CI").as_deref(),
        var("DATM_REQUIRE_REFERENCES").as_deref(),
    )
}

/// [`references_required`] for the given values of `CI` and `DATM_REQUIRE_REFERENCES`.
fn required(ci: Option<&str>, require: Option<&str>) -> bool {
    let yes = |v: Option<&str>| {
        v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
    };
    yes(ci) || yes(require)
}

/// Reports that the calling test cannot run because `what` is missing; `install` says how to
/// get it. Panics when references are required, else prints and logs a `SKIPPED` line; the
/// caller then returns.
#[track_caller]
pub fn missing(what: &str, install: &str) {
    let caller = Location::caller();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("SKIPPED {}::{test}: {what}; {install}", caller.file());
    if references_required() {
        panic!("{line} (a missing reference fails under CI=true / DATM_REQUIRE_REFERENCES=1)");
    }
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("DATM_SKIP_LOG") {
        // One short append per line: whole lines even with tests running in parallel.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            panic!(
                "cannot append to DATM_SKIP_LOG {}: {e}",
                PathBuf::from(log).display()
            );
        }
    }
}

/// How to get the reference Python (the message of a missing-Python skip).
pub const PYTHON_HINT: &str = "run scripts/test.sh, which builds the reference venvs and \
    sets DATM_PYTHON / DATM_SACREBLEU_PYTHON, or point those at a Python that can";

/// The reference interpreter: `$DATM_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("DATM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The reference interpreter if it can `import {modules}` (comma-separated, Python syntax);
/// otherwise reports the reference as [`missing`] and returns `None`.
#[track_caller]
pub fn python_with(modules: &str) -> Option<String> {
    python_passing(python(), &format!("import {modules}"))
}

/// The interpreter for sacrebleu's outputs: `$DATM_SACREBLEU_PYTHON`, else [`python`].
/// sacrebleu's bootstrap statistics depend on numpy's version, and datm follows numpy 2,
/// while the main reference venv must keep numpy < 2 for unbabel-comet.
pub fn sacrebleu_python() -> String {
    std::env::var("DATM_SACREBLEU_PYTHON").unwrap_or_else(|_| python())
}

/// [`sacrebleu_python`] if it can `import {modules}` and runs numpy 2; otherwise reports the
/// reference as [`missing`] and returns `None`.
#[track_caller]
pub fn sacrebleu_python_with(modules: &str) -> Option<String> {
    let check = format!(
        "import numpy, {modules}\nassert int(numpy.__version__.split('.')[0]) >= 2, 'numpy < 2'"
    );
    python_passing(sacrebleu_python(), &check)
}

/// `py` if it runs the Python `code` without error, else reports it [`missing`].
#[track_caller]
fn python_passing(py: String, code: &str) -> Option<String> {
    let ok = Command::new(&py)
        .args(["-c", code])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        let code = code.replace('\n', "; ");
        missing(&format!("`{py}` cannot run `{code}`"), PYTHON_HINT);
        None
    }
}

/// datm's cache folder: `$XDG_CACHE_HOME/datm`, else `$HOME/.cache/datm`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("datm"))
}

/// A real model file: `$var` if set, else `file` in the cache's `models/` folder (where
/// `scripts/fetch-models.sh` puts it); reports it as [`missing`] when absent.
#[track_caller]
pub fn model_file(var: &str, file: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| cache_dir().map(|c| c.join("models").join(file)));
    match path {
        Some(p) if p.is_file() => Some(p),
        other => {
            let looked = other.map_or("no cache folder".into(), |p| p.display().to_string());
            missing(
                &format!("model {file} not found ({looked})"),
                &format!("run scripts/fetch-models.sh or set {var}"),
            );
            None
        }
    }
}

/// Whether `program` runs (`program --version` starts); reports it as [`missing`] otherwise,
/// naming the Debian `package` that provides it.
#[track_caller]
pub fn program(program: &str, package: &str) -> bool {
    let runs = Command::new(program).arg("--version").output().is_ok();
    if !runs {
        missing(
            &format!("cannot run `{program}`"),
            &format!("install the Debian package {package} (scripts/test.sh does)"),
        );
    }
    runs
}

/// Every gettext catalog (`/usr/share/locale/*/LC_MESSAGES/*.mo`), sorted; reports them as
/// [`missing`] and returns `None` when there are none.
#[track_caller]
pub fn system_catalogs() -> Option<Vec<PathBuf>> {
    let mut all: Vec<PathBuf> = std::fs::read_dir("/usr/share/locale")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|l| std::fs::read_dir(l.path().join("LC_MESSAGES")).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mo"))
        .collect();
    if all.is_empty() {
        missing(
            "no gettext catalogs under /usr/share/locale/*/LC_MESSAGES",
            "install Debian packages that ship translations, e.g. libc-l10n and \
             libglib2.0-data (scripts/test.sh does)",
        );
        return None;
    }
    all.sort();
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_or_the_explicit_switch_makes_references_required() {
        assert!(required(Some("true"), None));
        assert!(required(Some("1"), None));
        assert!(required(None, Some("1")));
        assert!(required(Some("false"), Some("TRUE")));
        assert!(!required(None, None));
        assert!(!required(Some("false"), Some("0")));
        assert!(!required(Some(""), None));
    }

    #[test]
    fn the_cache_lives_under_xdg_or_home() {
        let dir = cache_dir().expect("HOME or XDG_CACHE_HOME is set where tests run");
        assert!(dir.ends_with("datm"), "{}", dir.display());
    }
}
