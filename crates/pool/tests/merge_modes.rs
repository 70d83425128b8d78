//! The plans of `pool merge`'s modes (DATM group-wise, per direction, En→XX) and the checks
//! of merge specs: no adapter is loaded here.

use datm_lang::{parse_list, Direction, Grouping, Lang};
use datm_pool::merge::{check_spec, declared_merges};
use datm_pool::{MergeMode, MergeSettings, MergeSpec, PoolPlan, Strategy};

/// Two groups of two languages each: de, sv (1) and es, it (2).
fn two_groups() -> Grouping {
    Grouping::from_toml(
        "[groups]\n1 = [\"de\", \"sv\"]\n2 = [\"es\", \"it\"]\n",
        "g.toml",
    )
    .unwrap()
}

fn langs() -> Vec<Lang> {
    parse_list("de,sv,es,it").unwrap()
}

fn plan(strategy: Strategy) -> PoolPlan {
    PoolPlan::build(strategy, &langs(), &two_groups()).unwrap()
}

fn route(p: &PoolPlan, d: &str) -> String {
    p.routes[&d.parse::<Direction>().unwrap()].clone()
}

fn ids(merges: &[(String, MergeSpec)]) -> Vec<&str> {
    merges.iter().map(|(id, _)| id.as_str()).collect()
}

#[test]
fn groupwise_leaves_two_adapters_per_group() {
    let dat = plan(Strategy::Dat);
    assert_eq!(dat.adapters.len(), 4 + 2);
    let (datm, merges) = dat
        .merged_by(MergeMode::Groupwise, &MergeSettings::default())
        .unwrap();
    assert_eq!(datm.adapters.len(), 2 * 2, "2·N_G");
    assert_eq!(datm.strategy, Strategy::Datm);
    assert_eq!(ids(&merges), ["xx-en.g1", "xx-en.g2"]);
    assert_eq!(merges[0].1.sources, ["xx-en.de", "xx-en.sv"]);
    for (d, id) in [
        ("de-en", "xx-en.g1"),
        ("sv-en", "xx-en.g1"),
        ("it-en", "xx-en.g2"),
        ("en-sv", "en-xx.g1"),
        ("en-it", "en-xx.g2"),
    ] {
        assert_eq!(route(&datm, d), id, "{d}");
    }
    // the same plan as the DATM strategy builds
    assert_eq!(datm, plan(Strategy::Datm));
}

#[test]
fn per_direction_leaves_two_adapters() {
    for source in [Strategy::Dat, Strategy::Separate] {
        let (merged, merges) = plan(source)
            .merged_by(MergeMode::PerDirection, &MergeSettings::default())
            .unwrap();
        assert_eq!(merged.adapters.len(), 2, "{source}");
        assert_eq!(merged.strategy, Strategy::Custom);
        assert_eq!(ids(&merges), ["xx-en.all", "en-xx.all"], "{source}");
        for l in langs() {
            assert_eq!(route(&merged, &format!("{l}-en")), "xx-en.all");
            assert_eq!(route(&merged, &format!("en-{l}")), "en-xx.all");
        }
    }
    let (_, merges) = plan(Strategy::Dat)
        .merged_by(MergeMode::PerDirection, &MergeSettings::default())
        .unwrap();
    assert_eq!(
        merges[0].1.sources,
        ["xx-en.de", "xx-en.sv", "xx-en.es", "xx-en.it"]
    );
    assert_eq!(merges[1].1.sources, ["en-xx.g1", "en-xx.g2"]);
}

#[test]
fn en_xx_merges_one_level_coarser_than_trained() {
    // separate pool: En→XX per language → per group, like XX→En (2·N_G)
    let (merged, merges) = plan(Strategy::Separate)
        .merged_by(MergeMode::EnXx, &MergeSettings::default())
        .unwrap();
    assert_eq!(merged.adapters.len(), 4);
    assert_eq!(
        ids(&merges),
        ["xx-en.g1", "xx-en.g2", "en-xx.merged.g1", "en-xx.merged.g2"]
    );
    assert_eq!(merges[2].1.sources, ["en-de", "en-sv"]);
    assert_eq!(route(&merged, "en-it"), "en-xx.merged.g2");
    assert_eq!(route(&merged, "sv-en"), "xx-en.g1");

    // DAT pool: En→XX already per group → all into one (N_G + 1)
    let (merged, merges) = plan(Strategy::Dat)
        .merged_by(MergeMode::EnXx, &MergeSettings::default())
        .unwrap();
    assert_eq!(merged.adapters.len(), 2 + 1);
    assert_eq!(ids(&merges), ["xx-en.g1", "xx-en.g2", "en-xx.all"]);
    assert_eq!(route(&merged, "en-de"), "en-xx.all");

    // a DATM plan: only the En→XX side is left to merge
    let (merged, merges) = plan(Strategy::Datm)
        .merged_by(MergeMode::EnXx, &MergeSettings::default())
        .unwrap();
    assert_eq!(ids(&merges), ["en-xx.all"]);
    assert_eq!(merged.adapters.len(), 3);
}

#[test]
fn a_mode_that_merges_nothing_says_so() {
    for (source, mode) in [
        (Strategy::Datm, MergeMode::Groupwise),
        (Strategy::Multilingual, MergeMode::PerDirection),
        (Strategy::Group, MergeMode::EnXx),
    ] {
        let err = plan(source)
            .merged_by(mode, &MergeSettings::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("merge mode {mode} would merge nothing")),
            "{source} {mode}: {err}"
        );
    }
    // merging what per-direction left is nothing either
    let (merged, _) = plan(Strategy::Dat)
        .merged_by(MergeMode::PerDirection, &MergeSettings::default())
        .unwrap();
    assert!(merged
        .merged_by(MergeMode::PerDirection, &MergeSettings::default())
        .is_err());
}

#[test]
fn settings_reach_every_spec_and_weights_must_fit() {
    let settings = MergeSettings {
        method: "dare_ties".into(),
        density: Some(0.5),
        weights: vec![1.0, 0.5],
        rank: Some(4),
        majority_sign: "frequency".into(),
        ..MergeSettings::default()
    };
    let (_, merges) = plan(Strategy::Dat)
        .merged_by(MergeMode::Groupwise, &settings)
        .unwrap();
    for (_, spec) in &merges {
        assert_eq!(spec.weights, [1.0, 0.5]);
        assert_eq!(spec.rank, Some(4));
        assert_eq!(spec.majority_sign, "frequency");
        assert_eq!(spec.method, "dare_ties");
    }
    // per-direction merges 4 XX→En adapters: 2 weights do not fit
    let err = plan(Strategy::Dat)
        .merged_by(MergeMode::PerDirection, &settings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("merge xx-en.all: 2 weights given for 4 sources"),
        "{err}"
    );
}

/// A change to a merge spec.
type Edit = fn(&mut MergeSpec);

#[test]
fn merge_specs_are_checked() {
    let good = MergeSettings::default().spec(vec!["a".into(), "b".into()]);
    check_spec("m", &good).unwrap();
    let cases: [(Edit, &str); 7] = [
        (|s| s.majority_sign = "most".into(), "unknown majority-sign"),
        (|s| s.method = "average".into(), "unknown merge method"),
        (|s| s.space = "weights".into(), "unknown merge space"),
        (|s| s.density = Some(1.5), "density must be in [0, 1]"),
        (|s| s.rank = Some(0), "rank must be at least 1"),
        (
            |s| {
                s.space = "factors".into();
                s.rank = Some(8);
            },
            "delta space only",
        ),
        (
            |s| s.weights = vec![1.0],
            "1 weights given for 2 sources (a, b)",
        ),
    ];
    for (edit, want) in cases {
        let mut spec = good.clone();
        edit(&mut spec);
        let err = check_spec("m", &spec).unwrap_err().to_string();
        assert!(err.starts_with("merge m: ") && err.contains(want), "{err}");
    }
    let mut own = good.clone();
    own.sources.push("m".into());
    assert!(check_spec("m", &own).is_err());
}

#[test]
fn old_specs_parse_and_defaults_are_not_written() {
    // a merge spec as earlier versions wrote it (no rank, no majority_sign)
    let old = r#"{"sources": ["a", "b"], "method": "ties", "density": 0.2, "space": "delta"}"#;
    let spec: MergeSpec = serde_json::from_str(old).unwrap();
    assert_eq!(
        spec,
        MergeSettings::default().spec(vec!["a".into(), "b".into()])
    );
    let text = serde_json::to_string(&spec).unwrap();
    assert!(
        !text.contains("rank") && !text.contains("majority_sign"),
        "{text}"
    );
    let mut spec = spec;
    spec.majority_sign = "frequency".into();
    spec.rank = Some(2);
    let back: MergeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn custom_plan_merges_are_validated_and_ordered() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/custom-merge-plan.toml"),
    )
    .unwrap();
    let plan = PoolPlan::from_toml(&text, "custom-merge-plan.toml").unwrap();
    let merges = declared_merges(&plan).unwrap();
    assert_eq!(ids(&merges), ["xx-en.germanic", "xx-en.romance"]);
    assert_eq!(merges[0].1.weights, [1.0, 0.5]);
    assert_eq!(merges[1].1.majority_sign, "frequency");
    assert_eq!(merges[1].1.rank, Some(2));

    // a weight count that does not fit the sources is refused when the plan is read
    let bad = text.replace("weights = [1.0, 0.5]", "weights = [1.0, 0.5, 2.0]");
    let err = PoolPlan::from_toml(&bad, "custom-merge-plan.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("merge xx-en.germanic: 3 weights given for 2 sources"),
        "{err}"
    );
    // a merged adapter may serve only its sources' directions
    let bad = text.replace(
        "directions = [\"de-en\", \"sv-en\"]",
        "directions = [\"de-en\", \"sv-en\", \"es-en\"]",
    );
    let err = PoolPlan::from_toml(&bad, "custom-merge-plan.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("serves es-en, but none of its sources"),
        "{err}"
    );

    // merges of merges run after their sources; a cycle is named
    let mut nested = plan.clone();
    let mut outer = nested.adapter("xx-en.germanic").unwrap().clone();
    outer.id = "xx-en.outer".into();
    outer.merge.as_mut().unwrap().sources = vec!["xx-en.germanic".into(), "xx-en.romance".into()];
    nested.adapters.insert(0, outer);
    assert_eq!(
        ids(&declared_merges(&nested).unwrap()),
        ["xx-en.germanic", "xx-en.romance", "xx-en.outer"]
    );
    let germanic = nested
        .adapters
        .iter_mut()
        .find(|a| a.id == "xx-en.germanic")
        .unwrap();
    germanic.merge.as_mut().unwrap().sources = vec!["xx-en.outer".into(), "xx-en.de".into()];
    let err = declared_merges(&nested).unwrap_err().to_string();
    assert!(err.contains("in a cycle"), "{err}");
}
