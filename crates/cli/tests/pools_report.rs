//! Two pools translated in separate runs, each into its own results store, report as one
//! table: `pool translate --db` twice, then `datm report --db A --db B`.

mod common;

use std::path::Path;

use common::{datm, fixture_pool, model, run};
use serde_json::Value;

/// An ALMA-layout test split for de and fr (both directions), three pairs each.
fn write_test_sets(dir: &Path) {
    let pairs = [
        ("Datei öffnen", "Ouvrir le fichier", "Open file"),
        ("Fenster schließen", "Fermer la fenêtre", "Close window"),
        (
            "Dokument speichern",
            "Enregistrer le document",
            "Save document",
        ),
    ];
    for (lang, col) in [("de", 0), ("fr", 1)] {
        let rows: Vec<Value> = pairs
            .iter()
            .map(|p| {
                let x = if col == 0 { p.0 } else { p.1 };
                serde_json::json!({"translation": {lang: x, "en": p.2}})
            })
            .collect();
        let folder = dir.join(format!("{lang}en"));
        std::fs::create_dir_all(&folder).unwrap();
        let text = serde_json::to_string(&rows).unwrap();
        for d in [format!("{lang}-en"), format!("en-{lang}")] {
            std::fs::write(folder.join(format!("test.{d}.json")), &text).unwrap();
        }
    }
}

/// Translates `pool` greedily into `out`, recording it as `system` in `db`.
fn translate(pool: &Path, data: &Path, out: &Path, db: &Path, system: &str) {
    let args = translate_args(pool, data, out, db, system);
    datm(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The `pool translate` command line of [`translate`].
fn translate_args(pool: &Path, data: &Path, out: &Path, db: &Path, system: &str) -> Vec<String> {
    [
        "pool",
        "translate",
        "--pool",
        s(pool),
        "--model",
        s(&model()),
        "--data",
        s(data),
        "--out",
        s(out),
        "--db",
        s(db),
        "--experiment",
        "tiny",
        "--system",
        system,
        "--num-beams",
        "1",
        "--max-new-tokens",
        "6",
    ]
    .map(str::to_string)
    .to_vec()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pools_translated_in_separate_runs_report_as_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_test_sets(&data);
    let (dat_dir, multi_dir) = (dir.path().join("a"), dir.path().join("b"));
    let dat = fixture_pool(&dat_dir, "dat", "de,fr", 2.0);
    let multi = fixture_pool(&multi_dir, "multilingual", "de,fr", 1.0);
    let (db_a, db_b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    translate(&dat, &data, &dat_dir.join("out"), &db_a, "dat");
    translate(&multi, &data, &multi_dir.join("out"), &db_b, "multilingual");
    // Re-recording a pool is idempotent: the store still holds one system.
    translate(&multi, &data, &multi_dir.join("out"), &db_b, "multilingual");
    let stored = datm_results::Store::open_existing(&db_b)
        .unwrap()
        .systems()
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].outputs.len(), 4);

    let json: Value = serde_json::from_str(&datm(&[
        "report",
        "--db",
        s(&db_a),
        "--db",
        s(&db_b),
        "--format",
        "json",
    ]))
    .unwrap();
    let names: Vec<&str> = json["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dat", "multilingual"]);
    let section = &json["sections"][0];
    assert_eq!(section["scores"].as_array().unwrap().len(), 8);
    let titles: Vec<String> = section["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} − {}",
                c["system"].as_str().unwrap(),
                c["reference"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(titles, ["dat − multilingual"]);
    let params = |i: usize| json["systems"][i]["params"]["adapters"].as_u64().unwrap();
    assert_eq!(
        (params(0), params(1)),
        (4, 1),
        "DAT: 2 XX→En + 2 En→XX groups"
    );
    let md = datm(&["report", "--db", s(&db_a), "--db", s(&db_b)]);
    assert!(
        md.contains("| dat |") && md.contains("| multilingual |"),
        "{md}"
    );
}

/// `pool translate --device`: a name that is not a device, or a GPU that cannot be opened,
/// stops the command before any work, with the name in the error.
#[test]
fn pool_translate_names_a_device_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_test_sets(&data);
    let pool = fixture_pool(dir.path(), "dat", "de,fr", 2.0);
    let (out, db) = (dir.path().join("out"), dir.path().join("r.sqlite"));
    for (device, want) in [
        ("gpu", "expected cpu, cuda or cuda:N"),
        ("cuda:99", "device cuda:99"),
    ] {
        let mut args = translate_args(&pool, &data, &out, &db, "dat");
        args.extend(["--device".to_string(), device.to_string()]);
        let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{device}: {err}");
    }
    assert!(!db.exists());
}
