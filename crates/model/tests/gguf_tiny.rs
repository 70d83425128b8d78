//! GGUF loading against the tiny fixtures (tests/fixtures/model, made by
//! tools/make_model_fixtures.py): the GGUF-loaded weights, config and tokenizer must equal the
//! HF safetensors directory HF transformers wrote for the same model.

mod common;

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use datm_model::gguf::{self, LoadMode};
use datm_model::tokenizer::Tokenizer;
use datm_model::weights::Weight;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn hf_tensors(name: &str) -> std::collections::HashMap<String, Tensor> {
    let path = fixtures().join(name).join("model.safetensors");
    candle_core::safetensors::load(&path, &Device::Cpu).unwrap()
}

fn hf_config(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name).join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn dense(w: &Weight) -> Tensor {
    match w {
        Weight::Dense(t) => t.to_dtype(DType::F32).unwrap(),
        Weight::Quantized(q) => q.dequantize(&Device::Cpu).unwrap(),
    }
}

/// Every safetensors tensor is in the GGUF map with the same shape and values within `tol`
/// (relative to the tensor's largest magnitude), and nothing else is.
fn assert_weights_match(model: &str, gguf_file: &str, mode: LoadMode, tol: f32) {
    let loaded = gguf::load(&fixtures().join(gguf_file), mode, &Device::Cpu).unwrap();
    let expected = hf_tensors(model);
    let tied = hf_config(model)["tie_word_embeddings"].as_bool().unwrap();
    for (name, want) in &expected {
        if tied && name == "lm_head.weight" {
            assert!(!loaded.weights.contains(name), "{name} should be tied");
            continue;
        }
        let got = loaded.weights.get(name, want.dims()).unwrap();
        let diff = common::max_abs_diff(&dense(&got), want);
        assert!(
            diff <= tol * common::max_abs(want),
            "{gguf_file}: {name} differs by {diff}"
        );
    }
    let extra: Vec<&str> = loaded
        .weights
        .names()
        .filter(|n| !expected.contains_key(*n))
        .collect();
    assert!(extra.is_empty(), "unexpected tensors {extra:?}");
}

#[test]
fn llama_f32_weights_equal_safetensors() {
    // Exact: the only transform is the Q/K row permutation.
    assert_weights_match(
        "tiny-llama",
        "tiny-llama.gguf",
        LoadMode::Dequantize(DType::F32),
        0.0,
    );
}

#[test]
fn gemma3_f32_weights_equal_safetensors() {
    // Norms went through (w + 1) - 1 in f32.
    assert_weights_match(
        "tiny-gemma3",
        "tiny-gemma3.gguf",
        LoadMode::Dequantize(DType::F32),
        1e-6,
    );
}

#[test]
fn llama_q8_0_stays_quantized_and_unpermuted() {
    let path = fixtures().join("tiny-llama-q8_0.gguf");
    let loaded = gguf::load(&path, LoadMode::Quantized, &Device::Cpu).unwrap();
    let q = loaded
        .weights
        .get("model.layers.1.self_attn.k_proj.weight", &[32, 64])
        .unwrap();
    match &q {
        Weight::Quantized(q) => assert_eq!(q.dtype(), GgmlDType::Q8_0),
        Weight::Dense(_) => panic!("Q8_0 matrix should stay quantized"),
    }
    let norm = loaded.weights.get("model.norm.weight", &[64]).unwrap();
    assert!(matches!(norm, Weight::Dense(_)), "norms are dense");
    // Q8_0 keeps ~0.4% of the block maximum: rows in the wrong order would differ by ~100%.
    assert_weights_match(
        "tiny-llama",
        "tiny-llama-q8_0.gguf",
        LoadMode::Quantized,
        0.01,
    );
    assert_weights_match(
        "tiny-llama",
        "tiny-llama-q8_0.gguf",
        LoadMode::Dequantize(DType::F32),
        0.01,
    );
}

#[test]
fn bf16_mode_gives_bf16_tensors() {
    let path = fixtures().join("tiny-gemma3.gguf");
    let loaded = gguf::load(&path, LoadMode::Dequantize(DType::BF16), &Device::Cpu).unwrap();
    let w = loaded
        .weights
        .get("model.layers.0.mlp.up_proj.weight", &[128, 64])
        .unwrap();
    match w {
        Weight::Dense(t) => assert_eq!(t.dtype(), DType::BF16),
        Weight::Quantized(_) => panic!("expected dense"),
    }
}

#[test]
fn config_matches_hf_config() {
    for (model, keys) in [
        (
            "tiny-llama",
            &["vocab_size", "num_key_value_heads", "head_dim"][..],
        ),
        (
            "tiny-gemma3",
            &[
                "head_dim",
                "query_pre_attn_scalar",
                "sliding_window",
                "layer_types",
                "rope_parameters",
            ][..],
        ),
    ] {
        let loaded = gguf::load(
            &fixtures().join(format!("{model}.gguf")),
            LoadMode::Quantized,
            &Device::Cpu,
        )
        .unwrap();
        let want = hf_config(model);
        let common = [
            "model_type",
            "architectures",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "tie_word_embeddings",
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
            "max_position_embeddings",
        ];
        for key in common.iter().chain(keys) {
            assert_eq!(loaded.config[key], want[key], "{model}: {key}");
        }
        let eps = loaded.config["rms_norm_eps"].as_f64().unwrap();
        let want_eps = want["rms_norm_eps"].as_f64().unwrap();
        assert!(
            (eps - want_eps).abs() < 1e-12,
            "{model}: rms_norm_eps {eps} vs {want_eps}"
        );
    }
}

fn expected(model: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(format!("{model}-expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn gguf_tokenizer_equals_hf_tokenizer() {
    for model in ["tiny-llama", "tiny-gemma3"] {
        let from_gguf = gguf::load_tokenizer(&fixtures().join(format!("{model}.gguf"))).unwrap();
        let from_json = Tokenizer::from_hf_dir(&fixtures().join(model)).unwrap();
        assert_eq!(from_gguf.special_ids(), from_json.special_ids(), "{model}");
        assert_eq!(from_gguf.vocab_size(), from_json.vocab_size(), "{model}");
        for case in expected(model)["gguf_tokenizer"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            for tok in [&from_gguf, &from_json] {
                assert_eq!(
                    tok.encode(text, true).unwrap(),
                    ids(&case["ids"]),
                    "{model}: {text:?}"
                );
                assert_eq!(
                    tok.encode(text, false).unwrap(),
                    ids(&case["ids_no_special"]),
                    "{model}: {text:?}"
                );
            }
            let back = from_gguf
                .decode(&ids(&case["ids_no_special"]), true)
                .unwrap();
            assert_eq!(
                back,
                from_json
                    .decode(&ids(&case["ids_no_special"]), true)
                    .unwrap()
            );
        }
    }
}

/// A scratch copy of a fixture, altered by `edit`.
fn altered(fixture: &str, tag: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(fixtures().join(fixture)).unwrap();
    edit(&mut bytes);
    let dir = std::env::temp_dir().join(format!("datm-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}.gguf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_error(path: &Path) -> String {
    format!(
        "{:#}",
        gguf::load(path, LoadMode::Quantized, &Device::Cpu).unwrap_err()
    )
}

#[test]
fn truncated_file_names_tensor_and_bytes() {
    let path = altered("tiny-llama.gguf", "truncated", |b| {
        b.truncate(b.len() - 1000)
    });
    let err = load_error(&path);
    assert!(
        err.contains("truncated.gguf") && err.contains("truncated file: tensor"),
        "{err}"
    );
    assert!(err.contains("needs bytes"), "{err}");
}

#[test]
fn corrupt_header_is_reported() {
    let path = altered("tiny-llama.gguf", "badmagic", |b| {
        b[0..4].copy_from_slice(b"XXXX")
    });
    let err = load_error(&path);
    assert!(
        err.contains("badmagic.gguf") && err.contains("not a readable GGUF file"),
        "{err}"
    );
    let path = altered("tiny-llama.gguf", "cut-header", |b| b.truncate(200));
    assert!(load_error(&path).contains("not a readable GGUF file"));
}

#[test]
fn unsupported_architecture_lists_supported() {
    // Same length, so the header stays valid: "llama" → "mamba" in general.architecture.
    let path = altered("tiny-llama.gguf", "arch", |b| {
        let key = b"general.architecture";
        let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8;
        b[at..at + 5].copy_from_slice(b"mamba");
    });
    let err = load_error(&path);
    assert!(
        err.contains("unsupported GGUF architecture \"mamba\"") && err.contains("llama, gemma3"),
        "{err}"
    );
}

#[test]
fn gguf_models_give_hf_logits() {
    // The whole GGUF path (config, unpermuted/offset weights, tokenizer) through the model code.
    let opts = datm_model::LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    for model in ["tiny-llama", "tiny-gemma3"] {
        let loaded =
            datm_model::Model::load(&fixtures().join(format!("{model}.gguf")), &opts).unwrap();
        let logits_file = fixtures().join(format!("{model}-logits.safetensors"));
        let logits = candle_core::safetensors::load(logits_file, &Device::Cpu).unwrap();
        for case in expected(model)["base"].as_array().unwrap() {
            let prompt = ids(&case["prompt_ids"]);
            assert_eq!(
                loaded
                    .tokenizer()
                    .unwrap()
                    .encode(case["prompt"].as_str().unwrap(), true)
                    .unwrap(),
                prompt
            );
            let want = &logits[case["logits_key"].as_str().unwrap()];
            let got = loaded.logits(&prompt, None).unwrap();
            let diff = common::max_abs_diff(&got, want);
            assert!(
                diff <= 1e-4 * common::max_abs(want).max(1.0),
                "{model}: max |Δlogit| {diff}"
            );
        }
    }
}

#[test]
fn gguf_tokenizer_serializes_to_hf_tokenizer_json() {
    // The HF dirs' tokenizer.json files were written by HF from these GGUFs: whole-file equality.
    for model in ["tiny-llama", "tiny-gemma3"] {
        let tok = gguf::load_tokenizer(&fixtures().join(format!("{model}.gguf"))).unwrap();
        let ours = serde_json::to_value(tok.inner()).unwrap();
        let text = std::fs::read_to_string(fixtures().join(model).join("tokenizer.json")).unwrap();
        let hf: Value = serde_json::from_str(&text).unwrap();
        for key in [
            "added_tokens",
            "normalizer",
            "pre_tokenizer",
            "post_processor",
            "decoder",
            "model",
        ] {
            assert_eq!(ours[key], hf[key], "{model}: {key}");
        }
    }
}
