//! HF model directories: `config.json`, `tokenizer.json`, `generation_config.json` and
//! `model.safetensors` or sharded `model-0000N-of-0000M.safetensors` + index, memory-mapped.

use anyhow::{bail, Context, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::Device;
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::weights::{Weight, WeightMap};

/// Reads and parses a JSON file, naming it in errors.
pub fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

/// The safetensors files of a model directory, in shard order.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        bail!(
            "{}: no model.safetensors or model.safetensors.index.json",
            dir.display()
        );
    }
    let v = read_json(&index)?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .with_context(|| format!("{}: no `weight_map` object", index.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for f in map.values() {
        let f = f.as_str().with_context(|| {
            format!("{}: weight_map values must be file names", index.display())
        })?;
        let p = dir.join(f);
        if !files.contains(&p) {
            if !p.exists() {
                bail!("{}: shard {} is missing", index.display(), p.display());
            }
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every tensor of the given safetensors files (memory-mapped) onto `device`, in the
/// file's dtype.
pub fn load_safetensors(files: &[PathBuf], device: &Device, origin: &str) -> Result<WeightMap> {
    let mut map = WeightMap::new(origin);
    for f in files {
        // SAFETY: the file is only read; modifying a model file while it is loaded is not supported.
        let st = unsafe { MmapedSafetensors::new(f) }
            .with_context(|| format!("{}: not a readable safetensors file", f.display()))?;
        for (name, _) in st.tensors() {
            let t = st
                .load(&name, device)
                .with_context(|| format!("{}: cannot read tensor {name}", f.display()))?;
            map.insert(name, Weight::Dense(t));
        }
    }
    Ok(map)
}
