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

/// Int8 products on request (`--dtype int8`, [`Model::load_with_int8_products`]): on a path
/// with them, a Q8_0 model's logits close to the exact f32 ones but not theirs (the inputs
/// are rounded to int8), the default's bits where the default is the int8 products, and a
/// model without int8 blocks as the default loads it; elsewhere a clear error.
#[test]
fn int8_products_on_request() {
    let isa = datm_model::cpu::active().unwrap();
    let seq = [1u32, 5, 9, 30, 100, 7, 8, 9, 10, 11, 12, 13, 40, 41, 42];
    for (file, int8_blocks) in [("tiny-llama-q8_0.gguf", true), ("tiny-gemma3.gguf", false)] {
        let path = fixtures().join(file);
        match Model::load_with_int8_products(&path, &LoadOptions::default()) {
            Ok(int8) => {
                assert!(isa.int8_products(), "{isa} has no int8 products");
                let a = int8.logits(&seq, None).unwrap();
                let default = Model::load_for_inference(&path, &LoadOptions::default()).unwrap();
                let from_default = common::max_abs_diff(&a, &default.logits(&seq, None).unwrap());
                if !int8_blocks || isa.packs_int8_by_default() {
                    assert_eq!(from_default, 0.0, "{file}");
                }
                if int8_blocks {
                    let b = load(file, false).logits(&seq, None).unwrap();
                    let diff = common::max_abs_diff(&a, &b);
                    let scale = common::max_abs(&b);
                    assert!(
                        diff > 0.0 && diff < 0.05 * scale,
                        "{file}: max |Δlogit| {diff} (scale {scale})"
                    );
                }
            }
            Err(e) => {
                assert!(!isa.int8_products(), "{isa}: {e:#}");
                assert!(format!("{e:#}").contains("int8 products need"), "{e:#}");
            }
        }
    }
    let dir = fixtures().join("tiny-llama");
    let Err(err) = Model::load_with_int8_products(&dir, &LoadOptions::default()) else {
        panic!("an HF directory loaded with int8 products");
    };
    assert!(format!("{err:#}").contains("not a .gguf file"), "{err:#}");
}
