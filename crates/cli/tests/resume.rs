//! `datm generate -o` / `datm translate -o`: the output is written once, crash-safely, and
//! each finished prompt is kept in OUTPUT.partial meanwhile, from which a stopped run resumes.

mod common;

use common::{datm, model, run};

/// A run whose output cannot be written in the end keeps its journal; started again, it
/// decodes nothing, takes every result from the journal (an altered record shows it) and
/// removes the journal once the output is written.
#[test]
fn a_stopped_generate_resumes_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("prompts.jsonl");
    let prompts = [
        "Datei öffnen",
        "Fenster schließen",
        "Das Haus ist wunderbar.",
    ];
    let lines: Vec<String> = prompts
        .iter()
        .map(|p| serde_json::json!({ "prompt": p }).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let partial = dir.path().join("out.jsonl.partial");
    let model = model();
    let base = [
        "generate",
        "-m",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--num-beams",
        "2",
        "--max-new-tokens",
        "8",
    ];
    let expected = datm(&base);
    assert_eq!(expected.lines().count(), prompts.len());
    let mut refs = base.to_vec();
    refs.extend(["-o", out.to_str().unwrap()]);
    // A directory where the output goes: decoding finishes, the write fails.
    std::fs::create_dir(&out).unwrap();
    let failed = run(&refs);
    assert!(!failed.status.success());
    let journal = std::fs::read_to_string(&partial).unwrap();
    assert_eq!(journal.lines().count(), 1 + prompts.len());
    std::fs::remove_dir(&out).unwrap();
    let altered = journal.replacen("\"text\":\"", "\"text\":\"(kept) ", 1);
    std::fs::write(&partial, altered).unwrap();
    let resumed = run(&refs);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 of 3 prompts were decoded before"),
        "{stderr}"
    );
    assert!(!partial.exists());
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.matches("(kept) ").count(), 1);
    assert_eq!(written.replacen("(kept) ", "", 1), expected);
    // Written again from scratch: the same output, no journal left.
    std::fs::remove_file(&out).unwrap();
    datm(&refs);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert!(!partial.exists());
}

/// `datm translate -o` writes what it prints without `-o`, and leaves no journal.
#[test]
fn translate_writes_its_output_and_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "Datei öffnen\nFenster schließen\n").unwrap();
    let model = model();
    let common = [
        "translate",
        "-m",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--src",
        "de",
        "--tgt",
        "en",
        "--num-beams",
        "2",
        "--max-new-tokens",
        "6",
    ];
    let printed = datm(&common);
    let out = dir.path().join("sub/out.txt");
    let mut with_output = common.to_vec();
    with_output.extend(["-o", out.to_str().unwrap()]);
    assert_eq!(datm(&with_output), "");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), printed);
    let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out.txt"]);
}
