//! `datm pool merge` on a pool of real PEFT adapters (the adapter crate's fixtures): the
//! merge options reach the merged adapter, the ablation modes write their manifests, a
//! custom plan's declared merges run, and bad options fail naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datm_adapter::{Adapter, MajoritySign, MergeOptions, Method, Space};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn datm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeds(args: &[&str]) -> String {
    let out = datm(args);
    assert!(out.status.success(), "datm {args:?}: {}", stderr(&out));
    stderr(&out)
}

fn fails(args: &[&str]) -> String {
    let out = datm(args);
    assert!(!out.status.success(), "datm {args:?} succeeded");
    stderr(&out)
}

/// The adapter id `datm pool route` prints for a direction of a pool (folder or manifest).
fn route(pool: &Path, src: &str, tgt: &str) -> String {
    let out = datm(&[
        "pool",
        "route",
        "--pool",
        pool.to_str().unwrap(),
        "--src",
        src,
        "--tgt",
        tgt,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    line.split('\t').next().unwrap_or_default().to_string()
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/adapter").join(name)
}

/// A pool folder holding `fixture` adapters under the given ids.
fn fill_pool(pool: &Path, adapters: &[(&str, &str)]) {
    for (id, fx) in adapters {
        let to = pool.join(id);
        std::fs::create_dir_all(&to).unwrap();
        for f in ["adapter_config.json", "adapter_model.safetensors"] {
            std::fs::copy(fixture(fx).join(f), to.join(f)).unwrap();
        }
    }
}

/// A DAT pool of de, nl, sv (one group: three XX→En adapters, one En→XX adapter). The
/// fixtures peft_a, peft_b and peft_c differ only in scaling (their ΔW have equal signs);
/// peft_d (rank 6) is independent, so sign elections can disagree.
fn dat_pool(dir: &Path) -> PathBuf {
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let manifest = pool.join("pool.toml");
    succeeds(&[
        "pool",
        "plan",
        "--strategy",
        "dat",
        "--langs",
        "de,nl,sv",
        "-o",
        manifest.to_str().unwrap(),
    ]);
    fill_pool(
        &pool,
        &[
            ("xx-en.de", "peft_a"),
            ("xx-en.nl", "peft_d"),
            ("xx-en.sv", "peft_b"),
            ("en-xx.g1", "peft_a"),
        ],
    );
    pool
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Largest entry-wise difference of the ΔW = B·A of two adapters over their modules.
fn max_abs_diff(a: &Adapter, b: &Adapter) -> f32 {
    let mut worst = 0f32;
    for (name, pa) in &a.modules {
        let pb = &b.modules[name];
        let da = (pa.b.matmul(&pa.a).unwrap() * a.scaling_for(name)).unwrap();
        let db = (pb.b.matmul(&pb.a).unwrap() * b.scaling_for(name)).unwrap();
        let d = (da - db).unwrap().abs().unwrap().max_all().unwrap();
        worst = worst.max(d.to_scalar::<f32>().unwrap());
    }
    worst
}

#[test]
fn merge_options_reach_the_merged_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dat_pool(dir.path());
    let p = pool.to_str().unwrap();
    let same = [
        "pool",
        "merge",
        "--groupwise",
        "--pool",
        p,
        "--weights",
        "1,0.5,2",
        "--rank",
        "2",
        "--majority-sign",
        "frequency",
        "--density",
        "0.5",
    ];
    let log = succeeds(&same);
    let merged_dir = pool.join("xx-en.g1");
    assert!(log.contains("(weights 1, 0.5, 2): merged"), "{log}");
    let config = json(&merged_dir.join("adapter_config.json"));
    assert_eq!(config["r"], 2, "{config}");
    let record = json(&merged_dir.join("merge.json"));
    assert_eq!(record["weights"], serde_json::json!([1.0, 0.5, 2.0]));
    assert_eq!(record["rank"], 2);
    assert_eq!(record["majority_sign"], "frequency");
    assert_eq!(record["density"], 0.5);

    // the merged adapter is the adapter crate's merge of the sources with these options
    let sources: Vec<Adapter> = record["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Adapter::load(&pool.join(s.as_str().unwrap())).unwrap())
        .collect();
    let opts = MergeOptions {
        method: Method::Ties,
        space: Space::Delta,
        density: 0.5,
        majority_sign: MajoritySign::Frequency,
        seed: 0,
        rank: Some(2),
    };
    let merged = Adapter::load(&merged_dir).unwrap();
    let weights = [1.0, 0.5, 2.0];
    let expected = datm_adapter::merge(&sources, &weights, &opts).unwrap();
    assert!(max_abs_diff(&merged, &expected) < 1e-5);
    let total = MergeOptions {
        majority_sign: MajoritySign::Total,
        ..opts.clone()
    };
    let by_mass = datm_adapter::merge(&sources, &weights, &total).unwrap();
    assert!(
        max_abs_diff(&merged, &by_mass) > 1e-4,
        "the sign election changes the result"
    );

    // the manifest routes the group's XX→En directions to the merged adapter
    let manifest = std::fs::read_to_string(pool.join("datm.toml")).unwrap();
    assert!(manifest.contains("de-en = \"xx-en.g1\""), "{manifest}");

    // same options again: kept; other weights: merged again, and the result changes
    assert!(succeeds(&same).contains(": up to date"));
    let mut ones = same;
    ones[6] = "1,1,1";
    assert!(succeeds(&ones).contains(": merged"));
    let reweighted = Adapter::load(&merged_dir).unwrap();
    assert_eq!(reweighted.config.r, 2);
    assert!(
        max_abs_diff(&merged, &reweighted) > 1e-4,
        "weights change the result"
    );
}

#[test]
fn bad_merge_options_fail_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dat_pool(dir.path());
    let p = pool.to_str().unwrap();
    let err = fails(&[
        "pool",
        "merge",
        "--groupwise",
        "--pool",
        p,
        "--weights",
        "1,2",
    ]);
    assert!(err.contains("2 weights given for 3 sources"), "{err}");
    let err = fails(&[
        "pool",
        "merge",
        "--groupwise",
        "--pool",
        p,
        "--space",
        "factors",
        "--rank",
        "2",
    ]);
    assert!(err.contains("delta space only"), "{err}");
    let err = fails(&["pool", "merge", "--pool", p]);
    assert!(err.contains("declares no merges"), "{err}");
    let err = fails(&["pool", "merge", "--pool", p, "--rank", "2"]);
    assert!(err.contains("--groupwise|--per-direction|--en-xx"), "{err}");
    // nothing was merged by the failed runs
    assert!(!pool.join("xx-en.g1").exists());
}

#[test]
fn ablation_modes_write_their_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dat_pool(dir.path());
    let p = pool.to_str().unwrap();
    let log = succeeds(&["pool", "merge", "--per-direction", "--pool", p]);
    assert!(
        log.contains("per-direction merge: 2 adapters (4 before)"),
        "{log}"
    );
    let manifest = pool.join("datm-per-direction.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("nl-en = \"xx-en.all\""), "{text}");
    assert!(pool.join("xx-en.all/merge.json").is_file());
    assert_eq!(route(&manifest, "sv", "en"), "xx-en.all");
    assert_eq!(
        route(&manifest, "en", "sv"),
        "en-xx.g1",
        "a single En→XX adapter stays"
    );
    // en-xx: the group's XX→En merge; the one En→XX adapter has nothing to merge with
    let log = succeeds(&["pool", "merge", "--en-xx", "--pool", p]);
    assert!(log.contains("en-xx merge: 2 adapters (4 before)"), "{log}");
    assert!(pool.join("datm-en-xx.toml").is_file());
}

#[test]
fn a_custom_plan_runs_its_declared_merges() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    fill_pool(
        &pool,
        &[
            ("xx-en.de", "peft_a"),
            ("xx-en.sv", "peft_b"),
            ("xx-en.es", "peft_c"),
            ("xx-en.it", "peft_a"),
            ("en-xx.g1", "peft_b"),
            ("en-xx.g2", "peft_c"),
        ],
    );
    let plan = repo().join("examples/custom-merge-plan.toml");
    let manifest = pool.join("pool.toml");
    let log = succeeds(&[
        "pool",
        "merge",
        "--pool",
        pool.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
        "-o",
        manifest.to_str().unwrap(),
    ]);
    assert!(
        log.contains("xx-en.germanic ← xx-en.de, xx-en.sv (weights 1, 0.5): merged"),
        "{log}"
    );
    assert!(
        log.contains("xx-en.romance ← xx-en.es, xx-en.it: merged"),
        "{log}"
    );
    assert_eq!(
        json(&pool.join("xx-en.romance/adapter_config.json"))["r"],
        2
    );
    assert_eq!(route(&pool, "it", "en"), "xx-en.romance");
}
