//! `y = x·Wᵀ + b` for the encoder and estimator: on the CPU through datm-model's packed
//! kernels when this CPU runs them (bias added as the kernel stores its tiles), elsewhere
//! (and as the fallback) through candle.

use anyhow::{ensure, Result};
use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use datm_model::kernels::{Activation, PackedMatrix, Precision};
use datm_model::vmath;
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
        Self::stacked(sd, &[prefix], n, k, device, dtype)
    }

    /// Several layers of the same input as one: the `[n, k]` weights and biases of every
    /// prefix taken out of the state dict and stacked into an `[n × prefixes, k]` layer,
    /// whose outputs are theirs side by side (the query, key and value projections).
    pub fn stacked(
        sd: &mut HashMap<String, Tensor>,
        prefixes: &[&str],
        n: usize,
        k: usize,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let mut ws = Vec::with_capacity(prefixes.len());
        let mut bs = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            ws.push(take(sd, &format!("{prefix}.weight"), &[n, k])?);
            bs.push(take(sd, &format!("{prefix}.bias"), &[n])?);
        }
        let (w, b) = (Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?);
        let n = n * prefixes.len();
        let precision = match dtype {
            DType::BF16 => Precision::Bf16,
            _ => Precision::F32,
        };
        let packable = precision == Precision::F32 || k.is_multiple_of(2);
        if device.is_cpu() && packable {
            let w = with_values(&w, |v| PackedMatrix::pack(v, n, k, precision))??;
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

    /// Output features.
    pub fn n(&self) -> usize {
        match self {
            Linear::Packed { b, .. } => b.len(),
            Linear::Plain { b, .. } => b.elem_count(),
        }
    }

    /// `x` `[m, k]` f32 → `[m, n]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Packed { .. } => {
                let (m, _) = x.dims2()?;
                let xs = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
                let mut y = vec![0f32; m * self.n()];
                self.forward_into(&xs, m, Activation::Identity, &mut y)?;
                Ok(Tensor::from_vec(y, (m, self.n()), x.device())?)
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

    /// `act` of row-major `x` (`m` rows) through the layer into `out` (`[m, n]`,
    /// overwritten), on the CPU; with packed weights the activation runs as the kernel
    /// stores its tiles.
    pub fn forward_into(
        &self,
        x: &[f32],
        m: usize,
        act: Activation,
        out: &mut [f32],
    ) -> Result<()> {
        match self {
            Linear::Packed { w, b } => w.matmul_t_bias_into(x, m, b, act, out),
            Linear::Plain { .. } => {
                self.forward_plain_into(x, m, out)?;
                if act == Activation::GeluErf {
                    vmath::gelu_erf(out);
                }
                Ok(())
            }
        }
    }

    /// [`Linear::forward_into`] through candle.
    fn forward_plain_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        ensure!(
            m > 0 && x.len().is_multiple_of(m),
            "{} inputs for {m} rows",
            x.len()
        );
        let x = Tensor::from_slice(x, (m, x.len() / m), &Device::Cpu)?;
        let y = self.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
        ensure!(
            y.len() == out.len(),
            "{} outputs for {}",
            y.len(),
            out.len()
        );
        out.copy_from_slice(&y);
        Ok(())
    }
}

/// `f` on the values of an f32 CPU tensor in row-major order, borrowed where the tensor is
/// contiguous (the checkpoint's weights: a gigabyte not copied once more), else copied.
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&v[start..end]));
        }
    }
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}
