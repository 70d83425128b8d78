//! The engine on the tiny fixture models: translation prompts, the newline stop, adapters.

use std::path::{Path, PathBuf};

use datm_engine::{Engine, LoadSpec, Translation};
use datm_lang::Direction;
use datm_model::candle_core::DType;
use datm_model::GenerationConfig;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn f32_engine(name: &str) -> Engine {
    let spec = LoadSpec {
        dtype: Some(DType::F32),
        ..LoadSpec::default()
    };
    Engine::load(&fixtures().join(name), &spec).unwrap()
}

const SOURCES: [&str; 6] = [
    "Datei öffnen",
    "Fenster schließen",
    "Das Haus ist wunderbar.",
    "Keine Verbindung zum Server möglich.",
    "Speichern unter …",
    "",
];

fn directions() -> Vec<Direction> {
    ["de-en", "en-de", "fr-en"]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect()
}

/// The training-style prompt builder gives the ids of tokenizing the prompt text with the
/// model's special tokens (what `datm translate` did before it used the engine), for
/// sources within the length limit.
#[test]
fn translation_prompts_equal_tokenized_prompt_text() {
    for name in ["tiny-llama", "tiny-gemma3", "tiny-llama.gguf"] {
        let engine = f32_engine(name);
        let settings = Translation::default();
        for d in directions() {
            for src in SOURCES {
                let text = settings.template.prompt(d, src);
                let plain = engine.encode(&[text]).unwrap().remove(0);
                let built = engine.translation_prompt(&settings, d, src).unwrap();
                assert_eq!(built, plain, "{name} {d} {src:?}");
            }
        }
    }
}

/// A source longer than `max_source_length` is cut inside the text, keeping the marker.
#[test]
fn long_sources_are_truncated_keeping_the_template_end() {
    let engine = f32_engine("tiny-llama");
    let settings = Translation {
        max_source_length: 60,
        ..Translation::default()
    };
    let d: Direction = "de-en".parse().unwrap();
    let long = "Das Haus ist wunderbar. ".repeat(40);
    let ids = engine.translation_prompt(&settings, d, &long).unwrap();
    assert_eq!(ids.len(), 60);
    let tail = engine
        .encode(&["\nEnglish:".to_string()])
        .unwrap()
        .remove(0);
    let tail = &tail[tail.len() - 3..];
    assert!(ids.ends_with(tail), "{ids:?} does not end with {tail:?}");
}

/// Greedy translations clean to the same text with and without the newline stop, and the
/// stop does end some rows early (so the comparison is not vacuous).
#[test]
fn newline_stop_keeps_cleaned_greedy_outputs() {
    let mut shortened = 0;
    for (name, adapter) in [
        ("tiny-llama", "tiny-llama-lora"),
        ("tiny-gemma3", "tiny-gemma3-lora"),
    ] {
        let mut engine = f32_engine(name);
        engine.attach("lora", &fixtures().join(adapter)).unwrap();
        for adapter in [None, Some("lora")] {
            for d in directions() {
                let free = Translation {
                    num_beams: 1,
                    max_new_tokens: 128,
                    stop_at_newline: false,
                    ..Translation::default()
                };
                let stopped = Translation {
                    stop_at_newline: true,
                    ..free
                };
                let sources: Vec<String> = SOURCES.iter().map(|s| s.to_string()).collect();
                let prompts: Vec<Vec<u32>> = sources
                    .iter()
                    .map(|s| engine.translation_prompt(&free, d, s).unwrap())
                    .collect();
                let long = engine
                    .generate_texts(&prompts, &free.generation(adapter), &mut |_| {})
                    .unwrap();
                let short = engine
                    .generate_texts(&prompts, &stopped.generation(adapter), &mut |_| {})
                    .unwrap();
                for (l, s) in long.iter().zip(&short) {
                    assert!(l.token_ids.starts_with(&s.token_ids));
                    assert_eq!(
                        free.clean(d, &l.text),
                        stopped.clean(d, &s.text),
                        "{name} {d}"
                    );
                    shortened += usize::from(s.token_ids.len() < l.token_ids.len());
                }
                let via_translate = engine
                    .translate(adapter, d, &sources, &stopped, &mut |_| {})
                    .unwrap();
                let cleaned: Vec<String> =
                    short.iter().map(|s| stopped.clean(d, &s.text)).collect();
                assert_eq!(via_translate, cleaned);
            }
        }
        eprintln!("{name}: {shortened} rows shortened so far");
    }
    assert!(shortened > 0, "the newline stop never fired");
}

#[test]
fn adapters_attach_once_and_detach() {
    let mut engine = f32_engine("tiny-llama");
    let dir = fixtures().join("tiny-llama-lora");
    engine.ensure_attached("a", &dir).unwrap();
    engine.ensure_attached("a", &dir).unwrap();
    assert_eq!(engine.adapters().keys().collect::<Vec<_>>(), ["a"]);
    assert!(engine.detach("a"));
    assert!(!engine.detach("a"));
    let err = engine
        .attach("g", &fixtures().join("tiny-gemma3-lora"))
        .unwrap_err();
    assert!(format!("{err:#}").contains("does not fit"), "{err:#}");
}

/// A journaled job gives the results of a plain one; stopped with some prompts recorded
/// (and a record torn by the stop), it decodes only the others when started again; a job
/// with other settings replaces the journal; a record of other prompts is refused.
#[test]
fn journaled_jobs_resume_where_they_stopped() {
    let mut engine = f32_engine("tiny-llama");
    engine
        .attach("lora", &fixtures().join("tiny-llama-lora"))
        .unwrap();
    let settings = Translation {
        num_beams: 2,
        max_new_tokens: 24,
        ..Translation::default()
    };
    let d: Direction = "de-en".parse().unwrap();
    let sources: Vec<String> = SOURCES.iter().map(|s| s.to_string()).collect();
    let prompts = engine.translation_prompts(&settings, d, &sources).unwrap();
    let cfg = settings.generation(Some("lora"));
    let plain = engine.generate_texts(&prompts, &cfg, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt.partial");
    let mut journal = engine.open_journal(&path, &prompts, &cfg).unwrap();
    assert_eq!((journal.resumed(), journal.replaced()), (0, false));
    let mut counts = Vec::new();
    let got = engine
        .generate_texts_journaled(&prompts, &cfg, &mut journal, &mut |n| counts.push(n))
        .unwrap();
    assert_eq!(got, plain);
    assert_eq!(counts, (0..=prompts.len()).collect::<Vec<_>>());
    drop(journal);
    // Stopped after two prompts, the third one's record cut short; one record altered to
    // show that it is read back, not decoded again.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + prompts.len());
    let altered = lines[1].replace("\"text\":", "\"text\":\"(from the journal) \",\"was\":");
    let torn = &lines[3][..lines[3].len() / 2];
    std::fs::write(
        &path,
        format!("{}\n{altered}\n{}\n{torn}", lines[0], lines[2]),
    )
    .unwrap();
    let mut journal = engine.open_journal(&path, &prompts, &cfg).unwrap();
    assert_eq!(journal.resumed(), 2);
    let mut counts = Vec::new();
    let resumed = engine
        .generate_texts_journaled(&prompts, &cfg, &mut journal, &mut |n| counts.push(n))
        .unwrap();
    assert_eq!(counts, (2..=prompts.len()).collect::<Vec<_>>());
    let record: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    let first = record["index"].as_u64().unwrap() as usize;
    for (i, (r, p)) in resumed.iter().zip(&plain).enumerate() {
        if i == first {
            assert_eq!(r.text, "(from the journal) ");
        } else {
            assert_eq!(r, p, "prompt {i}");
        }
    }
    journal.remove().unwrap();
    assert!(!path.exists());
    // Other settings make another job, whose journal replaces this one's.
    let mut journal = engine.open_journal(&path, &prompts, &cfg).unwrap();
    engine
        .generate_texts_journaled(&prompts, &cfg, &mut journal, &mut |_| {})
        .unwrap();
    drop(journal);
    let other = GenerationConfig {
        max_new_tokens: 25,
        ..cfg.clone()
    };
    let journal = engine.open_journal(&path, &prompts, &other).unwrap();
    assert_eq!((journal.resumed(), journal.replaced()), (0, true));
    drop(journal);
    // A record of another prompt under this job's key is refused, naming the line.
    let mut journal = engine.open_journal(&path, &prompts, &cfg).unwrap();
    engine
        .generate_texts_journaled(&prompts, &cfg, &mut journal, &mut |_| {})
        .unwrap();
    drop(journal);
    let text = std::fs::read_to_string(&path).unwrap();
    let swapped = text.replacen("\"index\":0", "\"index\":9", 1);
    std::fs::write(&path, swapped).unwrap();
    let err = engine.open_journal(&path, &prompts, &cfg).unwrap_err();
    assert!(format!("{err:#}").contains("out.txt.partial:"), "{err:#}");
}
