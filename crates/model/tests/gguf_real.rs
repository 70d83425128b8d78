//! Real GGUF weights: datm's dequantized tensors equal HF transformers' (values dumped by
//! tools/make_real_model_expectations.py into tests/fixtures/model/real-*-weights.json).
//! The models come from `scripts/fetch-models.sh` (`DATM_GEMMA_GGUF` / `DATM_SMOLLM2_GGUF` override
//! the cached paths); a missing model is a skip, or a failure under `CI=true` (datm-testkit).

mod common;

use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use datm_model::gguf::{self, LoadMode};
use datm_model::weights::Weight;
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

fn check(var: &str, file: &str, fixture: &str) {
    let Some(path) = datm_testkit::model_file(var, file) else {
        return;
    };
    let model = gguf::load(&path, LoadMode::Dequantize(DType::F32), &Device::Cpu).unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model")
        .join(fixture);
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    for (name, want) in expected["tensors"].as_object().unwrap() {
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let Weight::Dense(t) = model.weights.get(name, &shape).unwrap() else {
            panic!("{name}: dense expected")
        };
        let flat = t.flatten_all().unwrap();
        close(
            &flat.narrow(0, 0, 8).unwrap().to_vec1::<f32>().unwrap(),
            &floats(&want["head"]),
            name,
        );
        for (row, values) in want["rows"].as_object().unwrap() {
            let r: usize = row.parse().unwrap();
            let got = t
                .get(r)
                .unwrap()
                .narrow(0, 0, 8)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            close(&got, &floats(values), &format!("{name} row {r}"));
        }
        let sum = t
            .to_dtype(DType::F64)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let abs_sum: f64 = t
            .to_dtype(DType::F64)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        let (want_sum, want_abs) = (
            want["sum"].as_f64().unwrap(),
            want["abs_sum"].as_f64().unwrap(),
        );
        assert!(
            (sum - want_sum).abs() <= 1e-6 * want_abs,
            "{name}: sum {sum} vs {want_sum}"
        );
        assert!(
            (abs_sum - want_abs).abs() <= 1e-6 * want_abs,
            "{name}: abs sum {abs_sum} vs {want_abs}"
        );
    }
}

#[test]
fn gemma3_dequantized_weights_equal_hf() {
    check(
        "DATM_GEMMA_GGUF",
        "gemma-3-270m-q4_k_m.gguf",
        "real-gemma3-weights.json",
    );
}

#[test]
fn smollm2_dequantized_weights_equal_hf() {
    check(
        "DATM_SMOLLM2_GGUF",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "real-smollm2-weights.json",
    );
}

#[test]
fn gemma3_quantized_mode_keeps_fast_types() {
    let Some(path) = datm_testkit::model_file("DATM_GEMMA_GGUF", "gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let model = gguf::load(&path, LoadMode::Quantized, &Device::Cpu).unwrap();
    let cfg = &model.config;
    assert_eq!(cfg["num_hidden_layers"], 18);
    assert_eq!(cfg["head_dim"], 256);
    assert_eq!(cfg["query_pre_attn_scalar"], 256);
    assert_eq!(cfg["layer_types"][5], "full_attention");
    assert_eq!(cfg["layer_types"][4], "sliding_attention");
    assert_eq!(cfg["tie_word_embeddings"], true);
    // Q8_0 embeddings and Q4_K/Q6_K matrices stay quantized, and on the CPU the Q5_0 ones
    // too (int8 blocks, which the packed kernels read as they are).
    let emb = model
        .weights
        .get("model.embed_tokens.weight", &[262144, 640])
        .unwrap();
    assert!(matches!(emb, Weight::Quantized(_)));
    let q = model
        .weights
        .get("model.layers.0.self_attn.q_proj.weight", &[1024, 640])
        .unwrap();
    assert!(matches!(q, Weight::Quantized(ref t) if t.dtype() == GgmlDType::Q5_0));
    let norm = model
        .weights
        .get("model.layers.0.input_layernorm.weight", &[640])
        .unwrap();
    assert!(matches!(norm, Weight::Dense(ref t) if t.dtype() == DType::F32));
    let o = model
        .weights
        .get("model.layers.0.self_attn.o_proj.weight", &[640, 1024])
        .unwrap();
    let Weight::Quantized(oq) = o else {
        panic!("Q4_K o_proj should stay quantized")
    };
    let dense = gguf::load(&path, LoadMode::Dequantize(DType::F32), &Device::Cpu).unwrap();
    let Weight::Dense(od) = dense
        .weights
        .get("model.layers.0.self_attn.o_proj.weight", &[640, 1024])
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        common::max_abs_diff(&oq.dequantize(&Device::Cpu).unwrap(), &od),
        0.0
    );
}

/// `keep_int_blocks` (how `datm generate --dtype f32` loads a GGUF file) keeps the Q8_0 embedding
/// table and tied LM head and the Q5_0, Q4_K and Q6_K projections quantized, the norms dense
/// f32, and a packed model loaded so gives the dequantized model's logits bit for bit, at
/// every step.
#[test]
fn gemma3_f32_inference_with_int_blocks_kept_equals_the_dequantized_model() {
    let Some(path) = datm_testkit::model_file("DATM_GEMMA_GGUF", "gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let kept = gguf::load(&path, LoadMode::F32KeepIntBlocks, &Device::Cpu).unwrap();
    let weight = |name: &str, shape: &[usize]| kept.weights.get(name, shape).unwrap();
    let emb = weight("model.embed_tokens.weight", &[262144, 640]);
    assert!(matches!(emb, Weight::Quantized(_)));
    for (name, shape) in [
        ("model.layers.0.self_attn.q_proj.weight", [1024, 640]),
        ("model.layers.0.self_attn.o_proj.weight", [640, 1024]),
        ("model.layers.0.mlp.down_proj.weight", [640, 2048]),
    ] {
        let w = weight(name, &shape);
        assert!(matches!(w, Weight::Quantized(_)), "{name} kept quantized");
    }
    let norm = weight("model.layers.0.input_layernorm.weight", &[640]);
    assert!(
        matches!(norm, Weight::Dense(ref t) if t.dtype() == DType::F32),
        "norms dense"
    );
    let load = |keep_int_blocks| {
        let mut m = load_f32(&path, keep_int_blocks);
        m.pack_for_inference().unwrap();
        m
    };
    let (q8, dense) = (load(true), load(false));
    let (mut a, mut b) = (q8.new_cache(2), dense.new_cache(2));
    let mut ids = vec![vec![2u32, 9259, 1902, 563], vec![2u32, 818, 4565, 236764]];
    for step in 0..3 {
        let la = q8.step(&ids, &mut a, None).unwrap();
        let lb = dense.step(&ids, &mut b, None).unwrap();
        let (la, lb) = (la.to_vec2::<f32>().unwrap(), lb.to_vec2::<f32>().unwrap());
        assert_eq!(la, lb, "step {step}");
        ids = la.iter().map(|row| vec![argmax(row)]).collect();
    }
}

/// The model at `path` in f32, GGUF int8-block tensors kept quantized or not.
fn load_f32(path: &Path, keep_int_blocks: bool) -> datm_model::Model {
    let opts = datm_model::LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks,
    };
    datm_model::Model::load(path, &opts).unwrap()
}

fn argmax(row: &[f32]) -> u32 {
    (0..row.len())
        .max_by(|&i, &j| row[i].total_cmp(&row[j]))
        .unwrap() as u32
}

/// Training a model loaded with `keep_int_blocks` (as `datm train` loads a GGUF file: Gemma-3's Q8_0
/// embedding table and tied LM head and its Q5_0, Q4_K and Q6_K projections kept quantized) gives the dequantized model's loss and
/// LoRA gradients bit for bit, dropout included, and its inference-mode logits (a
/// validation loss).
#[test]
fn gemma3_training_with_int_blocks_kept_equals_the_dequantized_model() {
    use datm_adapter::{LoraConfig, TargetModules};
    let Some(path) = datm_testkit::model_file("DATM_GEMMA_GGUF", "gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let run = |keep_int_blocks| {
        let mut m = load_f32(&path, keep_int_blocks);
        let mut lora = LoraConfig::new(
            4,
            8.0,
            TargetModules::List(vec!["q_proj".into(), "down_proj".into()]),
        );
        lora.lora_dropout = 0.1;
        m.new_adapter("a", &lora, 7).unwrap();
        m.set_active_adapter(Some("a")).unwrap();
        let ids = candle_core::Tensor::new(
            &[[2u32, 9259, 1902, 563, 818], [2, 818, 4565, 236764, 0]],
            &Device::Cpu,
        )
        .unwrap();
        let mask =
            candle_core::Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 1, 0]], &Device::Cpu).unwrap();
        let hidden = m.forward_train(&ids, &mask, 11).unwrap();
        let logits = m.lm_logits(&hidden.reshape((10, 640)).unwrap()).unwrap();
        let loss = logits.sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut out = vec![loss.to_vec0::<f32>().unwrap()];
        for (_, var) in m.lora_vars("a") {
            let g = grads.get(var.as_tensor()).expect("a gradient");
            out.extend(g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        // Inference mode on the same (unpacked) model, as a validation loss runs: exact f32
        // products on both sides, though not in the same order (candle's GEMM for the dense
        // weight).
        let logits = m.logits(&[2, 9259, 1902, 563], Some("a")).unwrap();
        (out, logits.flatten_all().unwrap().to_vec1::<f32>().unwrap())
    };
    let ((kept, kept_logits), (dense, dense_logits)) = (run(true), run(false));
    assert!(kept.iter().skip(1).any(|g| *g != 0.0), "no gradient at all");
    assert_eq!(kept, dense);
    for (a, b) in kept_logits.iter().zip(&dense_logits) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "logits {a} vs {b}");
    }
}
