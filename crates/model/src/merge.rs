//! Folding a LoRA adapter into the base weights (PEFT's `merge_and_unload`) and writing the
//! merged model as an HF directory (`config.json`, `model.safetensors`, tokenizer files).

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use datm_adapter::Adapter;
use std::collections::HashMap;
use std::path::Path;

use crate::model::{load_parts, LoadOptions};
use crate::nn::dense;

/// HF tokenizer/generation files copied along when the source is an HF directory.
const SIDE_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
];

/// Loads the base model at `model` (HF dir or `.gguf`), adds `B·A·scaling` of `adapter` (if
/// any) to each adapted weight, and writes an HF model directory in `dtype` to `out`.
/// An adapter that does not fit the base is refused.
pub fn save_merged(
    model: &Path,
    adapter: Option<&Adapter>,
    out: &Path,
    dtype: DType,
) -> Result<()> {
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    let parts = load_parts(model, &opts)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut shapes: HashMap<String, (usize, usize)> = HashMap::new();
    for (name, w) in parts.weights.into_weights() {
        let t = dense(w)?;
        if let (Some(m), [o, i]) = (name.strip_suffix(".weight"), t.dims()) {
            shapes.insert(m.to_string(), (*o, *i));
        }
        tensors.insert(name, t);
    }
    if let Some(a) = adapter {
        a.check_against(shapes.iter().map(|(m, s)| (m.as_str(), *s)))?;
        for module in a.modules.keys() {
            let key = format!("{module}.weight");
            let base = tensors[&key].to_dtype(DType::F32)?;
            tensors.insert(key, (base + a.delta_weight(module)?)?);
        }
    }
    let tensors = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(dtype)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let st = out.join("model.safetensors");
    datm_fsio::write_atomic_with(&st, |tmp| -> Result<()> {
        Ok(candle_core::safetensors::save(&tensors, tmp)?)
    })
    .with_context(|| format!("cannot write {}", st.display()))?;
    let mut config = parts.config;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("torch_dtype".into(), dtype_name(dtype).into());
    }
    let cfg_path = out.join("config.json");
    datm_fsio::write_atomic(&cfg_path, serde_json::to_string_pretty(&config)?.as_bytes())?;
    if model.is_dir() {
        for f in SIDE_FILES {
            let src = model.join(f);
            if src.exists() {
                std::fs::copy(&src, out.join(f))
                    .with_context(|| format!("cannot copy {}", src.display()))?;
            }
        }
    } else if let Some(tok) = parts.tokenizer {
        tok.save(&out.join("tokenizer.json"))?;
    }
    Ok(())
}

fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    }
}
