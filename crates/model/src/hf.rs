//! HF model directories: `config.json`, `tokenizer.json`, `generation_config.json` and
//! `model.safetensors` or sharded `model-0000N-of-0000M.safetensors` + index, memory-mapped.

use anyhow::{bail, Context, Result};
use candle_core::safetensors::SliceSafetensors;
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
        let f = f
            .as_str()
            .filter(|f| is_plain_file_name(f))
            .with_context(|| {
                format!(
                    "{}: weight_map values must be file names in the model directory, found {f}",
                    index.display()
                )
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

/// Whether a shard name from an index is a plain file name (no directory part, not `..`),
/// so a hostile index cannot make the loader read files outside the model directory.
fn is_plain_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// Loads every tensor of the given safetensors files (memory-mapped) onto `device`, in the
/// file's dtype.
pub fn load_safetensors(files: &[PathBuf], device: &Device, origin: &str) -> Result<WeightMap> {
    let mut map = WeightMap::new(origin);
    for f in files {
        let file =
            std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        // SAFETY: the file is only read; modifying a model file while it is loaded is not supported.
        let mmap = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", f.display()))?;
        read_safetensors(&mmap, device, &f.display().to_string(), &mut map)?;
    }
    Ok(map)
}

/// Adds every tensor of one safetensors file's bytes to `map` (`origin` names the file in
/// errors). The safetensors crate refuses a header longer than the bytes, shapes whose size
/// overflows, and tensors whose extents overlap or leave the buffer, so what is allocated is
/// bounded by the input's size.
pub fn read_safetensors(
    bytes: &[u8],
    device: &Device,
    origin: &str,
    map: &mut WeightMap,
) -> Result<()> {
    let st = SliceSafetensors::new(bytes)
        .with_context(|| format!("{origin}: not a readable safetensors file"))?;
    for (name, _) in st.tensors() {
        let t = st
            .load(&name, device)
            .with_context(|| format!("{origin}: cannot read tensor {name}"))?;
        map.insert(name, Weight::Dense(t));
    }
    Ok(())
}

/// The number of parameters (tensor elements) in an HF model directory's safetensors
/// files, read from their headers.
pub fn parameter_count(dir: &Path) -> Result<u64> {
    let mut total = 0u64;
    for file in safetensors_files(dir)? {
        let origin = file.display().to_string();
        let f = std::fs::File::open(&file).with_context(|| format!("{origin}: cannot open"))?;
        // SAFETY: the map is only read; another process must not truncate the file meanwhile.
        let bytes =
            unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("{origin}: cannot map"))?;
        let st = SliceSafetensors::new(&bytes[..])
            .with_context(|| format!("{origin}: not a readable safetensors file"))?;
        for (name, view) in st.tensors() {
            let n = view
                .shape()
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            total = n
                .and_then(|n| total.checked_add(n))
                .with_context(|| format!("{origin}: tensor {name}: parameter count overflows"))?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile `model.safetensors.index.json` cannot point the loader outside the model
    /// directory.
    #[test]
    fn shard_names_stay_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.safetensors"), b"").unwrap();
        for (shard, ok) in [
            ("a.safetensors", true),
            ("../a.safetensors", false),
            ("/etc/passwd", false),
            ("sub/a.safetensors", false),
            ("..", false),
        ] {
            let index = format!(r#"{{"weight_map": {{"w": "{shard}"}}}}"#);
            std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
            let got = safetensors_files(dir.path());
            assert_eq!(got.is_ok(), ok, "{shard}: {got:?}");
            if !ok {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("must be file names in the model directory"),
                    "{e}"
                );
            }
        }
    }
}
