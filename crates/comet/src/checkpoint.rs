//! PyTorch (Lightning) checkpoints: the torch zip archive (`<name>/data.pkl` +
//! `<name>/data/<key>` storages), read through the restricted [`crate::pickle`] unpickler.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use crate::pickle::{self, StorageDtype, TensorRef, Value};

/// A checkpoint's weights (as f32 tensors on the CPU) and its plain-data hyper-parameters.
pub struct Checkpoint {
    /// `state_dict` tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// `hyper_parameters` as JSON, when the checkpoint has them as plain data.
    pub hyper_parameters: Option<serde_json::Value>,
}

/// Reads a torch zip checkpoint: the tensors of its `state_dict` (or of the top-level dict
/// when there is no `state_dict`), converted to f32.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_from(file, len, path)
}

/// Reads a checkpoint from `source` (`len` bytes long; `path` names it in errors), as
/// [`read`] does; also the entry point for fuzzing the zip and pickle layers from memory.
pub fn read_from<R: Read + Seek>(source: R, len: u64, path: &Path) -> Result<Checkpoint> {
    let mut zip = zip::ZipArchive::new(source).with_context(|| {
        format!(
            "{}: not a torch zip checkpoint (legacy non-zip torch files are not supported)",
            path.display()
        )
    })?;
    let pkl_name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(|n| n.to_string())
        .with_context(|| format!("{}: no <archive>/data.pkl record", path.display()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Ok(mut f) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        ensure!(
            s.trim() == "little",
            "{}: byteorder {s:?} is not supported",
            path.display()
        );
    }
    let data = read_record(&mut zip, &pkl_name, len, path)?;
    let root =
        pickle::unpickle(&data).with_context(|| format!("{}: {pkl_name}", path.display()))?;
    let state = root.get("state_dict").unwrap_or(&root);
    let Value::Dict(entries) = state else {
        bail!(
            "{}: the state_dict is a {}, not a dict",
            path.display(),
            state.kind()
        );
    };
    let mut tensors = HashMap::new();
    for (k, v) in &entries.pairs {
        let name = k
            .as_str()
            .with_context(|| format!("{}: a state_dict key is a {}", path.display(), k.kind()))?;
        let Value::Tensor(t) = v else {
            bail!(
                "{}: state_dict entry {name} is a {}, not a tensor",
                path.display(),
                v.kind()
            );
        };
        let record = format!("{prefix}data/{}", t.storage.key);
        let tensor = if is_whole_f32(t) {
            let values = read_f32_record(&mut zip, &record, t.storage.numel, len, path)?;
            Tensor::from_vec(values, t.shape.as_slice(), &Device::Cpu)?
        } else {
            let bytes = read_record(&mut zip, &record, len, path)?;
            to_tensor(t, &bytes).with_context(|| format!("{}: tensor {name}", path.display()))?
        };
        tensors.insert(name.to_string(), tensor);
    }
    let hyper_parameters = root.get("hyper_parameters").and_then(Value::to_json);
    Ok(Checkpoint {
        tensors,
        hyper_parameters,
    })
}

fn read_record<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    archive_len: u64,
    path: &Path,
) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .with_context(|| format!("{}: record {name} is missing", path.display()))?;
    ensure_stored(&f, name, path)?;
    // The declared size is only a hint: never reserve more than the archive holds.
    let mut out = Vec::with_capacity(f.size().min(archive_len) as usize);
    f.read_to_end(&mut out)
        .with_context(|| format!("{}: cannot read record {name}", path.display()))?;
    Ok(out)
}

/// torch.save writes every record uncompressed (so that it can be mapped); a compressed one
/// is not torch's, and could inflate far beyond the file's size.
fn ensure_stored<R: Read>(f: &zip::read::ZipFile<'_, R>, name: &str, path: &Path) -> Result<()> {
    ensure!(
        f.compression() == zip::CompressionMethod::Stored,
        "{}: record {name} is compressed ({:?}); torch checkpoints store records uncompressed",
        path.display(),
        f.compression()
    );
    Ok(())
}

/// Whether `t` is the whole of an f32 storage in row-major order (every weight torch saves),
/// whose record's bytes are its values on a little-endian machine.
fn is_whole_f32(t: &TensorRef) -> bool {
    cfg!(target_endian = "little")
        && t.storage.dtype == StorageDtype::F32
        && t.offset == 0
        && t.shape.iter().product::<usize>() == t.storage.numel
        && is_row_major(&t.shape, &t.stride)
}

/// The `numel` f32 values of storage record `name`, read from the archive straight into
/// their buffer: the stored bytes as they are, without the zip reader's CRC-32 pass (as
/// torch's own reader, and as the mapped loading of safetensors and GGUF files; a gigabyte
/// of XLM-R large reads in half the time).
fn read_f32_record<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    numel: usize,
    archive_len: u64,
    path: &Path,
) -> Result<Vec<f32>> {
    let mut f = zip
        .by_name_raw(name.as_bytes())
        .with_context(|| format!("{}: record {name} is missing", path.display()))?;
    ensure_stored(&f, name, path)?;
    let bytes = numel.checked_mul(4).map(|b| b as u64);
    ensure!(
        bytes.is_some_and(|b| b <= f.size() && b <= archive_len),
        "{}: record {name} has {} bytes, expected {numel} f32 values",
        path.display(),
        f.size()
    );
    let mut values = vec![0f32; numel];
    f.read_exact(bytemuck::cast_slice_mut(&mut values))
        .with_context(|| format!("{}: cannot read record {name}", path.display()))?;
    Ok(values)
}

/// Gathers a strided tensor view out of its storage bytes as f32.
fn to_tensor(t: &TensorRef, bytes: &[u8]) -> Result<Tensor> {
    let es = t.storage.dtype.size();
    ensure!(
        bytes.len() >= t.storage.numel * es,
        "storage {} has {} bytes, expected {} elements of {es} bytes",
        t.storage.key,
        bytes.len(),
        t.storage.numel
    );
    let numel: usize = t.shape.iter().product();
    if numel == 0 {
        return Ok(Tensor::zeros(
            t.shape.as_slice(),
            candle_core::DType::F32,
            &Device::Cpu,
        )?);
    }
    if is_row_major(&t.shape, &t.stride) {
        let raw = &bytes[t.offset * es..(t.offset + numel) * es];
        let out = elements(t.storage.dtype, raw);
        return Ok(Tensor::from_vec(out, t.shape.as_slice(), &Device::Cpu)?);
    }
    let mut raw = Vec::with_capacity(numel * es);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        raw.extend_from_slice(&bytes[at * es..(at + 1) * es]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    let out = elements(t.storage.dtype, &raw);
    Ok(Tensor::from_vec(out, t.shape.as_slice(), &Device::Cpu)?)
}

fn is_row_major(shape: &[usize], stride: &[usize]) -> bool {
    let mut expect = 1;
    for (&n, &s) in shape.iter().zip(stride).rev() {
        if n > 1 && s != expect {
            return false;
        }
        expect *= n;
    }
    true
}

/// `raw` (whole little-endian elements of `dtype`) as f32 values: one loop per dtype, so
/// that the gigabyte of an f32 checkpoint converts at memory speed.
fn elements(dtype: StorageDtype, raw: &[u8]) -> Vec<f32> {
    fn each<const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        raw.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks of N bytes")))
            .collect()
    }
    match dtype {
        StorageDtype::F32 => each(raw, f32::from_le_bytes),
        StorageDtype::F64 => each(raw, |b| f64::from_le_bytes(b) as f32),
        StorageDtype::F16 => each(raw, |b| half::f16::from_le_bytes(b).to_f32()),
        StorageDtype::Bf16 => each(raw, |b| half::bf16::from_le_bytes(b).to_f32()),
        StorageDtype::I64 => each(raw, |b| i64::from_le_bytes(b) as f32),
        StorageDtype::I32 => each(raw, |b| i32::from_le_bytes(b) as f32),
        StorageDtype::I16 => each(raw, |b| i16::from_le_bytes(b) as f32),
        StorageDtype::I8 => each(raw, |[b]| b as i8 as f32),
        StorageDtype::U8 | StorageDtype::Bool => each(raw, |[b]| b as f32),
    }
}
