//! HF `tokenizer.json` directories: ids equal HF's, special ids from the config files.

use std::path::{Path, PathBuf};

use datm_model::tokenizer::{SpecialIds, Tokenizer};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn special_ids_follow_configs() {
    let llama = Tokenizer::from_hf_dir(&fixtures().join("tiny-llama")).unwrap();
    assert_eq!(
        llama.special_ids(),
        &SpecialIds {
            bos: Some(1),
            eos: vec![2],
            pad: Some(2),
            add_bos: false
        }
    );
    let gemma = Tokenizer::from_hf_dir(&fixtures().join("tiny-gemma3")).unwrap();
    assert_eq!(
        gemma.special_ids(),
        &SpecialIds {
            bos: Some(2),
            eos: vec![1],
            pad: Some(0),
            add_bos: true
        }
    );
    assert!(gemma.is_eos(1) && !gemma.is_eos(2));
}

#[test]
fn generation_config_eos_list_wins() {
    let dir = std::env::temp_dir().join(format!("datm-tok-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json", "config.json"] {
        std::fs::copy(fixtures().join("tiny-gemma3").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"eos_token_id": [1, 5], "pad_token_id": 0}"#,
    )
    .unwrap();
    let tok = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_eq!(tok.eos_ids(), &[1, 5]);
}

#[test]
fn prompt_ids_equal_hf() {
    for model in ["tiny-llama", "tiny-gemma3"] {
        let tok = Tokenizer::from_hf_dir(&fixtures().join(model)).unwrap();
        let text =
            std::fs::read_to_string(fixtures().join(format!("{model}-expected.json"))).unwrap();
        let expected: Value = serde_json::from_str(&text).unwrap();
        for case in expected["base"].as_array().unwrap() {
            let prompt = case["prompt"].as_str().unwrap();
            assert_eq!(
                tok.encode(prompt, true).unwrap(),
                ids(&case["prompt_ids"]),
                "{model}: {prompt:?}"
            );
            for run in case["runs"].as_array().unwrap() {
                let decoded = tok.decode(&ids(&run["token_ids"]), true).unwrap();
                assert_eq!(decoded, run["text"].as_str().unwrap(), "{model}");
            }
        }
    }
}

#[test]
fn missing_tokenizer_is_a_clear_error() {
    let err = Tokenizer::from_hf_dir(Path::new("/nonexistent/model")).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/model/tokenizer.json"),
        "{err:#}"
    );
}

#[test]
fn tokenizer_json_post_processor_wins_over_config_flags() {
    // transformers 5.24 keeps tokenizer.json's post-processor even when tokenizer_config.json
    // sets add_bos_token/add_eos_token (checked: "Hello world" → the ids below, BOS kept).
    let dir = std::env::temp_dir().join(format!("datm-tok-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tokenizer.json", "config.json", "generation_config.json"] {
        std::fs::copy(fixtures().join("tiny-gemma3").join(f), dir.join(f)).unwrap();
    }
    let config = fixtures().join("tiny-gemma3/tokenizer_config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    config["add_bos_token"] = Value::Bool(false);
    config["add_eos_token"] = Value::Bool(true);
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let tok = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_eq!(
        tok.encode("Hello world", true).unwrap(),
        [2, 78, 360, 324, 368, 274, 422, 423]
    );
    assert!(tok.adds_bos());
}
