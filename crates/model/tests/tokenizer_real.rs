//! Real GGUF tokenizers (Gemma-3-270M, SmolLM2-135M) against HF transformers' ids on multilingual
//! prompts (tests/fixtures/model/real-*-tokenizer.json, from tools/make_real_model_expectations.py).
//! The models come from `scripts/fetch-models.sh` (`DATM_GEMMA_GGUF` / `DATM_SMOLLM2_GGUF` override
//! the cached paths); a missing model is a skip, or a failure under `CI=true` (datm-testkit).

use std::path::Path;

use datm_model::gguf;
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The digest tools/make_real_model_expectations.py takes of HF's tokenizer.json, of ours.
fn structure(tok: &datm_model::tokenizer::Tokenizer) -> Value {
    let j = serde_json::to_value(tok.inner()).unwrap();
    let model = j["model"].as_object().unwrap();
    let mut vocab: Vec<(&String, &Value)> = model["vocab"].as_object().unwrap().iter().collect();
    vocab.sort_by_key(|(_, id)| id.as_u64().unwrap());
    let merges: Vec<String> = model["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            Value::Array(pair) => format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            ),
            other => other.as_str().unwrap().to_string(),
        })
        .collect();
    let options: serde_json::Map<String, Value> = model
        .iter()
        .filter(|(k, _)| *k != "vocab" && *k != "merges")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let added = j["added_tokens"].as_array().unwrap();
    serde_json::json!({
        "normalizer": j["normalizer"], "pre_tokenizer": j["pre_tokenizer"],
        "post_processor": j["post_processor"], "decoder": j["decoder"], "model_options": options,
        "vocab_len": vocab.len(), "vocab_sample": vocab.iter().step_by(997).collect::<Vec<_>>(),
        "merges_len": merges.len(), "merges_head": &merges[..200.min(merges.len())],
        "merges_sample": merges.iter().step_by(1009).collect::<Vec<_>>(),
        "added_tokens_len": added.len(), "added_tokens_sample": added.iter().step_by(53).collect::<Vec<_>>(),
    })
}

fn check(var: &str, file: &str, fixture: &str) {
    let Some(path) = datm_testkit::model_file(var, file) else {
        return;
    };
    let tok = gguf::load_tokenizer(&path).unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model")
        .join(fixture);
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let ours = structure(&tok);
    for (key, want) in expected["structure"].as_object().unwrap() {
        assert_eq!(
            &ours[key], want,
            "{fixture}: tokenizer.json {key} differs from HF's"
        );
    }
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids(&case["ids"]),
            "{fixture}: {text:?}"
        );
        let plain = tok.encode(text, false).unwrap();
        assert_eq!(plain, ids(&case["ids_no_special"]), "{fixture}: {text:?}");
        assert_eq!(
            tok.decode(&plain, true).unwrap(),
            case["decoded"].as_str().unwrap(),
            "{fixture}: {text:?}"
        );
    }
}

#[test]
fn gemma3_gguf_tokenizer_equals_hf() {
    check(
        "DATM_GEMMA_GGUF",
        "gemma-3-270m-q4_k_m.gguf",
        "real-gemma3-tokenizer.json",
    );
}

#[test]
fn smollm2_gguf_tokenizer_equals_hf() {
    check(
        "DATM_SMOLLM2_GGUF",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "real-smollm2-tokenizer.json",
    );
}

#[test]
fn gemma3_special_ids() {
    let Some(path) = datm_testkit::model_file("DATM_GEMMA_GGUF", "gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let tok = gguf::load_tokenizer(&path).unwrap();
    assert_eq!(tok.bos_id(), Some(2));
    assert_eq!(tok.eos_ids(), &[1]);
    assert_eq!(tok.pad_id(), Some(0));
    assert!(tok.adds_bos());
    assert_eq!(tok.token_to_id("<end_of_turn>"), Some(106));
}
