//! GGUF model files (llama.cpp's format): hyperparameters, weights and tokenizer in one file.
//!
//! [`load`] memory-maps the file and returns what an HF directory would give: a `config.json`
//! equivalent, a [`WeightMap`] under **HF tensor names**, and the [`Tokenizer`] rebuilt from the
//! metadata. It mirrors HF transformers' GGUF loader (`modeling_gguf_pytorch_utils.py`):
//!
//! * llama: llama.cpp permutes the rows of `attn_q`/`attn_k` for interleaved RoPE; they are
//!   permuted back (for quantized tensors too: rows are whole quantization blocks).
//! * gemma3: llama.cpp stores every RMSNorm weight as `w + 1`; 1 is subtracted (in f32).
//! * Tied embeddings: `output.weight` is absent, and `tie_word_embeddings` is set.
//!
//! Gemma-3 hyperparameters the file does not hold follow llama.cpp, whose model the file was
//! made for: every 6th layer global (unless `gemma3.attention.sliding_window_pattern` says
//! otherwise), local RoPE base 10 000, and `query_pre_attn_scalar` = head_dim (hidden/heads for
//! the 62-layer 27B). HF's GGUF loader uses Gemma3TextConfig's default 256 there instead; both
//! agree for Gemma-3 270M/1B/4B/12B.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value as Json};

use crate::blocks::IntBlocks;
use crate::tokenizer::Tokenizer;
use crate::weights::{Weight, WeightMap};

/// GGUF `general.architecture` values [`load`] understands.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3"];

/// How to materialise the file's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Everything dequantized to dense tensors of this dtype (exact work, training).
    Dequantize(DType),
    /// Matrices whose GGUF type has a fast candle CPU kernel (Q4_0, Q8_0, Q2_K…Q8_K) stay
    /// quantized for `QMatMul`, and on the CPU those of int8 blocks too (Q4_1, Q5_0, which
    /// the packed kernels read as they are); everything else (norms, F16/F32 tensors, other
    /// types with only a scalar kernel) is dequantized to dense f32.
    Quantized,
    /// Everything dequantized to dense f32 but the matrices of int8 blocks (Q4_0, Q4_1,
    /// Q5_0, Q8_0, Q4_K, Q6_K), which stay quantized: for exact f32 inference and training,
    /// whose every use of them is exact ([`crate::LoadOptions::keep_int_blocks`]).
    F32KeepIntBlocks,
}

/// A model loaded from a GGUF file.
#[derive(Debug)]
pub struct GgufModel {
    /// The HF `config.json` equivalent (`architectures`, `model_type`, sizes, RoPE, ids, …).
    pub config: Json,
    /// Weights under HF names.
    pub weights: WeightMap,
    /// The tokenizer from the file's metadata.
    pub tokenizer: Tokenizer,
}

/// Loads a GGUF model file onto `device`.
pub fn load(path: &Path, mode: LoadMode, device: &Device) -> Result<GgufModel> {
    let (mmap, origin) = map(path)?;
    load_bytes(&mmap, &origin, mode, device)
}

/// Loads a GGUF model from its bytes (a mapped file, a fuzz input); `origin` names it in
/// errors. Candle's reader refuses counts and string lengths the bytes cannot hold, and
/// [`check_extents`] keeps every tensor inside them, so what is allocated is bounded by the
/// input's size times the largest dequantization ratio (f32 from 2-bit blocks: 12×).
pub fn load_bytes(
    bytes: &[u8],
    origin: &str,
    mode: LoadMode,
    device: &Device,
) -> Result<GgufModel> {
    let file = GgufFile::read(bytes, origin)?;
    let tokenizer =
        Tokenizer::from_gguf_metadata(&file.arch, &file.content.metadata, &file.origin)?;
    let (config, weights) = config_and_weights(&file, bytes, mode, device)?;
    Ok(GgufModel {
        config,
        weights,
        tokenizer,
    })
}

/// The HF-style config and the weights of a GGUF model file, without its tokenizer
/// ([`load_tokenizer`] reads that).
pub fn load_weights(path: &Path, mode: LoadMode, device: &Device) -> Result<(Json, WeightMap)> {
    let (mmap, origin) = map(path)?;
    let file = GgufFile::read(&mmap, &origin)?;
    config_and_weights(&file, &mmap, mode, device)
}

/// The config and weights of a parsed GGUF file whose bytes are `bytes`.
fn config_and_weights(
    file: &GgufFile,
    bytes: &[u8],
    mode: LoadMode,
    device: &Device,
) -> Result<(Json, WeightMap)> {
    let content = &file.content;
    let origin = &file.origin;
    check_extents(content, bytes.len() as u64).with_context(|| origin.clone())?;
    let meta = Meta {
        md: &content.metadata,
        arch: &file.arch,
    };
    let has_output = content.tensor_infos.contains_key("output.weight");
    let config = match file.arch.as_str() {
        "llama" => llama_config(&meta, has_output),
        _ => gemma3_config(&meta, has_output),
    }
    .with_context(|| origin.clone())?;
    let mut weights = WeightMap::new(origin.clone());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let info = &content.tensor_infos[name];
        let context = || {
            format!(
                "{origin}: tensor {name} ({:?} {:?})",
                info.ggml_dtype, info.shape
            )
        };
        let hf = hf_name(&file.arch, name).with_context(context)?;
        let raw = read_tensor(bytes, content, info).with_context(context)?;
        let fix = Fix::for_tensor(&file.arch, name, &config);
        let weight = materialise(raw, fix, mode, device).with_context(context)?;
        weights.insert(hf, weight);
    }
    Ok((config, weights))
}

/// Reads only the tokenizer of a GGUF model file (no tensors are touched).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let (mmap, origin) = map(path)?;
    let file = GgufFile::read(&mmap, &origin)?;
    Tokenizer::from_gguf_metadata(&file.arch, &file.content.metadata, &file.origin)
}

/// Memory-maps `path`; also returns its name for errors.
fn map(path: &Path) -> Result<(memmap2::Mmap, String)> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("{origin}: cannot open"))?;
    // SAFETY: the map is only read; as with every mmap, another process must not truncate
    // the file while it is loaded.
    let mmap =
        unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("{origin}: cannot map"))?;
    Ok((mmap, origin))
}

/// The number of parameters (tensor elements) a GGUF model file holds, read from its
/// header alone; a tied LM head is counted once, as in the file.
pub fn parameter_count(path: &Path) -> Result<u64> {
    let (mmap, origin) = map(path)?;
    let content = Content::read(&mut Cursor::new(&mmap[..]))
        .map_err(|e| anyhow!("{origin}: not a readable GGUF file: {e}"))?;
    content
        .tensor_infos
        .iter()
        .try_fold(0u64, |total, (name, info)| {
            total
                .checked_add(info.shape.elem_count() as u64)
                .with_context(|| format!("{origin}: tensor {name}: parameter count overflows"))
        })
}

/// A GGUF file's parsed header, of a supported architecture.
struct GgufFile {
    content: Content,
    arch: String,
    origin: String,
}

impl GgufFile {
    fn read(bytes: &[u8], origin: &str) -> Result<Self> {
        let content = Content::read(&mut Cursor::new(bytes))
            .map_err(|e| anyhow!("{origin}: not a readable GGUF file: {e}"))?;
        let arch = architecture(&content.metadata).with_context(|| origin.to_string())?;
        Ok(GgufFile {
            content,
            arch,
            origin: origin.to_string(),
        })
    }
}

fn architecture(md: &HashMap<String, Value>) -> Result<String> {
    let arch = md
        .get("general.architecture")
        .ok_or_else(|| anyhow!("missing metadata general.architecture"))?
        .to_string()
        .map_err(|e| anyhow!("general.architecture: {e}"))?
        .clone();
    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        bail!(
            "unsupported GGUF architecture {arch:?} (supported: {})",
            SUPPORTED_ARCHITECTURES.join(", ")
        );
    }
    Ok(arch)
}

/// Bytes a tensor occupies in the file.
fn byte_len(info: &TensorInfo) -> Result<u64> {
    let elems = info
        .shape
        .dims()
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| anyhow!("shape {:?} overflows", info.shape.dims()))?;
    let block = info.ggml_dtype.block_size();
    if !elems.is_multiple_of(block) {
        bail!(
            "{elems} elements are not a whole number of {:?} blocks of {block}",
            info.ggml_dtype
        );
    }
    (elems / block)
        .checked_mul(info.ggml_dtype.type_size())
        .map(|n| n as u64)
        .ok_or_else(|| anyhow!("shape {:?} overflows", info.shape.dims()))
}

/// Every tensor must lie inside the file: a truncated download fails here, naming the tensor.
fn check_extents(content: &Content, file_len: u64) -> Result<()> {
    for (name, info) in &content.tensor_infos {
        let start = content.tensor_data_offset.saturating_add(info.offset);
        let len = byte_len(info).with_context(|| format!("tensor {name}"))?;
        let end = start.saturating_add(len);
        if end > file_len {
            bail!(
                "truncated file: tensor {name} ({:?}, shape {:?}) needs bytes {start}..{end} but the file has {file_len}",
                info.ggml_dtype,
                info.shape.dims(),
            );
        }
    }
    Ok(())
}

/// The alignment candle's block casts may need (no GGML block type needs more).
const BLOCK_ALIGN: usize = 16;

fn read_tensor(bytes: &[u8], content: &Content, info: &TensorInfo) -> Result<QTensor> {
    let start = (content.tensor_data_offset + info.offset) as usize;
    let data = &bytes[start..start + byte_len(info)? as usize];
    // Candle reinterprets the bytes as blocks and panics if they are misaligned, which a
    // file with an odd `general.alignment` or tensor offset (or an unaligned buffer) gives:
    // such data is copied (the system allocator aligns to 16), and refused if still off.
    let data = if data.as_ptr().align_offset(BLOCK_ALIGN) == 0 {
        Cow::Borrowed(data)
    } else {
        Cow::Owned(data.to_vec())
    };
    if data.as_ptr().align_offset(BLOCK_ALIGN) != 0 {
        bail!("tensor data cannot be aligned to {BLOCK_ALIGN} bytes");
    }
    let storage = QStorage::from_data(data, &Device::Cpu, info.ggml_dtype)?;
    Ok(QTensor::new(storage, info.shape.clone())?)
}

/// A value/layout change llama.cpp's converter made that HF undoes.
#[derive(Debug, Clone, Copy)]
enum Fix {
    None,
    /// Undo `LlamaModel.permute` with this many heads.
    UnpermuteRows(usize),
    /// Gemma norms are stored as `w + 1`.
    SubtractOne,
}

impl Fix {
    fn for_tensor(arch: &str, gguf_name: &str, config: &Json) -> Fix {
        let heads = |key: &str| config[key].as_u64().unwrap_or(1) as usize;
        match arch {
            "llama" if gguf_name.ends_with(".attn_q.weight") => {
                Fix::UnpermuteRows(heads("num_attention_heads"))
            }
            "llama" if gguf_name.ends_with(".attn_k.weight") => {
                Fix::UnpermuteRows(heads("num_key_value_heads"))
            }
            "gemma3" if gguf_name.ends_with("norm.weight") => Fix::SubtractOne,
            _ => Fix::None,
        }
    }
}

/// For each output row, the stored row it comes from: HF's `_reverse_permute_weights`
/// (`w.reshape(n_head, dim, 2, …).swapaxes(2, 1)`): output row (h, j, i) ← stored row (h, i, j).
fn unpermuted_rows(rows: usize, n_head: usize) -> Result<Vec<usize>> {
    if n_head == 0 || !rows.is_multiple_of(2 * n_head) {
        bail!("{rows} rows cannot be split into {n_head} heads of rotary pairs");
    }
    let dim = rows / n_head / 2;
    let mut src = Vec::with_capacity(rows);
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..dim {
                src.push(h * 2 * dim + i * 2 + j);
            }
        }
    }
    Ok(src)
}

/// GGUF types with a SIMD `vec_dot` kernel in candle 0.11 (others run a scalar loop).
fn has_fast_kernel(dtype: GgmlDType) -> bool {
    use GgmlDType::*;
    matches!(dtype, Q4_0 | Q8_0 | Q2K | Q3K | Q4K | Q5K | Q6K | Q8K)
}

/// Whether a matrix of GGUF type `dtype` stays quantized under `mode` (`on_cpu`: it lives
/// on the CPU): with [`LoadMode::Quantized`] the types with fast candle kernels and, on the
/// CPU, the int8 blocks the packed kernels read; with [`LoadMode::F32KeepIntBlocks`] the
/// int8 blocks.
pub(crate) fn stays_quantized(mode: LoadMode, dtype: GgmlDType, on_cpu: bool) -> bool {
    match mode {
        LoadMode::Quantized => has_fast_kernel(dtype) || (on_cpu && IntBlocks::supports(dtype)),
        LoadMode::F32KeepIntBlocks => IntBlocks::supports(dtype),
        LoadMode::Dequantize(_) => false,
    }
}

fn materialise(raw: QTensor, fix: Fix, mode: LoadMode, device: &Device) -> Result<Weight> {
    let keep_quantized = raw.rank() == 2
        && !matches!(fix, Fix::SubtractOne)
        && stays_quantized(mode, raw.dtype(), device.is_cpu());
    if keep_quantized {
        let q = match fix {
            Fix::UnpermuteRows(n_head) => permute_quantized_rows(&raw, n_head)?,
            _ => raw,
        };
        let on_device = if device.is_cpu() {
            q
        } else {
            requeue(&q, device)?
        };
        return Ok(Weight::Quantized(Arc::new(on_device)));
    }
    let mut t = raw.dequantize(&Device::Cpu)?;
    match fix {
        Fix::UnpermuteRows(n_head) => {
            let src = unpermuted_rows(t.dim(0)?, n_head)?;
            let idx: Vec<u32> = src.into_iter().map(|i| i as u32).collect();
            t = t.index_select(&Tensor::new(idx, &Device::Cpu)?, 0)?;
        }
        Fix::SubtractOne => t = (t - 1.0)?,
        Fix::None => {}
    }
    let dtype = match mode {
        LoadMode::Dequantize(dtype) => dtype,
        LoadMode::Quantized | LoadMode::F32KeepIntBlocks => DType::F32,
    };
    Ok(Weight::Dense(t.to_dtype(dtype)?.to_device(device)?))
}

/// Reorders whole rows of a quantized matrix (each row is a run of complete blocks).
fn permute_quantized_rows(q: &QTensor, n_head: usize) -> Result<QTensor> {
    let (rows, cols) = q.shape().dims2()?;
    let data = q.data()?;
    let row_bytes = cols / q.dtype().block_size() * q.dtype().type_size();
    let mut out = Vec::with_capacity(data.len());
    for src in unpermuted_rows(rows, n_head)? {
        out.extend_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    }
    let storage = QStorage::from_data(Cow::Owned(out), &Device::Cpu, q.dtype())?;
    Ok(QTensor::new(storage, (rows, cols))?)
}

/// Copies a CPU quantized tensor to another device.
fn requeue(q: &QTensor, device: &Device) -> Result<QTensor> {
    let storage = QStorage::from_data(q.data()?, device, q.dtype())?;
    Ok(QTensor::new(storage, q.shape().clone())?)
}

/// The HF name of a GGUF tensor.
fn hf_name(arch: &str, gguf: &str) -> Result<String> {
    match gguf {
        "token_embd.weight" => return Ok("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Ok("model.norm.weight".into()),
        "output.weight" => return Ok("lm_head.weight".into()),
        "rope_freqs.weight" => {
            bail!("per-dimension RoPE frequency factors (LLaMA-3.1 style) are not supported")
        }
        _ => {}
    }
    let unknown = || anyhow!("unexpected tensor for a {arch} model");
    let rest = gguf.strip_prefix("blk.").ok_or_else(unknown)?;
    let (layer, leaf) = rest.split_once('.').ok_or_else(unknown)?;
    let layer: usize = layer.parse().map_err(|_| unknown())?;
    let leaf = leaf.strip_suffix(".weight").ok_or_else(unknown)?;
    let module = match (arch, leaf) {
        (_, "attn_q") => "self_attn.q_proj",
        (_, "attn_k") => "self_attn.k_proj",
        (_, "attn_v") => "self_attn.v_proj",
        (_, "attn_output") => "self_attn.o_proj",
        (_, "ffn_gate") => "mlp.gate_proj",
        (_, "ffn_up") => "mlp.up_proj",
        (_, "ffn_down") => "mlp.down_proj",
        (_, "attn_norm") => "input_layernorm",
        ("llama", "ffn_norm") => "post_attention_layernorm",
        ("gemma3", "ffn_norm") => "pre_feedforward_layernorm",
        ("gemma3", "post_attention_norm") => "post_attention_layernorm",
        ("gemma3", "post_ffw_norm") => "post_feedforward_layernorm",
        ("gemma3", "attn_q_norm") => "self_attn.q_norm",
        ("gemma3", "attn_k_norm") => "self_attn.k_norm",
        _ => return Err(unknown()),
    };
    Ok(format!("model.layers.{layer}.{module}.weight"))
}

/// Typed access to `<arch>.*` metadata; errors name the key.
struct Meta<'a> {
    md: &'a HashMap<String, Value>,
    arch: &'a str,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.md.get(&format!("{}.{key}", self.arch))
    }

    fn uint(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                crate::tokenizer::gguf_integer(v)
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| {
                        anyhow!("metadata {}.{key}: expected an unsigned integer", self.arch)
                    })
            })
            .transpose()
    }

    fn need_uint(&self, key: &str) -> Result<u64> {
        self.uint(key)?
            .ok_or_else(|| anyhow!("missing metadata {}.{key}", self.arch))
    }

    fn float(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                crate::tokenizer::gguf_float(v)
                    .ok_or_else(|| anyhow!("metadata {}.{key}: expected a float", self.arch))
            })
            .transpose()
    }

    fn token_id(&self, which: &str) -> Option<u64> {
        self.md
            .get(&format!("tokenizer.ggml.{which}_token_id"))
            .and_then(crate::tokenizer::gguf_integer)
            .map(|i| i as u64)
    }

    fn vocab_size(&self) -> Result<u64> {
        if let Some(n) = self.uint("vocab_size")? {
            return Ok(n);
        }
        let tokens = self.md.get("tokenizer.ggml.tokens").ok_or_else(|| {
            anyhow!(
                "missing metadata {}.vocab_size and tokenizer.ggml.tokens",
                self.arch
            )
        })?;
        Ok(tokens
            .to_vec()
            .map_err(|e| anyhow!("tokenizer.ggml.tokens: {e}"))?
            .len() as u64)
    }

    /// Fields shared by every decoder-only config.
    fn common(&self, has_output: bool) -> Result<serde_json::Map<String, Json>> {
        let heads = self.need_uint("attention.head_count")?;
        let mut c = serde_json::Map::new();
        c.insert(
            "hidden_size".into(),
            json!(self.need_uint("embedding_length")?),
        );
        c.insert(
            "intermediate_size".into(),
            json!(self.need_uint("feed_forward_length")?),
        );
        c.insert(
            "num_hidden_layers".into(),
            json!(self.need_uint("block_count")?),
        );
        c.insert("num_attention_heads".into(), json!(heads));
        c.insert(
            "num_key_value_heads".into(),
            json!(self.uint("attention.head_count_kv")?.unwrap_or(heads)),
        );
        let eps = self
            .float("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| {
                anyhow!(
                    "missing metadata {}.attention.layer_norm_rms_epsilon",
                    self.arch
                )
            })?;
        c.insert("rms_norm_eps".into(), json!(eps));
        c.insert(
            "max_position_embeddings".into(),
            json!(self.uint("context_length")?.unwrap_or(2048)),
        );
        c.insert("vocab_size".into(), json!(self.vocab_size()?));
        c.insert("tie_word_embeddings".into(), json!(!has_output));
        for which in ["bos", "eos", "pad"] {
            let key = if which == "pad" { "padding" } else { which };
            c.insert(format!("{which}_token_id"), json!(self.token_id(key)));
        }
        c.insert("attention_bias".into(), json!(false));
        c.insert("torch_dtype".into(), json!("float32"));
        Ok(c)
    }
}

fn llama_config(m: &Meta, has_output: bool) -> Result<Json> {
    let mut c = m.common(has_output)?;
    let hidden = c["hidden_size"].as_u64().unwrap_or(0);
    let heads = c["num_attention_heads"].as_u64().unwrap_or(1).max(1);
    let head_dim = m.uint("rope.dimension_count")?.unwrap_or(hidden / heads);
    let theta = m.float("rope.freq_base")?.unwrap_or(10_000.0);
    let mut rope = json!({"rope_type": "default", "rope_theta": theta});
    match m.get("rope.scaling.type").map(|v| v.to_string()) {
        None => {}
        Some(Ok(t)) if t == "none" => {}
        Some(Ok(t)) if t == "linear" => {
            let factor = m
                .float("rope.scaling.factor")?
                .ok_or_else(|| anyhow!("missing metadata llama.rope.scaling.factor"))?;
            rope = json!({"rope_type": "linear", "rope_theta": theta, "factor": factor});
        }
        Some(Ok(t)) => bail!("RoPE scaling {t:?} is not supported (supported: none, linear)"),
        Some(Err(e)) => bail!("metadata llama.rope.scaling.type: {e}"),
    }
    c.insert("architectures".into(), json!(["LlamaForCausalLM"]));
    c.insert("model_type".into(), json!("llama"));
    c.insert("head_dim".into(), json!(head_dim));
    c.insert("rope_theta".into(), json!(theta));
    if rope["rope_type"] != "default" {
        c.insert("rope_scaling".into(), rope.clone());
    }
    c.insert("rope_parameters".into(), rope);
    c.insert("hidden_act".into(), json!("silu"));
    c.insert("mlp_bias".into(), json!(false));
    Ok(Json::Object(c))
}

fn gemma3_config(m: &Meta, has_output: bool) -> Result<Json> {
    let mut c = m.common(has_output)?;
    let layers = c["num_hidden_layers"].as_u64().unwrap_or(0) as usize;
    let hidden = c["hidden_size"].as_u64().unwrap_or(0);
    let heads = c["num_attention_heads"].as_u64().unwrap_or(1).max(1);
    let head_dim = m.uint("attention.key_length")?.unwrap_or(256);
    let theta = m.float("rope.freq_base")?.unwrap_or(1_000_000.0);
    let local_theta = 10_000.0;
    let sliding = m.get("attention.sliding_window_pattern");
    let (pattern, is_sliding): (Json, Vec<bool>) = match sliding {
        Some(Value::Array(flags)) => {
            let flags: Vec<bool> = flags.iter().map(|f| f.to_bool().unwrap_or(true)).collect();
            if flags.len() != layers {
                bail!(
                    "gemma3.attention.sliding_window_pattern has {} entries for {layers} layers",
                    flags.len()
                );
            }
            (Json::Null, flags)
        }
        _ => {
            let n = m
                .uint("attention.sliding_window_pattern")?
                .unwrap_or(6)
                .max(1) as usize;
            (json!(n), (0..layers).map(|i| (i + 1) % n != 0).collect())
        }
    };
    let layer_types: Vec<&str> = is_sliding
        .iter()
        .map(|&s| {
            if s {
                "sliding_attention"
            } else {
                "full_attention"
            }
        })
        .collect();
    let qpas = if layers == 62 {
        hidden / heads
    } else {
        head_dim
    };
    c.insert("architectures".into(), json!(["Gemma3ForCausalLM"]));
    c.insert("model_type".into(), json!("gemma3_text"));
    c.insert("head_dim".into(), json!(head_dim));
    c.insert("query_pre_attn_scalar".into(), json!(qpas));
    c.insert("rope_theta".into(), json!(theta));
    c.insert("rope_local_base_freq".into(), json!(local_theta));
    c.insert(
        "rope_parameters".into(),
        json!({
            "full_attention": {"rope_type": "default", "rope_theta": theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": local_theta},
        }),
    );
    c.insert(
        "sliding_window".into(),
        json!(m.uint("attention.sliding_window")?.unwrap_or(4096)),
    );
    c.insert("sliding_window_pattern".into(), pattern);
    c.insert("layer_types".into(), json!(layer_types));
    c.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
    c.insert("final_logit_softcapping".into(), Json::Null);
    c.insert("attn_logit_softcapping".into(), Json::Null);
    Ok(Json::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llamacpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, dim, …).swapaxes(1, 2): stored row (h, i, j) = HF row (h, j, i).
        let (n_head, dim) = (2, 3);
        let hf_rows: Vec<usize> = (0..n_head * 2 * dim).collect();
        let mut stored = vec![0; hf_rows.len()];
        for h in 0..n_head {
            for j in 0..2 {
                for i in 0..dim {
                    stored[h * 2 * dim + i * 2 + j] = hf_rows[h * 2 * dim + j * dim + i];
                }
            }
        }
        let src = unpermuted_rows(stored.len(), n_head).unwrap();
        let back: Vec<usize> = src.iter().map(|&s| stored[s]).collect();
        assert_eq!(back, hf_rows);
    }

    #[test]
    fn names_map_to_hf() {
        assert_eq!(
            hf_name("gemma3", "blk.3.ffn_norm.weight").unwrap(),
            "model.layers.3.pre_feedforward_layernorm.weight"
        );
        assert_eq!(
            hf_name("llama", "blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert!(hf_name("llama", "blk.0.post_ffw_norm.weight").is_err());
    }
}
