//! Merging inside a pool folder of real PEFT adapters (the adapter crate's fixtures): DATM
//! group-wise, a merge mode, a custom plan's declared merges, and what a merge refuses.

use std::path::{Path, PathBuf};

use datm_adapter::Adapter;
use datm_lang::{parse_list, Grouping};
use datm_pool::merge::{
    merge_declared, merge_groupwise, merge_options, merge_pool, run_merge, MERGE_RECORD,
};
use datm_pool::{MergeMode, MergeSettings, PoolPlan, Router, Strategy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/adapter")
        .join(name)
}

fn copy_adapter(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

fn max_abs_diff(a: &Adapter, b: &Adapter) -> f32 {
    let mut worst = 0f32;
    for (name, pa) in &a.modules {
        let pb = &b.modules[name];
        let da = pa.b.matmul(&pa.a).unwrap();
        let db = pb.b.matmul(&pb.a).unwrap();
        let d = (da - db)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        worst = worst.max(d);
    }
    worst
}

#[test]
fn datm_merges_each_group_and_reroutes() {
    // group 1: de, nl, sv (three XX→En adapters); group 4: fr (kept as is)
    let langs = parse_list("de,nl,sv,fr").unwrap();
    let dat = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
    let pool = tempfile::tempdir().unwrap();
    let sources = [
        ("xx-en.nl", "peft_a"),
        ("xx-en.de", "peft_b"),
        ("xx-en.sv", "peft_c"),
        ("xx-en.fr", "peft_d"),
    ];
    for (id, fx) in sources {
        copy_adapter(&fixture(fx), &pool.path().join(id));
    }
    for id in ["en-xx.g1", "en-xx.g4"] {
        copy_adapter(&fixture("peft_a"), &pool.path().join(id));
    }
    let settings = MergeSettings {
        method: "ties".into(),
        density: Some(0.5),
        space: "delta".into(),
        ..MergeSettings::default()
    };
    let datm = merge_groupwise(&dat, pool.path(), &settings).unwrap();
    assert_eq!(datm.strategy, Strategy::Datm);
    assert_eq!(datm.adapters.len(), 4, "2 groups × 2 directions");
    let merged_spec = datm.adapter("xx-en.g1").unwrap().merge.clone().unwrap();
    assert_eq!(merged_spec.sources, ["xx-en.nl", "xx-en.de", "xx-en.sv"]);
    assert!(pool.path().join("xx-en.g1").join(MERGE_RECORD).is_file());

    // the merged adapter is the adapter crate's TIES merge of the three sources
    let merged = Adapter::load(&pool.path().join("xx-en.g1")).unwrap();
    let inputs: Vec<Adapter> = ["peft_a", "peft_b", "peft_c"]
        .iter()
        .map(|f| Adapter::load(&fixture(f)).unwrap())
        .collect();
    let expected =
        datm_adapter::merge(&inputs, &[1.0; 3], &merge_options(&merged_spec).unwrap()).unwrap();
    assert!(max_abs_diff(&merged, &expected) < 1e-5);
    // and differs from any single source
    assert!(max_abs_diff(&merged, &inputs[0]) > 1e-4);

    // the new manifest routes every direction to an existing adapter
    let path = pool.path().join("datm.toml");
    datm.save(&path).unwrap();
    let router = Router::open(&path).unwrap();
    router.verify_files().unwrap();
    for d in ["de-en", "nl-en", "sv-en"] {
        assert_eq!(
            router.adapter_for(d.parse().unwrap()).unwrap().id,
            "xx-en.g1"
        );
    }
    assert_eq!(
        router.adapter_for("fr-en".parse().unwrap()).unwrap().id,
        "xx-en.fr"
    );
    assert_eq!(
        router.adapter_for("en-sv".parse().unwrap()).unwrap().id,
        "en-xx.g1"
    );

    // running again keeps the merged adapter (resume)
    let modified = std::fs::metadata(pool.path().join("xx-en.g1/adapter_model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    merge_groupwise(&dat, pool.path(), &settings).unwrap();
    let again = std::fs::metadata(pool.path().join("xx-en.g1/adapter_model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, again);
}

#[test]
fn missing_source_is_named() {
    let langs = parse_list("de,nl").unwrap();
    let dat = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
    let pool = tempfile::tempdir().unwrap();
    copy_adapter(&fixture("peft_a"), &pool.path().join("xx-en.nl"));
    let err = merge_groupwise(&dat, pool.path(), &MergeSettings::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("merging xx-en.g1: source adapter \"xx-en.de\""),
        "{err}"
    );
}

fn example_plan(name: &str) -> PoolPlan {
    PoolPlan::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
    )
    .unwrap()
}

fn fill_pool(pool: &Path, adapters: &[(&str, &str)]) {
    for (id, fx) in adapters {
        copy_adapter(&fixture(fx), &pool.join(id));
    }
}

#[test]
fn a_custom_plan_runs_its_declared_merges() {
    let plan = example_plan("custom-merge-plan.toml");
    let pool = tempfile::tempdir().unwrap();
    fill_pool(
        pool.path(),
        &[
            ("xx-en.de", "peft_a"),
            ("xx-en.sv", "peft_b"),
            ("xx-en.es", "peft_c"),
            ("xx-en.it", "peft_a"),
            ("en-xx.g1", "peft_b"),
            ("en-xx.g2", "peft_c"),
        ],
    );
    let runs = merge_declared(&plan, pool.path()).unwrap();
    let merged: Vec<(&str, bool)> = runs.iter().map(|r| (r.id.as_str(), r.merged)).collect();
    assert_eq!(merged, [("xx-en.germanic", true), ("xx-en.romance", true)]);

    // the weights of the spec are used: the adapter crate's merge with weights 1, 0.5
    let germanic = Adapter::load(&pool.path().join("xx-en.germanic")).unwrap();
    let spec = plan
        .adapter("xx-en.germanic")
        .unwrap()
        .merge
        .clone()
        .unwrap();
    let inputs = [
        Adapter::load(&fixture("peft_a")).unwrap(),
        Adapter::load(&fixture("peft_b")).unwrap(),
    ];
    let opts = merge_options(&spec).unwrap();
    let expected = datm_adapter::merge(&inputs, &[1.0, 0.5], &opts).unwrap();
    assert!(max_abs_diff(&germanic, &expected) < 1e-5);
    let unweighted = datm_adapter::merge(&inputs, &[1.0, 1.0], &opts).unwrap();
    assert!(max_abs_diff(&germanic, &unweighted) > 1e-4);
    // rank 2 as declared
    let romance = Adapter::load(&pool.path().join("xx-en.romance")).unwrap();
    assert_eq!(romance.config.r, 2);

    // the plan serves every direction from files in the pool; a rerun keeps both merges
    let manifest = pool.path().join("pool.toml");
    plan.save(&manifest).unwrap();
    Router::open(&manifest).unwrap().verify_files().unwrap();
    let again = merge_declared(&plan, pool.path()).unwrap();
    assert!(again.iter().all(|r| !r.merged));
}

#[test]
fn per_direction_mode_writes_two_adapters_and_records() {
    let langs = parse_list("de,nl,sv").unwrap();
    let dat = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
    let pool = tempfile::tempdir().unwrap();
    fill_pool(
        pool.path(),
        &[
            ("xx-en.de", "peft_a"),
            ("xx-en.nl", "peft_b"),
            ("xx-en.sv", "peft_c"),
            ("en-xx.g1", "peft_a"),
        ],
    );
    let settings = MergeSettings {
        method: "linear".into(),
        ..MergeSettings::default()
    };
    // en-xx.g1 is the only En→XX adapter: only the XX→En side merges
    let (merged, runs) = merge_pool(&dat, pool.path(), MergeMode::PerDirection, &settings).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, "xx-en.all");
    assert_eq!(merged.adapters.len(), 2);
    assert!(pool.path().join("xx-en.all").join(MERGE_RECORD).is_file());
    let path = pool.path().join(MergeMode::PerDirection.manifest());
    merged.save(&path).unwrap();
    Router::open(&path).unwrap().verify_files().unwrap();
}

#[test]
fn a_merge_never_overwrites_a_trained_adapter() {
    let pool = tempfile::tempdir().unwrap();
    fill_pool(
        pool.path(),
        &[("xx-en.de", "peft_a"), ("xx-en.nl", "peft_b")],
    );
    let spec = MergeSettings::default().spec(vec!["xx-en.de".into(), "xx-en.nl".into()]);
    assert!(run_merge("fresh", &spec, pool.path(), pool.path()).unwrap());
    // "trained" holds an adapter without a merge record: merging into its folder is refused
    copy_adapter(&fixture("peft_c"), &pool.path().join("trained"));
    let err = run_merge("trained", &spec, pool.path(), pool.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds an adapter that no merge made"), "{err}");
    assert!(!pool.path().join(".trained.merging").exists());
}
