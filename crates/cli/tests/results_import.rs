//! `datm results import`: an outside system's hypothesis files scored into a results store,
//! idempotently, with clear errors for files that do not fit the test set.

use std::path::Path;
use std::process::Command;

use datm_results::Store;

fn datm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(args)
        .output()
        .unwrap()
}

/// An ALMA-layout folder with a de-en / en-de test split of three pairs.
fn write_test_set(dir: &Path) {
    let pairs = [
        ("Datei öffnen", "Open file"),
        ("Fenster schließen", "Close window"),
        ("Das Dokument wurde gespeichert", "The document was saved"),
    ];
    let rows: Vec<String> = pairs
        .iter()
        .map(|(de, en)| serde_json::json!({"translation": {"de": de, "en": en}}).to_string())
        .collect();
    let json = format!("[{}]", rows.join(", "));
    std::fs::create_dir_all(dir.join("deen")).unwrap();
    for name in ["test.de-en.json", "test.en-de.json"] {
        std::fs::write(dir.join("deen").join(name), &json).unwrap();
    }
}

fn import(db: &Path, data: &Path, hyps: &Path) -> std::process::Output {
    datm(&[
        "results",
        "import",
        "--db",
        db.to_str().unwrap(),
        "--experiment",
        "study",
        "--system",
        "x-alma",
        "--test-set",
        data.to_str().unwrap(),
        "--hyps",
        hyps.to_str().unwrap(),
        "--params",
        "29000000000",
    ])
}

#[test]
fn import_scores_like_the_metrics_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hyps, db) = (
        dir.path().join("data"),
        dir.path().join("hyps"),
        dir.path().join("r.sqlite"),
    );
    write_test_set(&data);
    std::fs::create_dir_all(&hyps).unwrap();
    let de_en = "Open a file\nClose the window\nThe document is saved\n";
    std::fs::write(hyps.join("de-en.txt"), de_en).unwrap();
    std::fs::write(hyps.join("en-de.txt"), "Datei öffnen\nFenster\nDokument\n").unwrap();
    std::fs::write(hyps.join("README.md"), "not a hypothesis file").unwrap();
    for _ in 0..2 {
        let out = import(&db, &data, &hyps);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let systems = Store::open_existing(&db).unwrap().systems().unwrap();
    assert_eq!(systems.len(), 1, "re-importing replaces, it does not add");
    let s = &systems[0];
    assert_eq!(
        (s.info.experiment.as_str(), s.info.system.as_str()),
        ("study", "x-alma")
    );
    assert_eq!(s.info.params.unwrap().total(), 29_000_000_000);
    assert_eq!(s.outputs.len(), 2);
    let o = &s.outputs[0];
    assert_eq!(o.direction.to_string(), "de-en");
    assert_eq!(o.test_set.references[2], "The document was saved");
    // The same BLEU as the metrics crate (sacreBLEU-exact) on the same lines.
    let bleu = datm_metrics::Bleu::new(datm_metrics::BleuOptions::default()).unwrap();
    let refs: Vec<Vec<&str>> = o
        .test_set
        .references
        .iter()
        .map(|r| vec![r.as_str()])
        .collect();
    let want = datm_metrics::corpus_score(&bleu, &o.hypotheses, &refs).unwrap();
    assert_eq!(o.score("bleu").unwrap().score, want.score);
    assert_eq!(o.score("bleu").unwrap().stats.as_ref().unwrap().len(), 3);
    assert!(o.score("chrf").unwrap().signature.contains("nc:6"));
}

#[test]
fn mismatched_or_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hyps, db) = (
        dir.path().join("data"),
        dir.path().join("hyps"),
        dir.path().join("r.sqlite"),
    );
    write_test_set(&data);
    std::fs::create_dir_all(&hyps).unwrap();
    let out = import(&db, &data, &hyps);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no hypothesis files"),
        "{err}"
    );
    std::fs::write(hyps.join("de-en.txt"), "only one line\n").unwrap();
    let out = import(&db, &data, &hyps);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("de-en.txt") && err.contains("1 hypotheses for 3 test sentences"),
        "{err}"
    );
    assert!(!db.exists(), "nothing recorded from a failed import");
}
