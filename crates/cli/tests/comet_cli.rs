//! `datm comet` on the COMET fixtures: comet-score's text layout, the JSON lines, and the
//! errors for mismatched, empty and non-UTF-8 inputs.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/comet")
}

fn datm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .arg("comet")
        .args(args)
        .current_dir(fixtures())
        .env("HF_HUB_CACHE", fixtures().join("hub"))
        .output()
        .unwrap()
}

fn expected(variant: &str, key: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()[variant][key].clone()
}

#[test]
fn text_output_is_laid_out_as_comet_score() {
    let out = datm(&[
        "--model",
        "sparsemax",
        "-s",
        "src.txt",
        "-t",
        "hyp1.txt",
        "hyp2.txt",
        "-r",
        "ref.txt",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = 59;
    assert_eq!(lines.len(), 2 * n + 2);
    let h1 = expected("sparsemax", "hyp1_batch8");
    let h2 = expected("sparsemax", "hyp2_batch8");
    assert_eq!(
        lines[0],
        format!(
            "hyp1.txt\tSegment 0\tscore: {:.4}",
            h1["scores"][0].as_f64().unwrap()
        )
    );
    assert_eq!(
        lines[3],
        format!(
            "hyp2.txt\tSegment 1\tscore: {:.4}",
            h2["scores"][1].as_f64().unwrap()
        )
    );
    assert_eq!(
        lines[2 * n],
        format!(
            "hyp1.txt\tscore: {:.4}",
            h1["system_score"].as_f64().unwrap()
        )
    );
    assert_eq!(
        lines[2 * n + 1],
        format!(
            "hyp2.txt\tscore: {:.4}",
            h2["system_score"].as_f64().unwrap()
        )
    );
}

#[test]
fn json_lines_carry_full_precision_scores() {
    let out = datm(&[
        "--model",
        "qe",
        "-s",
        "src.txt",
        "-t",
        "hyp1.txt",
        "--json",
        "--batch-size",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hyp"], "hyp1.txt");
    let want = expected("qe", "hyp1_batch1");
    let got = v["scores"].as_array().unwrap();
    for (a, b) in got.iter().zip(want["scores"].as_array().unwrap()) {
        assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-5);
    }
    let sys = v["system_score"].as_f64().unwrap() - want["system_score"].as_f64().unwrap();
    assert!(sys.abs() < 1e-6);
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "one\ntwo\n").unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"ok\nbad \xff\n").unwrap();
    let cases = [
        (
            short.to_str().unwrap(),
            "hyp1.txt has 59 lines but the sources",
        ),
        (empty.to_str().unwrap(), "empty.txt is empty"),
        (bad.to_str().unwrap(), "bad.txt:2: invalid UTF-8"),
    ];
    for (src, msg) in cases {
        let out = datm(&[
            "--model",
            "sparsemax",
            "-s",
            src,
            "-t",
            "hyp1.txt",
            "-r",
            "ref.txt",
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{err}");
    }
    let out = datm(&["--model", "sparsemax", "-s", "src.txt", "-t", "hyp1.txt"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs references (-r)"));
}
