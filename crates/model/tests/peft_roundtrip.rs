//! PEFT round trip: an adapter written by datm loads in PEFT and gives the same logits as
//! datm with that adapter. Needs a Python with torch + transformers + PEFT (`DATM_PYTHON`);
//! without one it is skipped, or fails under `CI=true` (datm-testkit).

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device};
use datm_adapter::Adapter;
use datm_model::{LoadOptions, Model};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

/// The fixture adapter with every factor changed (so nothing PEFT-written survives), saved
/// by datm.
fn datm_written_adapter(name: &str, dir: &Path) -> Adapter {
    let mut adapter = Adapter::load(&fixtures().join(format!("{name}-lora"))).unwrap();
    for pair in adapter.modules.values_mut() {
        pair.a = ((&pair.a * -1.5).unwrap() + 0.01).unwrap();
        pair.b = ((&pair.b * 0.75).unwrap() - 0.02).unwrap();
    }
    adapter.save(dir).unwrap();
    Adapter::load(dir).unwrap()
}

fn round_trip(name: &str) {
    let Some(py) = datm_testkit::python_with("peft, torch, transformers") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let adapter = datm_written_adapter(name, dir.path());
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    let mut model = Model::load(&fixtures().join(name), &opts).unwrap();
    model.attach_adapter("rt", &adapter).unwrap();
    let ids: Vec<u32> = (0..20u32).map(|i| (i * 37 + 5) % 200 + 3).collect();
    let ours: Vec<Vec<f32>> = model.logits(&ids, Some("rt")).unwrap().to_vec2().unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/peft_logits.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(fixtures().join(name))
        .arg(dir.path())
        .args(ids.iter().map(u32::to_string))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PEFT failed on the datm-written adapter:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let scale = theirs.iter().flatten().fold(0f32, |m, x| m.max(x.abs()));
    for (pos, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "{name}: position {pos}: datm {x} vs PEFT {y} (scale {scale})"
            );
        }
    }
}

#[test]
fn llama_adapter_written_by_datm_gives_peft_the_same_logits() {
    round_trip("tiny-llama");
}

#[test]
fn gemma3_adapter_written_by_datm_gives_peft_the_same_logits() {
    round_trip("tiny-gemma3");
}
