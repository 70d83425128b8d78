//! `y = x·Wᵀ + b` for the encoder and estimator: on the CPU through datm-model's packed
//! kernels when this CPU runs them, elsewhere (and as the fallback) through candle.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use datm_model::kernels::{PackedMatrix, Precision};
use std::collections::HashMap;

use crate::xlmr::take;

/// A linear layer with bias.
pub enum Linear {
    /// Weight packed for the CPU kernels; bias as f32 values.
    Packed {
        /// The packed `[n, k]` weight.
        w: PackedMatrix,
        /// The bias, `n` values.
        b: Vec<f32>,
    },
    /// A candle weight `[n, k]` in the compute dtype and an f32 bias `[n]`.
    Plain {
        /// The weight.
        w: Tensor,
        /// The bias.
        b: Tensor,
    },
}

impl Linear {
    /// Takes `{prefix}.weight` (`[n, k]`) and `{prefix}.bias` out of the state dict.
    pub fn new(
        sd: &mut HashMap<String, Tensor>,
        prefix: &str,
        n: usize,
        k: usize,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let w = take(sd, &format!("{prefix}.weight"), &[n, k])?;
        let b = take(sd, &format!("{prefix}.bias"), &[n])?;
        let precision = match dtype {
            DType::BF16 => Precision::Bf16,
            _ => Precision::F32,
        };
        let packable = precision == Precision::F32 || k.is_multiple_of(2);
        if device.is_cpu() && packable {
            let w = PackedMatrix::pack(&w.flatten_all()?.to_vec1::<f32>()?, n, k, precision)?;
            return Ok(Linear::Packed {
                w,
                b: b.to_vec1::<f32>()?,
            });
        }
        Ok(Linear::Plain {
            w: w.to_device(device)?.to_dtype(dtype)?,
            b: b.to_device(device)?,
        })
    }

    /// `x` `[m, k]` f32 → `[m, n]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Packed { w, b } => {
                let (m, _) = x.dims2()?;
                let xs = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
                let mut y = w.matmul_t(&xs, m)?;
                for row in y.chunks_exact_mut(b.len()) {
                    row.iter_mut().zip(b).for_each(|(v, bi)| *v += bi);
                }
                Ok(Tensor::from_vec(y, (m, b.len()), x.device())?)
            }
            Linear::Plain { w, b } => {
                let y = x
                    .to_dtype(w.dtype())?
                    .matmul(&w.t()?)?
                    .to_dtype(DType::F32)?;
                Ok(y.broadcast_add(b)?)
            }
        }
    }
}
