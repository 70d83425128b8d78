//! `datm report` on synthetic results stores: several stores as one table, the formats,
//! filters, figures, and clear errors for missing or foreign store files.

#[path = "../../report/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn datm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .arg("report")
        .args(args)
        .output()
        .expect("running datm")
}

fn ok(args: &[&str]) -> String {
    let out = datm(args);
    assert!(
        out.status.success(),
        "datm report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err(args: &[&str]) -> String {
    let out = datm(args);
    assert!(!out.status.success(), "datm report {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// Two stores of one experiment: multilingual and separate in one, dat and datm in the
/// other (as two pools trained by separate runs).
fn two_stores(dir: &Path) -> (PathBuf, PathBuf) {
    let mut systems = experiment("e", false);
    systems.truncate(4);
    let (a, b) = (dir.join("a.sqlite"), dir.join("b.sqlite"));
    write_store(&a, &systems[..2]);
    write_store(&b, &systems[2..]);
    (a, b)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_stores_report_as_one_markdown_table() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_stores(dir.path());
    let md = ok(&["--db", s(&a), "--db", s(&b), "--bootstrap", "200"]);
    let table1 = md.split("### Table 1 view").nth(1).unwrap();
    let table1 = table1.split("###").next().unwrap();
    for system in ["multilingual", "separate", "dat", "datm"] {
        assert!(
            table1.contains(&format!("\n| {system} |")),
            "{system}: {table1}"
        );
    }
    assert!(md.contains("200 resamples, seed 12345"), "{md}");
    assert!(md.contains("| datm − dat |"), "{md}");
    assert!(md.contains("COMET was not computed"), "{md}");
}

#[test]
fn formats_filters_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_stores(dir.path());
    let csv_path = dir.path().join("out.csv");
    ok(&[
        "--db",
        s(&a),
        "--db",
        s(&b),
        "--format",
        "csv",
        "-o",
        s(&csv_path),
    ]);
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with("view,test_set,system,"), "{csv}");
    // 4 systems × 8 directions × 2 metrics (BLEU, chrF)
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("score,")).count(),
        4 * 8 * 2
    );

    let html_path = dir.path().join("report.html");
    let figs = dir.path().join("figs");
    let out = datm(&[
        "--db",
        s(&a),
        "--db",
        s(&b),
        "-o",
        s(&html_path),
        "--figures",
        s(&figs),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "the format follows the extension"
    );
    let svgs: Vec<_> = std::fs::read_dir(&figs).unwrap().flatten().collect();
    assert_eq!(svgs.len(), html.matches("<svg").count());
    assert!(svgs.len() >= 2, "{svgs:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wrote") && stderr.contains("skipped"),
        "{stderr}"
    );

    let json = ok(&[
        "--db",
        s(&a),
        "--db",
        s(&b),
        "--format",
        "json",
        "--system",
        "dat",
        "--system",
        "datm",
        "--direction",
        "de-en,en-de",
        "--baseline",
        "dat",
        "--bootstrap",
        "0",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["baseline"], "dat");
    assert_eq!(v["sections"][0]["scores"].as_array().unwrap().len(), 4);
    assert_eq!(v["sections"][0]["comparisons"][0]["measure"], "merge-cost");

    let tex = ok(&["--db", s(&a), "--format", "latex"]);
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));

    let groups = dir.path().join("groups.toml");
    std::fs::write(&groups, "[groups]\n7 = [\"de\", \"is\", \"es\", \"gl\"]\n").unwrap();
    let md = ok(&["--db", s(&a), "--groups", s(&groups), "--bootstrap", "0"]);
    assert!(
        md.contains("G7 XX→En") && md.contains("Groups: G7 = de, is, es, gl."),
        "{md}"
    );
}

#[test]
fn missing_foreign_and_wrong_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_stores(dir.path());
    let missing = dir.path().join("nowhere.sqlite");
    let e = err(&["--db", s(&a), "--db", s(&missing)]);
    assert!(
        e.contains("nowhere.sqlite") && e.contains("no such file"),
        "{e}"
    );
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "plain text, not a results store at all").unwrap();
    let e = err(&["--db", s(&foreign)]);
    assert!(e.contains("notes.txt"), "{e}");
    let e = err(&["--db", s(&a), "--baseline", "nmt"]);
    assert!(e.contains("baseline \"nmt\""), "{e}");
    let e = err(&["--db", s(&a), "--format", "pdf"]);
    assert!(e.contains("unknown report format \"pdf\""), "{e}");
    let e = err(&["--db", s(&a), "--direction", "xx-en"]);
    assert!(e.contains("--direction xx-en"), "{e}");
    let e = err(&["--db", s(&a), "--experiment", "other"]);
    assert!(
        e.contains("no experiment \"other\"") && e.contains("(there are: e)"),
        "{e}"
    );
    assert!(err(&[]).contains("--db"), "--db is required");
}
