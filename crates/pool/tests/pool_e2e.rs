//! A whole pool on the tiny LLaMA fixture: plan (DAT) → train every adapter → DATM merge →
//! route → translate every direction's test split → score → report.

use std::path::{Path, PathBuf};

use datm_data::PromptTemplate;
use datm_lang::{parse_list, Direction, Grouping};
use datm_model::candle_core::Device;
use datm_pool::evaluate::Scoring;
use datm_pool::merge::merge_groupwise;
use datm_pool::score::MecabDicts;
use datm_pool::train::{is_finished, train_pool, PoolTrainOptions};
use datm_pool::trainer::LibraryTrainer;
use datm_pool::translate::{Decoding, Translator};
use datm_pool::{MergeSettings, PoolPlan, Router, Strategy};
use datm_report::{Report, ReportOptions};
use datm_results::{SystemInfo, SystemResults, TestSet};
use datm_train::TrainConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const PAIRS: [(&str, &str); 6] = [
    ("Datei öffnen", "Open file"),
    ("Datei speichern", "Save file"),
    ("Fenster schließen", "Close window"),
    ("Neues Dokument", "New document"),
    ("Einstellungen bearbeiten", "Edit preferences"),
    ("Hilfe anzeigen", "Show help"),
];

fn rows(lang: &str, pairs: &[(&str, &str)]) -> String {
    let rows: Vec<serde_json::Value> = pairs
        .iter()
        .map(
            |(x, en)| serde_json::json!({"translation": {lang: format!("{x} ({lang})"), "en": en}}),
        )
        .collect();
    serde_json::to_string(&rows).unwrap()
}

/// An ALMA layout for de, nl (group 1) and fr (group 4): train, valid, both test files.
fn write_data(root: &Path) {
    for lang in ["de", "nl", "fr"] {
        let dir = root.join(format!("{lang}en"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("train.{lang}-en.json")),
            rows(lang, &PAIRS[..4]),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("valid.{lang}-en.json")),
            rows(lang, &PAIRS[4..5]),
        )
        .unwrap();
        for d in [format!("{lang}-en"), format!("en-{lang}")] {
            std::fs::write(dir.join(format!("test.{d}.json")), rows(lang, &PAIRS[4..])).unwrap();
        }
    }
}

fn test_pairs(data: &Path, d: Direction) -> (Vec<String>, Vec<String>) {
    let corpus = datm_data::read_layout(data).unwrap();
    let pairs = corpus.pairs(d, datm_data::Split::Test);
    pairs
        .iter()
        .map(|p| {
            let (s, t) = p.oriented(d);
            (s.to_string(), t.to_string())
        })
        .unzip()
}

#[test]
fn plan_train_merge_route_translate_all_directions() {
    let model = repo().join("tests/fixtures/model/tiny-llama");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let pool = work.path().join("pool");
    write_data(&data);

    let langs = parse_list("de,nl,fr").unwrap();
    let dat = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
    assert_eq!(dat.adapters.len(), 3 + 2);

    let mut base = TrainConfig::new(model.clone(), data.clone(), vec![], pool.clone());
    base.batch.batch_size = 2;
    base.batch.micro_batch_size = 2;
    base.lora.rank = 4;
    base.lora.alpha = 8.0;
    base.lora.dropout = 0.0;
    let trainer = LibraryTrainer::new(base, 0);
    let opts = PoolTrainOptions {
        jobs: 2,
        ..Default::default()
    };
    let summary = train_pool(&dat, &pool, &data, &trainer, &opts).unwrap();
    dat.save(&pool.join("pool.toml")).unwrap();
    assert_eq!(summary.trained.len(), 5);
    for a in &dat.adapters {
        assert!(is_finished(&pool.join(&a.id)), "{}", a.id);
    }
    // a second run finds everything finished
    let again = train_pool(&dat, &pool, &data, &trainer, &opts).unwrap();
    assert_eq!((again.trained.len(), again.skipped.len()), (0, 5));

    let settings = MergeSettings {
        method: "ties".into(),
        density: Some(0.5),
        space: "delta".into(),
        ..MergeSettings::default()
    };
    let datm = merge_groupwise(&dat, &pool, &settings).unwrap();
    assert_eq!(
        datm.adapters.len(),
        4,
        "xx-en.g1 (de+nl), xx-en.fr, en-xx.g1, en-xx.g4"
    );
    datm.save(&pool.join("datm.toml")).unwrap();

    let decoding = Decoding {
        num_beams: 2,
        max_new_tokens: 6,
        batch_size: 2,
        ..Decoding::default()
    };
    let mut translator =
        Translator::load(&model, PromptTemplate::Alma, decoding, &Device::Cpu).unwrap();
    let mut systems = Vec::new();
    let dicts = MecabDicts::default();
    let scoring = Scoring {
        dicts: &dicts,
        comet: None,
    };
    for (name, manifest) in [
        ("dat", pool.join("pool.toml")),
        ("datm", pool.join("datm.toml")),
    ] {
        let router = Router::open(&manifest).unwrap();
        router.verify_files().unwrap();
        let mut outputs = Vec::new();
        for d in router.plan().directions() {
            let adapter = router.adapter_for(d).unwrap();
            let (src, refs) = test_pairs(&data, d);
            assert_eq!(src.len(), 2, "{d}");
            let hyps = translator
                .translate(Some(adapter), d, &src, &mut |_| {})
                .unwrap();
            assert_eq!(hyps.len(), 2);
            let test = TestSet {
                name: "test".into(),
                sources: src,
                references: refs,
            };
            outputs.push(scoring.output(d, &test, hyps).unwrap());
        }
        systems.push(SystemResults {
            info: SystemInfo {
                experiment: "tiny".into(),
                point: String::new(),
                system: name.into(),
                config_hash: String::new(),
                languages: Some(langs.len() as u32),
                params: None,
            },
            outputs,
        });
    }
    assert_eq!(systems.iter().map(|s| s.outputs.len()).sum::<usize>(), 12);
    let opts = ReportOptions {
        title: "tiny pool".into(),
        grouping: Some(Grouping::default().restricted_to(&langs)),
        ..ReportOptions::default()
    };
    let report = Report::build(&systems, &opts).unwrap();
    let md = report.to_markdown();
    assert!(md.contains("| de-en |") && md.contains("| en-fr |"), "{md}");
    assert_eq!(report.systems.len(), 2);
}
