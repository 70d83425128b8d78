//! An evaluation stopped halfway through a direction resumes with the sentences it had
//! translated: the translation cache's `<key>.txt.partial` journal.

use std::path::{Path, PathBuf};

use datm_data::PromptTemplate;
use datm_lang::Direction;
use datm_model::candle_core::Device;
use datm_pool::evaluate::{translation_key, Evaluator, Scoring};
use datm_pool::score::MecabDicts;
use datm_pool::translate::{Decoding, Translator};
use datm_pool::AdapterRef;
use datm_results::TestSet;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

#[test]
fn a_direction_stopped_halfway_resumes_from_its_journal() {
    let decoding = Decoding {
        num_beams: 2,
        max_new_tokens: 8,
        batch_size: 2,
        ..Decoding::default()
    };
    let model = fixtures().join("tiny-llama");
    let mut translator =
        Translator::load(&model, PromptTemplate::Alma, decoding, &Device::Cpu).unwrap();
    let adapter = AdapterRef {
        id: "xx-en.de".into(),
        path: fixtures().join("tiny-llama-lora"),
    };
    let d: Direction = "de-en".parse().unwrap();
    let sources = [
        "Datei öffnen",
        "Fenster schließen",
        "Das Haus ist wunderbar.",
    ];
    let test = TestSet {
        name: "test".into(),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        references: vec!["Open file".into(), "Close window".into(), "".into()],
    };
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join(format!(
        "{}.txt",
        translation_key(Some(&adapter), d, &test, "f").unwrap()
    ));
    let journal = cache.path().join(format!(
        "{}.partial",
        file.file_name().unwrap().to_string_lossy()
    ));
    // The run that was stopped: every sentence journaled, nothing stored; one record
    // altered, to show that it is read back rather than translated again.
    let (plain, stopped) = translator
        .translate_journaled(Some(&adapter), d, &test.sources, &journal, &mut |_| {})
        .unwrap();
    drop(stopped);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 1 + sources.len());
    std::fs::write(
        &journal,
        text.replacen("\"text\":\"", "\"text\":\"kept ", 1),
    )
    .unwrap();
    let dicts = MecabDicts::default();
    let mut evaluator = Evaluator {
        translator: &mut translator,
        scoring: Scoring {
            dicts: &dicts,
            comet: None,
        },
        cache: Some(cache.path().to_path_buf()),
        fingerprint: "f".into(),
    };
    let out = evaluator
        .output(d, &test, Some((&adapter, 1)), None, &|_| {})
        .unwrap();
    let kept: Vec<usize> = (0..sources.len())
        .filter(|&i| out.hypotheses[i] != plain[i])
        .collect();
    assert_eq!(kept.len(), 1, "{:?} {plain:?}", out.hypotheses);
    assert!(out.hypotheses[kept[0]].starts_with("kept"));
    assert!(!journal.exists());
    let stored = std::fs::read_to_string(&file).unwrap();
    assert_eq!(stored.lines().collect::<Vec<_>>(), out.hypotheses);
}
