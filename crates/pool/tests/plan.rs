//! Strategy plans: adapter counts, routing, validation errors, manifests.

use datm_lang::{non_english, parse_list, Direction, Grouping, Lang};
use datm_pool::{MergeSettings, PoolPlan, Strategy};

fn all49() -> Vec<Lang> {
    non_english().collect()
}

fn plan(strategy: Strategy, langs: &[Lang]) -> PoolPlan {
    PoolPlan::build(strategy, langs, &Grouping::default()).unwrap()
}

#[test]
fn adapter_counts_on_fifty_languages() {
    let langs = all49();
    assert_eq!(plan(Strategy::Multilingual, &langs).adapters.len(), 1);
    assert_eq!(plan(Strategy::Group, &langs).adapters.len(), 8);
    assert_eq!(plan(Strategy::Separate, &langs).adapters.len(), 98);
    assert_eq!(plan(Strategy::Dat, &langs).adapters.len(), 49 + 8);
    assert_eq!(plan(Strategy::Datm, &langs).adapters.len(), 2 * 8);
    for s in [
        Strategy::Multilingual,
        Strategy::Group,
        Strategy::Separate,
        Strategy::Dat,
        Strategy::Datm,
    ] {
        assert_eq!(plan(s, &langs).routes.len(), 98, "{s}");
    }
}

#[test]
fn dat_routes_by_direction() {
    let langs = parse_list("de,nl,fr,ru").unwrap();
    let p = plan(Strategy::Dat, &langs);
    let route = |d: &str| p.routes[&d.parse::<Direction>().unwrap()].clone();
    assert_eq!(route("de-en"), "xx-en.de");
    assert_eq!(route("nl-en"), "xx-en.nl");
    assert_eq!(route("en-de"), "en-xx.g1");
    assert_eq!(route("en-nl"), "en-xx.g1");
    assert_eq!(route("en-fr"), "en-xx.g4");
    assert_eq!(route("en-ru"), "en-xx.g3");
    // 4 languages + 3 groups
    assert_eq!(p.adapters.len(), 7);
    let g1 = p.adapter("en-xx.g1").unwrap();
    assert_eq!(g1.directions.len(), 2);
    assert_eq!(g1.data.len(), 2);
    // group members keep the grouping's order (nl before de in the X-ALMA table)
    assert_eq!(g1.data[0].to_str().unwrap(), "nlen/train.nl-en.json");
}

#[test]
fn other_strategies_route_as_documented() {
    let langs = parse_list("de,fr").unwrap();
    let m = plan(Strategy::Multilingual, &langs);
    assert!(m.routes.values().all(|id| id == "all"));
    assert_eq!(m.adapters[0].directions.len(), 4);
    let g = plan(Strategy::Group, &langs);
    assert_eq!(g.routes[&"en-fr".parse().unwrap()], "group.g4");
    assert_eq!(g.routes[&"fr-en".parse().unwrap()], "group.g4");
    let s = plan(Strategy::Separate, &langs);
    assert_eq!(s.routes[&"en-de".parse().unwrap()], "en-de");
    assert_eq!(
        s.adapter("en-de").unwrap().data[0].to_str().unwrap(),
        "deen/train.de-en.json"
    );
}

#[test]
fn datm_merges_xx_en_within_groups() {
    let langs = parse_list("de,nl,sv,fr,ru").unwrap();
    let dat = plan(Strategy::Dat, &langs);
    let (datm, merges) = dat.merged_groupwise(&MergeSettings::default()).unwrap();
    // group 1 (de, nl, sv) merges; groups 3 and 4 have a single language: kept.
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].0, "xx-en.g1");
    assert_eq!(merges[0].1.sources, ["xx-en.nl", "xx-en.de", "xx-en.sv"]);
    assert_eq!(merges[0].1.method, "ties");
    assert_eq!(datm.routes[&"nl-en".parse().unwrap()], "xx-en.g1");
    assert_eq!(datm.routes[&"ru-en".parse().unwrap()], "xx-en.ru");
    assert!(datm.adapter("xx-en.de").is_none());
    assert_eq!(dat.adapters.len(), 5 + 3);
    assert_eq!(datm.adapters.len(), 8 - 3 + 1);
    assert_eq!(datm.strategy, Strategy::Datm);
}

#[test]
fn manifest_round_trips_through_toml() {
    let langs = parse_list("de,nl,fr,ja").unwrap();
    for s in [Strategy::Dat, Strategy::Datm, Strategy::Separate] {
        let p = plan(s, &langs);
        let text = p.to_toml();
        assert_eq!(PoolPlan::from_toml(&text, "t").unwrap(), p, "{text}");
    }
    assert!(plan(Strategy::Datm, &langs)
        .to_toml()
        .contains("[adapters.merge]"));
}

#[test]
fn validation_names_the_direction() {
    let langs = parse_list("de,fr").unwrap();
    let mut p = plan(Strategy::Dat, &langs);
    p.routes.remove(&"en-fr".parse().unwrap());
    let err = p.validate().unwrap_err().to_string();
    assert!(err.contains("direction en-fr is not routed"), "{err}");

    let mut p = plan(Strategy::Dat, &langs);
    p.routes.insert("en-fr".parse().unwrap(), "xx-en.de".into());
    let err = p.validate().unwrap_err().to_string();
    assert!(
        err.contains(
            "direction en-fr is routed to adapter \"xx-en.de\", which is not trained on en-fr"
        ),
        "{err}"
    );

    let mut p = plan(Strategy::Dat, &langs);
    p.routes.insert("de-en".parse().unwrap(), "nope".into());
    let err = p.validate().unwrap_err().to_string();
    assert!(
        err.contains("direction de-en is routed to unknown adapter \"nope\""),
        "{err}"
    );

    let mut p = plan(Strategy::Dat, &langs);
    p.routes.insert("ru-en".parse().unwrap(), "xx-en.de".into());
    let err = p.validate().unwrap_err().to_string();
    assert!(err.contains("direction ru-en is routed but ru"), "{err}");

    let mut p = plan(Strategy::Dat, &langs);
    let dup = p.adapters[0].clone();
    p.adapters.push(dup);
    assert!(p
        .validate()
        .unwrap_err()
        .to_string()
        .contains("appears twice"));
}

#[test]
fn custom_manifest_is_validated() {
    let text = r#"
strategy = "custom"
languages = ["de", "fr"]

[groups]
1 = ["de"]
4 = ["fr"]

[routes]
de-en = "to-en"
fr-en = "to-en"
en-de = "from-en"

[[adapters]]
id = "to-en"
directions = ["de-en", "fr-en"]

[[adapters]]
id = "from-en"
directions = ["en-de", "en-fr"]
"#;
    let err = PoolPlan::from_toml(text, "custom.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "custom.toml: direction en-fr is not routed to any adapter"
    );
    let fixed = text.replace(
        "en-de = \"from-en\"",
        "en-de = \"from-en\"\nen-fr = \"from-en\"",
    );
    let p = PoolPlan::from_toml(&fixed, "custom.toml").unwrap();
    assert_eq!(p.adapters.len(), 2);
    let bad = text.replace("\"de-en\", \"fr-en\"", "\"de-en\", \"xx-en\"");
    let err = PoolPlan::from_toml(&bad, "custom.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("custom.toml:") && err.contains("xx"),
        "{err}"
    );
}

#[test]
fn bad_language_lists_are_refused() {
    let g = Grouping::default();
    let err = PoolPlan::build(Strategy::Dat, &parse_list("de,en").unwrap(), &g).unwrap_err();
    assert!(err.to_string().contains("English"));
    let err = PoolPlan::build(Strategy::Dat, &parse_list("de,de").unwrap(), &g).unwrap_err();
    assert!(err.to_string().contains("de is listed twice"));
    let only_de = Grouping::from_toml("[groups]\n1 = [\"de\"]\n", "g.toml").unwrap();
    let err = PoolPlan::build(Strategy::Dat, &parse_list("de,fr").unwrap(), &only_de).unwrap_err();
    assert!(err.to_string().contains("language fr is in no group"));
    assert!(PoolPlan::build(Strategy::Custom, &parse_list("de").unwrap(), &g).is_err());
}

#[test]
fn data_check_names_direction_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let langs = parse_list("de,fr").unwrap();
    let p = plan(Strategy::Dat, &langs);
    std::fs::create_dir_all(dir.path().join("deen")).unwrap();
    std::fs::write(
        dir.path().join("deen/train.de-en.json"),
        r#"[{"translation":{"de":"a","en":"b"}}]"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("fren")).unwrap();
    std::fs::write(dir.path().join("fren/train.fr-en.json"), "[ ]").unwrap();
    let err = p.check_data(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("direction fr-en (adapter \"xx-en.fr\")"),
        "{err}"
    );
    assert!(
        err.contains("fren/train.fr-en.json is missing or empty"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("fren/train.fr-en.json"),
        r#"[{"translation":{"fr":"a","en":"b"}}]"#,
    )
    .unwrap();
    p.check_data(dir.path()).unwrap();
}

#[test]
fn example_files_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let p = PoolPlan::load(&root.join("custom-plan.toml")).unwrap();
    assert_eq!((p.adapters.len(), p.routes.len()), (5, 8));
    let g = Grouping::from_file(&root.join("groups.toml")).unwrap();
    assert_eq!(g.groups().count(), 2);
    for name in ["quickstart.toml", "full-50.toml"] {
        let e = datm_pool::pipeline::Experiment::load(&root.join(name)).unwrap();
        assert!(e.strategies.contains(&Strategy::Datm), "{name}");
    }
    let full = datm_pool::pipeline::Experiment::load(&root.join("full-50.toml")).unwrap();
    assert_eq!(full.languages.len(), 49);
    assert_eq!(full.device, "cuda");
    assert!(full.train.gradient_checkpointing);
    assert_eq!(
        (
            full.decoding.max_new_tokens,
            full.decoding.max_source_length
        ),
        (
            datm_lang::paper::MAX_NEW_TOKENS,
            datm_lang::paper::MAX_SOURCE_LENGTH
        )
    );
    let dat = PoolPlan::build(Strategy::Dat, &full.languages, &full.grouping().unwrap()).unwrap();
    assert_eq!(dat.adapters.len(), 57);
}

/// toml's parser caps nesting, so a manifest, an experiment or a grouping nested 100,000 deep
/// is refused with an error naming the file, not a stack overflow.
#[test]
fn deep_toml_nesting_is_refused() {
    let deep = format!("x = {}", "[".repeat(100_000));
    let e = PoolPlan::from_toml(&deep, "deep.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("deep.toml"), "{e}");
    let path = std::path::Path::new("deep-exp.toml");
    let e = datm_pool::pipeline::Experiment::from_toml(&deep, path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("deep-exp.toml"), "{e}");
    let inline = format!("x = {}", "{a = ".repeat(100_000));
    assert!(Grouping::from_toml(&inline, "g.toml").is_err());
}
