//! Differential tests against PEFT 0.21 on the fixtures of `tools/make_adapter_fixtures.py`:
//! datm loads the PEFT-written adapters, reproduces every `add_weighted_adapter` case (factor space:
//! the merged factors themselves; delta space: the effective ΔW per module) within 1e-4 relative,
//! and writes adapters PEFT loads back (needs a Python with PEFT: `DATM_PYTHON`, see datm-testkit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use datm_adapter::{merge, Adapter, MajoritySign, MergeOptions, Method, Space};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/adapter")
}

fn load(name: &str) -> Adapter {
    Adapter::load(&fixtures().join(format!("peft_{name}"))).unwrap()
}

fn expected() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("expected.safetensors"), &Device::Cpu).unwrap()
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    let meta: Value = serde_json::from_str(&text).unwrap();
    meta["cases"].as_array().unwrap().clone()
}

fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let g = got
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let w = want
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let num: f64 = g.iter().zip(&w).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = w.iter().map(|b| b * b).sum();
    (num / den.max(1e-300)).sqrt()
}

fn options(case: &Value) -> MergeOptions {
    MergeOptions {
        method: Method::parse(case["method"].as_str().unwrap()).unwrap(),
        space: if case["space"] == "delta" {
            Space::Delta
        } else {
            Space::Factors
        },
        density: case["density"].as_f64().unwrap(),
        majority_sign: if case["majority_sign"] == "frequency" {
            MajoritySign::Frequency
        } else {
            MajoritySign::Total
        },
        seed: 0,
        rank: case["rank"].as_u64().map(|r| r as usize),
    }
}

fn run_case(case: &Value) -> Adapter {
    let adapters: Vec<Adapter> = case["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| load(n.as_str().unwrap()))
        .collect();
    let weights: Vec<f64> = case["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    merge(&adapters, &weights, &options(case)).unwrap()
}

#[test]
fn loads_peft_written_adapters() {
    let d = load("d");
    assert_eq!(d.modules.len(), 14);
    assert!(d.config.use_rslora);
    let q = "model.layers.1.self_attn.q_proj";
    assert_eq!(d.modules[q].a.dims(), &[6, 16]);
    assert_eq!(
        d.modules["model.layers.0.self_attn.k_proj"].b.dims(),
        &[8, 6]
    );
    assert!((d.scaling_for(q) - 12.0 / 6f64.sqrt()).abs() < 1e-12);
    let b = load("b");
    assert_eq!(b.scaling_for("model.layers.0.self_attn.v_proj"), 4.0);
    assert_eq!(b.scaling_for("model.layers.0.self_attn.q_proj"), 1.0);
    assert!(d.modules.keys().all(|m| d.target_matches(m)));
    assert!(!d.target_matches("model.layers.0.input_layernorm"));
}

#[test]
fn every_peft_merge_case_matches() {
    let want = expected();
    let cases = cases();
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let out = run_case(case);
        assert_eq!(
            out.config.r as u64,
            case["expected_r"].as_u64().unwrap(),
            "{name}: r"
        );
        assert_eq!(
            out.config.lora_alpha,
            case["expected_alpha"].as_f64().unwrap(),
            "{name}: alpha"
        );
        assert_eq!(out.modules.len(), 14, "{name}");
        let mut worst = 0f64;
        for module in out.modules.keys() {
            let err = rel_err(
                &out.delta_weight(module).unwrap(),
                &want[&format!("{name}/{module}/delta")],
            );
            worst = worst.max(err);
            assert!(
                err < 1e-4,
                "{name} {module}: effective ΔW differs from PEFT by {err:e} relative"
            );
            if case["space"] == "factors" {
                let pair = &out.modules[module];
                let ea = rel_err(&pair.a, &want[&format!("{name}/{module}/lora_A")]);
                let eb = rel_err(&pair.b, &want[&format!("{name}/{module}/lora_B")]);
                assert!(
                    ea < 1e-5 && eb < 1e-5,
                    "{name} {module}: factors differ ({ea:e}, {eb:e})"
                );
            }
        }
        eprintln!("{name}: worst effective-ΔW relative error {worst:.2e}");
    }
}

#[test]
fn factor_merge_is_not_the_delta_merge() {
    // PEFT's factor-space TIES is not TIES on ΔW (mission notes, PR #3111): the fixtures show it.
    let want = expected();
    let m = "model.layers.0.mlp.up_proj";
    let err = rel_err(
        &want[&format!("ties/{m}/delta")],
        &want[&format!("linear/{m}/delta")],
    );
    assert!(err > 1e-2, "{err}");
}

#[test]
fn refuses_mixed_ranks_in_factor_space() {
    let err = merge(
        &[load("a"), load("d")],
        &[1.0, 1.0],
        &MergeOptions {
            space: Space::Factors,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("equal ranks"), "{err:#}");
}

#[test]
fn datm_written_adapter_loads_in_peft() {
    let Some(py) = datm_testkit::python_with("peft, torch, transformers") else {
        return;
    };
    let case = cases()
        .into_iter()
        .find(|c| c["name"] == "ties_svd")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run_case(&case);
    out.save(dir.path()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/check_adapter_in_peft.py");
    let result = Command::new(&py)
        .arg(&script)
        .arg(dir.path())
        .arg(fixtures().join("expected.safetensors"))
        .arg("ties_svd")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&result.stdout).to_string()
        + &String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "PEFT check failed:\n{text}");
    assert!(text.contains("OK 14 modules"), "{text}");
}
