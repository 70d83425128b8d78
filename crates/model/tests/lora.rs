//! LoRA behaviour: gradients reach every adapter variable through both architectures,
//! adapters made for another base are refused, fresh adapters start as the base model,
//! merged models reproduce the adapter's logits, and exported adapters round-trip.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use datm_adapter::{Adapter, LoraConfig, TargetModules};
use datm_model::merge::save_merged;
use datm_model::{LoadOptions, Model};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn opts() -> LoadOptions {
    LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    }
}

fn with_fixture_adapter(name: &str) -> Model {
    let mut m = Model::load(&fixtures().join(name), &opts()).unwrap();
    let a = Adapter::load(&fixtures().join(format!("{name}-lora"))).unwrap();
    m.attach_adapter("a", &a).unwrap();
    m.set_active_adapter(Some("a")).unwrap();
    m
}

fn all_vars_get_gradients(name: &str) {
    let m = with_fixture_adapter(name);
    // Two rows, the second left-padded; loss on a few positions only (as the trainer does).
    let ids = Tensor::new(
        &[[5u32, 17, 33, 48, 90, 7], [0, 0, 12, 64, 3, 250]],
        &Device::Cpu,
    )
    .unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let hidden = m.forward_train(&ids, &mask, 0).unwrap();
    let picked = hidden.narrow(1, 3, 3).unwrap();
    let logits = m.lm_logits(&picked).unwrap();
    let loss = candle_nn::ops::log_softmax(&logits, D::Minus1)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap();
    let grads = loss.backward().unwrap();
    let vars = m.lora_vars("a");
    assert_eq!(
        vars.len(),
        2 * 7 * m.config().num_layers,
        "{name}: one A and one B per projection"
    );
    for (n, v) in &vars {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for {n}"));
        let s = g
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(s > 0.0 && s.is_finite(), "{name}: gradient of {n} is {s}");
    }
}

#[test]
fn every_lora_var_gets_a_gradient_llama() {
    all_vars_get_gradients("tiny-llama");
}

#[test]
fn every_lora_var_gets_a_gradient_gemma3() {
    all_vars_get_gradients("tiny-gemma3");
}

#[test]
fn train_forward_matches_inference_logits() {
    for name in ["tiny-llama", "tiny-gemma3"] {
        let m = with_fixture_adapter(name);
        let seq = [5u32, 17, 33, 48, 90, 7, 11, 13, 200, 31, 4];
        let ids = Tensor::new(&[seq], &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, seq.len()), DType::U32, &Device::Cpu).unwrap();
        let train = m
            .lm_logits(&m.forward_train(&ids, &mask, 0).unwrap().squeeze(0).unwrap())
            .unwrap();
        let infer = m.logits(&seq, Some("a")).unwrap();
        assert!(common::max_abs_diff(&train, &infer) < 1e-4, "{name}");
    }
}

#[test]
fn adapter_for_another_base_is_refused() {
    let mut gemma = Model::load(&fixtures().join("tiny-gemma3"), &opts()).unwrap();
    let llama_adapter = Adapter::load(&fixtures().join("tiny-llama-lora")).unwrap();
    let err = gemma
        .attach_adapter("x", &llama_adapter)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another base"), "{err}");
    assert!(gemma.adapter_names().is_empty());
}

/// Regression (issue 13): an adapter whose `target_modules` names nothing in the base model
/// was accepted in silence; PEFT refuses it with "Target modules … not found in the base
/// model", and so do attaching, merging and creating one.
#[test]
fn adapter_targeting_nothing_is_refused() {
    let dir = fixtures().join("tiny-llama");
    let mut m = Model::load(&dir, &opts()).unwrap();
    let mut adapter = Adapter::load(&fixtures().join("tiny-llama-lora")).unwrap();
    adapter.config.target_modules = Some(TargetModules::List(vec!["c_attn".into()]));
    let err = m.attach_adapter("x", &adapter).unwrap_err().to_string();
    assert!(
        err.contains("Target modules {'c_attn'} not found in the base model"),
        "{err}"
    );
    assert!(m.adapter_names().is_empty());
    let out = tempfile::tempdir().unwrap();
    let err = save_merged(&dir, Some(&adapter), out.path(), DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found in the base model"), "{err}");
    let none = LoraConfig::new(4, 8.0, TargetModules::List(vec!["query".into()]));
    let err = m.new_adapter("y", &none, 7).unwrap_err().to_string();
    assert!(err.contains("not found in the base model"), "{err}");
}

#[test]
fn fresh_adapter_is_identity_and_exports() {
    let mut m = Model::load(&fixtures().join("tiny-llama"), &opts()).unwrap();
    let targets = TargetModules::List(vec!["q_proj".into(), "v_proj".into(), "down_proj".into()]);
    m.new_adapter("new", &LoraConfig::new(4, 8.0, targets), 7)
        .unwrap();
    assert_eq!(m.lora_vars("new").len(), 2 * 3 * m.config().num_layers);
    let seq = [1u32, 2, 3, 4, 5];
    let base = m.logits(&seq, None).unwrap();
    let fresh = m.logits(&seq, Some("new")).unwrap();
    assert_eq!(common::max_abs_diff(&base, &fresh), 0.0);
    let exported = m.export_adapter("new").unwrap();
    assert_eq!(exported.modules.len(), 3 * m.config().num_layers);
}

#[test]
fn merged_model_reproduces_adapter_logits() {
    for name in ["tiny-llama", "tiny-gemma3"] {
        let m = with_fixture_adapter(name);
        let adapter = m.export_adapter("a").unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_merged(
            &fixtures().join(name),
            Some(&adapter),
            dir.path(),
            DType::F32,
        )
        .unwrap();
        let merged = Model::load(dir.path(), &opts()).unwrap();
        let seq = [5u32, 17, 33, 48, 90, 7, 11, 13, 200, 31, 4];
        let want = m.logits(&seq, Some("a")).unwrap();
        let got = merged.logits(&seq, None).unwrap();
        assert!(
            common::max_abs_diff(&want, &got) < 1e-3,
            "{name}: {}",
            common::max_abs_diff(&want, &got)
        );
        let base = m.logits(&seq, None).unwrap();
        assert!(
            common::max_abs_diff(&base, &got) > 1e-2,
            "{name}: the merge changed nothing"
        );
    }
}
