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
    /// `--dtype int8`: a GGUF model's int8 blocks multiplied by the int8 products wherever
    /// the CPU's kernel path has them, not only where they are the default
    /// ([`datm_model::Model::load_with_int8_products`]).
    pub int8: bool,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            device: Device::Cpu,
            dtype: None,
            int8: false,
        }
    }
}

impl LoadSpec {
    /// A spec from the CLI forms of `--device` and `--dtype` (`f32`, `bf16`, `f16` or
    /// `int8`).
    pub fn parse(device: &str, dtype: Option<&str>) -> Result<LoadSpec> {
        let int8 = dtype == Some(INT8);
        Ok(LoadSpec {
            device: parse_device(device)?,
            dtype: if int8 { None } else { parse_dtype(dtype)? },
            int8,
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

/// `--dtype`'s value for the int8 products ([`LoadSpec::int8`]).
const INT8: &str = "int8";

/// `f32`, `bf16` or `f16` → a dtype; `None` stays `None` (see [`LoadSpec::dtype`]).
pub fn parse_dtype(s: Option<&str>) -> Result<Option<DType>> {
    Ok(match s {
        None => None,
        Some("f32") => Some(DType::F32),
        Some("bf16") => Some(DType::BF16),
        Some("f16") => Some(DType::F16),
        Some(INT8) => bail!("--dtype int8 applies to loading a GGUF model for inference, not here"),
        Some(other) => bail!("unknown --dtype {other:?} (expected f32, bf16, f16 or {INT8})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--dtype int8` asks for the int8 products and keeps GGUF weights quantized; the dtype
    /// parser alone (a merged model's dtype) refuses it; other values as before.
    #[test]
    fn int8_is_a_load_choice_not_a_dtype() {
        let spec = LoadSpec::parse("cpu", Some("int8")).unwrap();
        assert!(spec.int8 && spec.dtype.is_none());
        assert!(spec.options().quantized);
        let spec = LoadSpec::parse("cpu", Some("bf16")).unwrap();
        assert!(!spec.int8 && spec.dtype == Some(DType::BF16));
        assert!(!LoadSpec::parse("cpu", None).unwrap().int8);
        let err = parse_dtype(Some("int8")).unwrap_err().to_string();
        assert!(
            err.contains("int8 applies to loading a GGUF model"),
            "{err}"
        );
        let err = LoadSpec::parse("cpu", Some("q4")).unwrap_err().to_string();
        assert!(err.contains("f16 or int8"), "{err}");
    }
}
