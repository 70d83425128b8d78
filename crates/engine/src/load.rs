//! How the base model is loaded: device and dtype, in the forms the command line takes.

use anyhow::{bail, Result};
use datm_model::candle_core::{DType, Device};
use datm_model::{parse_device, LoadOptions};

/// Where and in which precision the base model is loaded.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Device of the weights.
    pub device: Device,
    /// Dense weight dtype; `None` keeps GGUF k-quant/Q8_0 weights quantized (the fast mode)
    /// and loads everything else as f32. Any explicit dtype dequantizes GGUF weights to it.
    pub dtype: Option<DType>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            device: Device::Cpu,
            dtype: None,
        }
    }
}

impl LoadSpec {
    /// A spec from the CLI forms of `--device` and `--dtype`.
    pub fn parse(device: &str, dtype: Option<&str>) -> Result<LoadSpec> {
        Ok(LoadSpec {
            device: parse_device(device)?,
            dtype: parse_dtype(dtype)?,
        })
    }

    /// The model crate's load options for this spec.
    pub(crate) fn options(&self) -> LoadOptions {
        LoadOptions {
            dtype: self.dtype,
            quantized: self.dtype.is_none(),
            // The engine packs the model for inference as soon as it is loaded.
            keep_int_blocks: true,
            device: self.device.clone(),
        }
    }
}

/// `f32`, `bf16` or `f16` → a dtype; `None` stays `None` (see [`LoadSpec::dtype`]).
pub fn parse_dtype(s: Option<&str>) -> Result<Option<DType>> {
    Ok(match s {
        None => None,
        Some("f32") => Some(DType::F32),
        Some("bf16") => Some(DType::BF16),
        Some("f16") => Some(DType::F16),
        Some(other) => bail!("unknown --dtype {other:?} (expected f32, bf16 or f16)"),
    })
}
