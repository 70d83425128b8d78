//! Default (quantized) GGUF weights: the fast inference path (Q8_0 weights, AVX512-BF16
//! kernel where the CPU has it) stays close to the exact f32 path and to HF.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use datm_model::{generate, GenerationConfig, LoadOptions, Model};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn load(file: &str, quantized: bool) -> Model {
    let dtype = if quantized { None } else { Some(DType::F32) };
    Model::load(
        &fixtures().join(file),
        &LoadOptions {
            dtype,
            device: Device::Cpu,
            quantized,
            keep_int_blocks: false,
        },
    )
    .unwrap()
}

#[test]
fn quantized_default_is_close_to_exact_f32() {
    for file in ["tiny-llama-q8_0.gguf", "tiny-gemma3.gguf"] {
        let fast = load(file, true);
        let exact = load(file, false);
        let seq = [1u32, 5, 9, 30, 100, 7, 8, 9, 10, 11, 12, 13, 40, 41, 42];
        let a = fast.logits(&seq, None).unwrap();
        let b = exact.logits(&seq, None).unwrap();
        let diff = common::max_abs_diff(&a, &b);
        let scale = common::max_abs(&b);
        assert!(
            diff < 0.05 * scale,
            "{file}: max |Δlogit| {diff} (scale {scale})"
        );
        let cfg = GenerationConfig {
            max_new_tokens: 8,
            num_beams: 3,
            ..GenerationConfig::default()
        };
        let out = generate(&fast, &[seq.to_vec()], &cfg, &mut |_| {}).unwrap();
        assert!(!out[0].token_ids.is_empty());
    }
}
