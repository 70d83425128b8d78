//! Bad model directories fail with the file, the tensor and what was expected.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use datm_model::{LoadOptions, Model};

fn copy_fixture(name: &str, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model")
        .join(name);
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    format!(
        "{:#}",
        Model::load(dir, &opts).err().expect("load should fail")
    )
}

#[test]
fn unsupported_architecture_is_named() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture("tiny-llama", d.path());
    let cfg = d.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("LlamaForCausalLM", "MistralForCausalLM");
    std::fs::write(&cfg, text).unwrap();
    let err = load_err(d.path());
    assert!(
        err.contains("unsupported architecture") && err.contains("MistralForCausalLM"),
        "{err}"
    );
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn missing_and_misshaped_tensors_are_named() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture("tiny-llama", d.path());
    let st = d.path().join("model.safetensors");
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    candle_core::safetensors::save(&tensors, &st).unwrap();
    let err = load_err(d.path());
    assert!(
        err.contains("missing tensor model.layers.1.mlp.up_proj.weight"),
        "{err}"
    );
    assert!(err.contains("expected shape [128, 64]"), "{err}");

    let bad = Tensor::zeros((128, 63), DType::F32, &Device::Cpu).unwrap();
    tensors.insert("model.layers.1.mlp.up_proj.weight".into(), bad);
    candle_core::safetensors::save(&tensors, &st).unwrap();
    let err = load_err(d.path());
    assert!(
        err.contains("has shape [128, 63], expected [128, 64]"),
        "{err}"
    );
}

#[test]
fn truncated_safetensors_is_refused() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture("tiny-llama", d.path());
    let st = d.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(d.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

/// Fuzzing regressions (issue 13, fuzz/regressions/): a GGUF tensor at an offset that
/// misaligns candle's block cast panicked inside candle; a tokenizer.json whose decoder is
/// malformed panicked inside the tokenizers crate. Both are now plain outcomes.
#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let gguf = std::fs::read(dir.join("gguf/unaligned-tensor.gguf")).unwrap();
    let mode = datm_model::gguf::LoadMode::Dequantize(candle_core::DType::F32);
    let _ = datm_model::gguf::load_bytes(&gguf, "unaligned.gguf", mode, &candle_core::Device::Cpu);
    for name in ["decoder-panic.json", "template-unknown-special.json"] {
        let json = std::fs::read(dir.join("tokenizer_json").join(name)).unwrap();
        let err = datm_model::tokenizer::parse_tokenizer_json(&json, "bad/tokenizer.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad/tokenizer.json: cannot load tokenizer"),
            "{name}: {err}"
        );
    }
}
