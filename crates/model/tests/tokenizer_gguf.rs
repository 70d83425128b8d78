//! A LLaMA-2-style SentencePiece vocabulary in a GGUF (merges derived from scores, first-word
//! `Metaspace`): ids and decoding equal HF's (tests/fixtures/model/tiny-llama-spm-tokenizer.*).

use std::path::{Path, PathBuf};

use datm_model::gguf;
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
fn llama_sentencepiece_gguf_equals_hf() {
    let tok = gguf::load_tokenizer(&fixtures().join("tiny-llama-spm-tokenizer.gguf")).unwrap();
    assert!(
        tok.adds_bos(),
        "SentencePiece GGUFs add BOS unless told otherwise"
    );
    let text = std::fs::read_to_string(fixtures().join("tiny-llama-spm-tokenizer.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    for case in expected["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids(&case["ids"]),
            "{text:?}"
        );
        let plain = ids(&case["ids_no_special"]);
        assert_eq!(tok.encode(text, false).unwrap(), plain, "{text:?}");
        assert_eq!(
            tok.decode(&plain, true).unwrap(),
            case["decoded"].as_str().unwrap(),
            "{text:?}"
        );
    }
}
