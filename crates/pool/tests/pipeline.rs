//! The pipeline on the tiny LLaMA fixture: every stage, markers, resume, report.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use datm_pool::pipeline::{Experiment, Pipeline};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write_data(root: &Path) {
    let pairs = [
        ("Datei öffnen", "Open file"),
        ("Datei speichern", "Save file"),
        ("Fenster schließen", "Close window"),
        ("Neues Dokument", "New document"),
        ("Hilfe anzeigen", "Show help"),
    ];
    for lang in ["de", "nl", "fr"] {
        let dir = root.join(format!("{lang}en"));
        std::fs::create_dir_all(&dir).unwrap();
        let rows = |r: &[(&str, &str)]| {
            let v: Vec<_> = r.iter().map(|(x, en)| serde_json::json!({"translation": {lang: format!("{x} {lang}"), "en": en}})).collect();
            serde_json::to_string(&v).unwrap()
        };
        std::fs::write(dir.join(format!("train.{lang}-en.json")), rows(&pairs[..4])).unwrap();
        std::fs::write(dir.join(format!("test.{lang}-en.json")), rows(&pairs[3..])).unwrap();
        std::fs::write(dir.join(format!("test.en-{lang}.json")), rows(&pairs[3..])).unwrap();
    }
}

fn experiment(dir: &Path) -> PathBuf {
    experiment_with(dir, "")
}

fn experiment_with(dir: &Path, extra: &str) -> PathBuf {
    let model = repo().join("tests/fixtures/model/tiny-llama");
    let text = format!(
        r#"
name = "tiny"
model = "{}"
languages = ["de", "nl", "fr"]
strategies = ["multilingual", "separate", "dat", "datm"]
test_size = 2

[data]
dir = "data"

[train]
batch_size = 2
rank = 4
dropout = 0.0

[merge]
method = "ties"
density = 0.5

[decoding]
num_beams = 2
max_new_tokens = 5
{extra}"#,
        model.display()
    );
    let path = dir.join("exp.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn pipeline_runs_every_stage_and_resumes() {
    let work = tempfile::tempdir().unwrap();
    write_data(&work.path().join("data"));
    let exp = Experiment::load(&experiment(work.path())).unwrap();
    assert_eq!(
        exp.systems(),
        ["base", "multilingual", "separate", "dat", "datm"]
    );
    let out = work.path().join("out");
    let report = Pipeline::new(exp.clone(), &out).unwrap().run().unwrap();
    let names: Vec<&str> = report.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["base", "multilingual", "separate", "dat", "datm"]);
    let section = &report.sections[0];
    for name in names {
        let rows = section.scores.iter().filter(|r| r.system == name).count();
        assert_eq!(rows, 6, "{name}");
    }
    let comparisons: Vec<String> = section.comparisons.iter().map(|c| c.title()).collect();
    for c in [
        "separate − multilingual",
        "dat − multilingual",
        "datm − dat",
    ] {
        assert!(
            comparisons.iter().any(|t| t == c),
            "{c} not in {comparisons:?}"
        );
    }
    // DAT's XX→En adapters are separate's: trained once, copied byte for byte.
    for lang in ["de", "nl", "fr"] {
        let (sep, dat) = (
            out.join(format!("pool/{lang}-en")),
            out.join(format!("pool/xx-en.{lang}")),
        );
        for f in ["training-key", "adapter_model.safetensors"] {
            assert_eq!(
                std::fs::read(sep.join(f)).unwrap(),
                std::fs::read(dat.join(f)).unwrap(),
                "{lang} {f}"
            );
        }
        // Copied, not trained: no training log of its own.
        assert!(sep.join("train_log.jsonl").is_file() && !dat.join("train_log.jsonl").exists());
    }
    let sep_en = std::fs::read(out.join("pool/en-de/training-key")).unwrap();
    assert_ne!(
        sep_en,
        std::fs::read(out.join("pool/en-xx.g1/training-key")).unwrap()
    );
    for stage in [
        "import",
        "plan",
        "train",
        "merge",
        "translate-base",
        "translate-datm",
    ] {
        assert!(
            out.join("stages").join(format!("{stage}.done")).is_file(),
            "{stage}"
        );
    }
    assert!(out.join("pool/datm.toml").is_file() && out.join("pool/xx-en.g1").is_dir());
    assert!(out.join("hyps/dat/en-fr.txt").is_file());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Table 1 view") && md.contains("| datm |"),
        "{md}"
    );
    assert!(md.contains("COMET was not computed"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("<table"));
    assert!(out
        .join("figures/delta-separate-vs-multilingual.svg")
        .is_file());

    // resume: only the missing system is redone
    std::fs::remove_file(out.join("stages/translate-datm.done")).unwrap();
    let before = std::fs::metadata(out.join("hyps/dat/en-fr.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let again = Pipeline::new(exp.clone(), &out).unwrap().run().unwrap();
    assert_eq!(again.to_json(), report.to_json(), "deterministic");
    assert_eq!(
        before,
        std::fs::metadata(out.join("hyps/dat/en-fr.txt"))
            .unwrap()
            .modified()
            .unwrap()
    );
    // every system is in the results store once, with its parameter counts
    let stored = datm_results::Store::open_existing(&out.join("results.sqlite"))
        .unwrap()
        .systems()
        .unwrap();
    let names: Vec<&str> = stored.iter().map(|s| s.info.system.as_str()).collect();
    assert_eq!(names, ["base", "multilingual", "separate", "dat", "datm"]);
    let params = |i: usize| stored[i].info.params.unwrap();
    assert_eq!(params(0).adapters, 0);
    assert!(
        params(0).base > 0 && params(3).lora > params(4).lora,
        "DATM has fewer adapters"
    );

    // a different experiment in the same directory is refused
    let mut other = exp;
    other.test_size = Some(1);
    let err = Pipeline::new(other, &out).err().unwrap().to_string();
    assert!(err.contains("holds a different experiment"), "{err}");
}

#[test]
fn experiment_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.toml");
    std::fs::write(
        &path,
        "name = \"x\"\nmodel = \"m\"\nlanguages = [\"de\"]\nstrategies = []\n[data]\ndir = \"d\"\n",
    )
    .unwrap();
    let err = format!("{:#}", Experiment::load(&path).unwrap_err());
    assert!(err.contains("`strategies` is empty"), "{err}");
    std::fs::write(
        &path,
        "name = \"x\"\nmodel = \"m\"\nlanguages = [\"de\"]\nstrategies = [\"dat\"]\n[data]\n",
    )
    .unwrap();
    let err = format!("{:#}", Experiment::load(&path).unwrap_err());
    assert!(err.contains("exactly one of `dir`"), "{err}");
    std::fs::write(&path, "name = \"x\"\nmodel = \"m\"\nlanguages = [\"de\"]\nstrategies = [\"dat\"]\nbogus = 1\n[data]\ndir = \"d\"\n").unwrap();
    let err = format!("{:#}", Experiment::load(&path).unwrap_err());
    assert!(err.contains("bogus"), "{err}");
    // A MeCab dictionary folder that is not one fails when the experiment is read.
    std::fs::write(&path, "name = \"x\"\nmodel = \"m\"\nlanguages = [\"ja\"]\nstrategies = [\"dat\"]\n[data]\ndir = \"d\"\n[mecab]\nja = \"no-such-dicdir\"\n").unwrap();
    let err = format!("{:#}", Experiment::load(&path).unwrap_err());
    assert!(
        err.contains("[mecab]") && err.contains("no-such-dicdir"),
        "{err}"
    );
}

/// The `[comet]` table for the fixture model with its encoder folder, and both folders.
fn comet_table() -> (String, PathBuf, PathBuf) {
    let fixtures = repo().join("tests/fixtures/comet");
    let encoder = fixtures
        .join("hub/models--datm--xlmr-tiny/snapshots")
        .join("0".repeat(40));
    let model = fixtures.join("sparsemax");
    let table = format!(
        "\n[comet]\nmodel = \"{}\"\nencoder = \"{}\"\n",
        model.display(),
        encoder.display()
    );
    (table, model, encoder)
}

/// One scorer for every system (and sweep point) of `pipeline`'s run: every distinct
/// sentence of `stored` (each direction's sources and references, every system's outputs)
/// was embedded once, and the scores are those of scoring each output on its own, with a
/// model of its own.
fn assert_embedded_once(pipeline: &Pipeline, stored: &[datm_results::SystemResults]) {
    let (_, model, encoder) = comet_table();
    let opts = datm_comet::LoadOptions {
        encoder_dir: Some(encoder),
        ..Default::default()
    };
    let model = datm_comet::Comet::load(&model, &opts).unwrap();
    let mut distinct = HashSet::new();
    let mut per_output = 0;
    for output in stored.iter().flat_map(|s| &s.outputs) {
        let t = &output.test_set;
        let texts = [&t.sources, &t.references, &output.hypotheses];
        distinct.extend(texts.into_iter().flatten().cloned());
        per_output += texts.into_iter().flatten().collect::<HashSet<_>>().len();
        let hyps = [output.hypotheses.clone()];
        let alone = datm_comet::score(&model, &t.sources, Some(&t.references), &hyps, 16).unwrap();
        // (Equal up to the store's text form; the comet crate's tests compare bits.)
        let got = output.score("comet").unwrap();
        let stored = got.segments.as_ref().unwrap();
        assert_eq!(stored.len(), alone[0].scores.len());
        let want = alone[0].scores.iter().chain([&alone[0].system_score]);
        for (a, b) in stored.iter().chain([&got.score]).zip(want) {
            assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
        }
    }
    let stats = pipeline.comet_stats().unwrap();
    assert_eq!(stats.embedded, distinct.len());
    assert_eq!(stats.embedded + stats.reused, per_output);
    assert!(stats.reused > stats.embedded, "{stats:?}");
}

#[test]
fn pipeline_with_comet_reports_comet_first() {
    let work = tempfile::tempdir().unwrap();
    write_data(&work.path().join("data"));
    let (table, ..) = comet_table();
    let exp = Experiment::load(&experiment_with(work.path(), &table)).unwrap();
    let out = work.path().join("out");
    let pipeline = Pipeline::new(exp, &out).unwrap();
    let report = pipeline.run().unwrap();
    let section = &report.sections[0];
    assert_eq!(section.metrics[0], datm_report::MetricKind::Comet);
    assert_eq!(section.scores.len(), 5 * 6);
    assert!(section.scores.iter().all(|r| r.values[0].is_finite()));
    let stored = datm_results::Store::open_existing(&out.join("results.sqlite"))
        .unwrap()
        .systems()
        .unwrap();
    let comet = stored[0].outputs[0].score("comet").unwrap();
    assert!(
        comet.signature.starts_with("sparsemax|"),
        "{}",
        comet.signature
    );
    assert_eq!(
        comet.segments.as_ref().unwrap().len(),
        stored[0].outputs[0].hypotheses.len()
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Cells are COMET/"), "{md}");
    let base = section.scores.iter().find(|r| r.system == "base").unwrap();
    let stored_comet = stored[0].outputs[0].score("comet").unwrap().score;
    assert_eq!(base.direction, stored[0].outputs[0].direction);
    assert!((base.values[0] - 100.0 * stored_comet).abs() < 1e-9);
    assert_embedded_once(&pipeline, &stored);
}

#[test]
fn a_sweep_runs_every_point_into_one_store() {
    let work = tempfile::tempdir().unwrap();
    write_data(&work.path().join("data"));
    let (comet, ..) = comet_table();
    let sweep = format!("{comet}\n[sweep]\nlanguages = [1, 3]\n");
    let path = experiment_with(work.path(), &sweep);
    let exp = Experiment::load(&path).unwrap();
    let out = work.path().join("out");
    let pipeline = Pipeline::new(exp.clone(), &out).unwrap();
    pipeline.run().unwrap();
    let stored = datm_results::Store::open_existing(&out.join("results.sqlite"))
        .unwrap()
        .systems()
        .unwrap();
    // The points share one COMET scorer: the one-language point's sentences are not
    // embedded again by the three-language point.
    assert_embedded_once(&pipeline, &stored);
    let labels: Vec<String> = stored.iter().map(|s| s.info.label()).collect();
    assert_eq!(labels.len(), 10, "{labels:?}");
    for s in &stored {
        let k = if s.info.point == "languages=1" { 1 } else { 3 };
        assert_eq!(s.info.languages, Some(k), "{}", s.info.label());
        assert_eq!(s.outputs.len(), 2 * k as usize, "{}", s.info.label());
    }
    assert!(labels.contains(&"separate@languages=1".to_string()));
    assert!(labels.contains(&"datm@languages=3".to_string()));
    // The point with one language translates de-en with the same separate adapter as the
    // point with three (same data and seed): the shared translation cache serves it.
    let find = |label: &str| stored.iter().find(|s| s.info.label() == label).unwrap();
    assert_eq!(
        find("separate@languages=1").outputs[0].hypotheses,
        find("separate@languages=3").outputs[0].hypotheses
    );
    // Resuming redoes nothing, and the report covers every point.
    let report = Pipeline::new(exp, &out).unwrap().run().unwrap();
    assert_eq!(report.systems.len(), 10);
    assert!(out.join("figures").read_dir().unwrap().count() > 0);
}

/// `device` says where a run goes on, not what it computes: it is checked when the file is
/// read, left out of the saved experiment when it is the CPU, a run resumes on another
/// device, and a device that cannot be opened stops the run with its name.
#[test]
fn device_is_where_a_run_goes_not_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data"));
    let cpu = experiment(dir.path());
    let text = std::fs::read_to_string(&cpu).unwrap();
    let on = |device: &str| {
        let path = dir
            .path()
            .join(format!("{}.toml", device.replace(':', "-")));
        std::fs::write(&path, format!("device = \"{device}\"\n{text}")).unwrap();
        path
    };
    let err = format!("{:#}", Experiment::load(&on("gpu")).unwrap_err());
    assert!(
        err.contains("`device`") && err.contains("expected cpu, cuda or cuda:N"),
        "{err}"
    );
    let gpu = Experiment::load(&on("cuda:99")).unwrap();
    assert_eq!(gpu.device, "cuda:99");
    let cpu = Experiment::load(&cpu).unwrap();
    assert_eq!(cpu.device, "cpu");

    let out = dir.path().join("run");
    Pipeline::new(cpu.clone(), &out).unwrap();
    let saved = std::fs::read_to_string(out.join("experiment.toml")).unwrap();
    assert!(!saved.contains("device"), "{saved}");
    // The same experiment on another device resumes in the same folder.
    let err = format!("{:#}", Pipeline::new(gpu, &out).unwrap().run().unwrap_err());
    assert!(err.contains("cuda:99"), "{err}");
    let other = Experiment {
        test_size: Some(1),
        ..cpu
    };
    assert!(Pipeline::new(other, &out).is_err());
}
