//! `datm translate --pool`: the adapter comes from the pool's routing table, and the result
//! equals translating with that adapter given directly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn datm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn translate_routes_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let manifest = pool.join("pool.toml");
    let plan = datm(&["pool", "plan", "--strategy", "dat", "--langs", "de,fr"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    std::fs::write(&manifest, &plan.stdout).unwrap();
    // Only the adapter serving de-en exists: routing to it must work, and a direction whose
    // adapter is missing must fail naming the file.
    let fixture_adapter = repo().join("tests/fixtures/model/tiny-llama-lora");
    let served = pool.join("xx-en.de");
    std::fs::create_dir_all(&served).unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(fixture_adapter.join(f), served.join(f)).unwrap();
    }
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "Datei öffnen\nFenster schließen\n").unwrap();
    let model = repo().join("tests/fixtures/model/tiny-llama");
    let common = [
        "translate",
        "--model",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--num-beams",
        "2",
        "--max-new-tokens",
        "6",
    ];
    let mut routed = common.to_vec();
    routed.extend([
        "--src",
        "de",
        "--tgt",
        "en",
        "--pool",
        pool.to_str().unwrap(),
    ]);
    let via_pool = datm(&routed);
    assert!(
        via_pool.status.success(),
        "{}",
        String::from_utf8_lossy(&via_pool.stderr)
    );
    assert!(String::from_utf8_lossy(&via_pool.stderr).contains("routed to adapter xx-en.de"));

    let mut direct = common.to_vec();
    direct.extend([
        "--src",
        "de",
        "--tgt",
        "en",
        "--adapter",
        served.to_str().unwrap(),
    ]);
    let via_adapter = datm(&direct);
    assert!(via_adapter.status.success());
    assert_eq!(via_pool.stdout, via_adapter.stdout);

    let mut unserved = common.to_vec();
    unserved.extend([
        "--src",
        "en",
        "--tgt",
        "fr",
        "--pool",
        pool.to_str().unwrap(),
    ]);
    let missing = datm(&unserved);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("en-xx.g4"), "{err}");

    let mut not_routed = common.to_vec();
    not_routed.extend([
        "--src",
        "ru",
        "--tgt",
        "en",
        "--pool",
        pool.to_str().unwrap(),
    ]);
    let err = datm(&not_routed);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("ru-en is not served"));
}
