//! Differential tests against HF transformers + PEFT on the tiny fixtures made by
//! `tools/make_model_fixtures.py`: logits, greedy and beam-search outputs, with and without
//! a LoRA adapter, unbatched and batched.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use datm_adapter::Adapter;
use datm_model::{generate, EarlyStopping, GenerationConfig, LoadOptions, Model};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn expected(name: &str) -> Value {
    let p = fixtures().join(format!("{name}-expected.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The fixture in `dtype` with its adapter attached; `packed` re-stores the weights for the
/// packed inference kernels (as `datm generate` does).
fn load(name: &str, dtype: DType, packed: bool) -> Model {
    let opts = LoadOptions {
        dtype: Some(dtype),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    let mut m = Model::load(&fixtures().join(name), &opts).unwrap();
    let adapter = Adapter::load(&fixtures().join(format!("{name}-lora"))).unwrap();
    m.attach_adapter("lora", &adapter).unwrap();
    if packed {
        m.pack_for_inference().unwrap();
    }
    m
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn gen_config(run: &Value, max_new: usize, adapter: Option<&str>) -> GenerationConfig {
    let early_stopping = match &run["early_stopping"] {
        Value::Bool(true) => EarlyStopping::True,
        Value::String(s) if s == "never" => EarlyStopping::Never,
        _ => EarlyStopping::False,
    };
    GenerationConfig {
        max_new_tokens: max_new,
        num_beams: run["num_beams"].as_u64().unwrap() as usize,
        length_penalty: run["length_penalty"].as_f64().unwrap_or(1.0),
        early_stopping,
        adapter: adapter.map(str::to_string),
        ..GenerationConfig::default()
    }
}

fn check_logits(name: &str, packed: bool) {
    let model = load(name, DType::F32, packed);
    let exp = expected(name);
    let logits = candle_core::safetensors::load(
        fixtures().join(format!("{name}-logits.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    for (part, adapter) in [("base", None), ("lora", Some("lora"))] {
        for case in exp[part].as_array().unwrap() {
            let key = case["logits_key"].as_str().unwrap();
            let want: &Tensor = &logits[key];
            let got = model.logits(&ids(&case["prompt_ids"]), adapter).unwrap();
            let diff = common::max_abs_diff(&got, want);
            let scale = common::max_abs(want);
            assert!(
                diff <= 1e-4 * scale.max(1.0),
                "{name} {key} (packed: {packed}): max |Δlogit| {diff} (scale {scale})"
            );
        }
    }
}

fn check_generation(name: &str, batched: bool, packed: bool) {
    let model = load(name, DType::F32, packed);
    let exp = expected(name);
    let max_new = exp["max_new_tokens"].as_u64().unwrap() as usize;
    for (part, adapter) in [("base", None), ("lora", Some("lora"))] {
        let cases = exp[part].as_array().unwrap();
        let n_runs = cases[0]["runs"].as_array().unwrap().len();
        for r in 0..n_runs {
            let run0 = &cases[0]["runs"][r];
            let mut cfg = gen_config(run0, max_new, adapter);
            cfg.batch_size = if batched { cases.len() } else { 1 };
            let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
            let out = generate(&model, &prompts, &cfg, &mut |_| {}).unwrap();
            for (c, g) in cases.iter().zip(&out) {
                let run = &c["runs"][r];
                assert_eq!(
                    g.token_ids,
                    ids(&run["token_ids"]),
                    "{name} {part} (packed: {packed}) prompt {:?} run {run0}",
                    c["prompt"]
                );
                if let Some(s) = run["sequence_score"].as_f64() {
                    assert!(
                        (g.score - s).abs() < 1e-3 * s.abs().max(1.0),
                        "{name} score {} vs HF {s}",
                        g.score
                    );
                }
            }
        }
    }
}

#[test]
fn llama_logits_match_hf() {
    check_logits("tiny-llama", false);
    check_logits("tiny-llama", true);
}

#[test]
fn gemma3_logits_match_hf() {
    check_logits("tiny-gemma3", false);
    check_logits("tiny-gemma3", true);
}

/// A bf16 model (`--dtype bf16`) packed for inference: every linear layer on the packed bf16
/// kernels, and its logits those of the unpacked bf16 model (candle's bf16 matmul) but for
/// summation order, with the adapter too.
#[test]
fn bf16_models_pack_for_the_bf16_kernels() {
    for name in ["tiny-llama", "tiny-gemma3"] {
        let (plain, packed) = (
            load(name, DType::BF16, false),
            load(name, DType::BF16, true),
        );
        for (layer, lin) in packed.linears() {
            let x = Tensor::ones((1, lin.in_dim()), DType::BF16, &Device::Cpu).unwrap();
            let on_kernels = lin.forward_packed_into(&x, &mut Vec::new()).unwrap();
            assert!(on_kernels, "{name} {layer} packed");
        }
        let logits = candle_core::safetensors::load(
            fixtures().join(format!("{name}-logits.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let exp = expected(name);
        for (part, adapter) in [("base", None), ("lora", Some("lora"))] {
            for case in exp[part].as_array().unwrap() {
                let want = &logits[case["logits_key"].as_str().unwrap()];
                let prompt = ids(&case["prompt_ids"]);
                let run = |m: &Model| {
                    let got = m.logits(&prompt, adapter).unwrap();
                    got.to_dtype(DType::F32).unwrap()
                };
                let (plain, packed) = (run(&plain), run(&packed));
                let (apart, scale) = (common::max_abs_diff(&packed, &plain), common::max_abs(want));
                assert!(
                    apart <= 0.02 * scale,
                    "{name} {part}: bf16 logits packed and unpacked {apart} apart (scale {scale})"
                );
            }
        }
    }
}

#[test]
fn llama_generation_matches_hf() {
    check_generation("tiny-llama", false, false);
    check_generation("tiny-llama", false, true);
}

#[test]
fn gemma3_generation_matches_hf() {
    check_generation("tiny-gemma3", false, false);
    check_generation("tiny-gemma3", false, true);
}

#[test]
fn batched_generation_equals_unbatched() {
    check_generation("tiny-llama", true, true);
    check_generation("tiny-gemma3", true, true);
}

/// The kernel path is the one `DATM_CPU` asks for (`scripts/cpu-matrix.sh` runs these
/// tests once per path), else the best one the CPU runs.
#[test]
fn kernel_path_follows_datm_cpu() {
    let active = datm_model::cpu::active().unwrap();
    match std::env::var("DATM_CPU").map(|v| v.trim().to_ascii_lowercase()) {
        Ok(v) if !v.is_empty() && v != "auto" => assert_eq!(active.name(), v),
        _ => assert_eq!(active, datm_model::cpu::detected()),
    }
}
