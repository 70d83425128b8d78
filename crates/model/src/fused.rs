//! Fused ops with hand-written backward passes, for training: f32 on the CPU, and f32, bf16
//! or f16 on CUDA devices (the kernels of `cuda/fused.cu`, see `fused_cuda`), where they
//! also serve decoding (one launch for what candle's ops take several).
//!
//! candle builds RMSNorm, RoPE, softmax and the gated activations out of a dozen
//! element-wise ops each, and differentiates every one of them: in a LoRA training step of
//! a small model those passes over the activations cost as much as the matmuls (and on a GPU
//! each keeps its own activation buffer for the backward pass; candle has no backward pass
//! for its own fused CUDA RMSNorm, RoPE and softmax). Each op here is one pass forward and one
//! pass backward over contiguous rows, with the same formulas (and the same f32 rounding of
//! the forward value) as the composite versions in [`crate::nn`], which remain the path for
//! other dtypes and devices and the twin each fused op is checked against
//! (`datm_train::kernel_check`). Gradients flow to the activations only: norm weights and
//! RoPE tables are constants.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

#[cfg(feature = "cuda")]
use crate::fused_cuda;
use crate::pool::{par_chunks, par_collect};
use crate::vmath::{gated_product, Activation};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;

/// Whether the CPU-only training shortcuts are on (the default): these fused ops and the
/// frozen-weight matmul ([`crate::lora::frozen_matmul_t`]).
static CPU_FAST_PATHS: AtomicBool = AtomicBool::new(true);

/// Turns the CPU-only training shortcuts on or off for the whole process. Off, a CPU run
/// takes the composite, device-generic path that GPUs take: tests use it to prove both
/// paths give the reference's losses and gradients.
pub fn set_cpu_fast_paths(enabled: bool) {
    CPU_FAST_PATHS.store(enabled, Ordering::Relaxed);
}

/// Whether the CPU-only training shortcuts are on ([`set_cpu_fast_paths`]).
pub fn cpu_fast_paths() -> bool {
    CPU_FAST_PATHS.load(Ordering::Relaxed)
}

/// The switch of the fused CUDA kernels: on unless `DATM_CUDA_KERNELS=0`.
fn cuda_switch() -> &'static AtomicBool {
    static SWITCH: OnceLock<AtomicBool> = OnceLock::new();
    SWITCH.get_or_init(|| AtomicBool::new(std::env::var("DATM_CUDA_KERNELS").as_deref() != Ok("0")))
}

/// Turns the fused CUDA kernels on or off for the whole process (off, a CUDA device takes
/// candle's ops: the composite ones in training).
pub fn set_cuda_kernels(enabled: bool) {
    cuda_switch().store(enabled, Ordering::Relaxed);
}

/// Whether the fused CUDA kernels are on ([`set_cuda_kernels`]).
pub fn cuda_kernels() -> bool {
    cuda_switch().load(Ordering::Relaxed)
}

/// Whether the fused ops run on `x`: f32 on the CPU with the fast paths on; f32, bf16 or
/// f16 on a CUDA device with the kernels on.
pub fn applies(x: &Tensor) -> bool {
    if x.device().is_cpu() {
        x.dtype() == DType::F32 && cpu_fast_paths()
    } else {
        x.device().is_cuda()
            && matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16)
            && cuda_kernels()
    }
}

/// The contiguous f32 data of a CPU storage, or an error naming the op.
pub(crate) fn f32_slice<'a>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: expected f32 data, got {:?}", s.dtype());
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: input is not contiguous"),
    }
}

/// `f` applied to the contiguous f32 data of a CPU tensor, borrowed (an error naming `op`
/// for other tensors).
pub(crate) fn with_f32<R>(
    op: &str,
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (s, l) = t.storage_and_layout();
    let candle_core::Storage::Cpu(s) = &*s else {
        candle_core::bail!("{op}: tensor is not on the CPU");
    };
    f(f32_slice(op, s, l)?)
}

fn output(data: Vec<f32>, shape: &Shape) -> (CpuStorage, Shape) {
    (CpuStorage::F32(data), shape.clone())
}

// ---------------------------------------------------------------- RMSNorm

/// `x / sqrt(mean(x²) + eps) · w` over the last dimension, `w` constant. `cast_before_mul`:
/// below f32, the normalised row is rounded to x's precision before `w` multiplies it
/// (LLaMA's order; Gemma multiplies in f32).
pub fn rms_norm(
    x: &Tensor,
    weight: &Tensor,
    eps: f64,
    cast_before_mul: bool,
) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(RmsNormOp {
        weight: weight.to_dtype(DType::F32)?.contiguous()?,
        eps: eps as f32,
        cast_before_mul,
    })
}

struct RmsNormOp {
    weight: Tensor,
    eps: f32,
    cast_before_mul: bool,
}

/// `sqrt(mean(x²) + eps)` of one row, rounded as the composite op and candle's inference
/// kernel round it.
fn rms(row: &[f32], eps: f32) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    (ms + eps).sqrt()
}

impl CustomOp1 for RmsNormOp {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s, l)?;
        let y = with_f32(self.name(), &self.weight, |w| {
            let n = w.len();
            Ok(par_collect(x.len(), n, |i| {
                let x = &x[i * n..(i + 1) * n];
                let denom = rms(x, self.eps);
                x.iter().zip(w).map(move |(x, w)| x / denom * w)
            }))
        })?;
        Ok(output(y, l.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let y = fused_cuda::rms_norm(s, l, &self.weight, self.eps, self.cast_before_mul)?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = RmsNormBwd {
            weight: self.weight.clone(),
            eps: self.eps,
            cast_before_mul: self.cast_before_mul,
        };
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &op)?))
    }
}

/// `∂x` of [`RmsNormOp`]: `r·(g∘w) − x·r³·⟨g∘w, x⟩ / n`.
struct RmsNormBwd {
    weight: Tensor,
    eps: f32,
    #[cfg_attr(
        not(feature = "cuda"),
        expect(dead_code, reason = "f32 on the CPU rounds nothing before the weight")
    )]
    cast_before_mul: bool,
}

impl CustomOp2 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "fused-rms-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), sx, lx)?;
        let g = f32_slice(self.name(), sg, lg)?;
        let dx = with_f32(self.name(), &self.weight, |w| {
            let n = w.len();
            Ok(par_collect(x.len(), n, |i| {
                let (x, g) = (&x[i * n..(i + 1) * n], &g[i * n..(i + 1) * n]);
                let r = 1.0 / rms(x, self.eps);
                let dot: f32 = x.iter().zip(g).zip(w).map(|((x, g), w)| x * g * w).sum();
                let c = r * r * r * dot / n as f32;
                x.iter()
                    .zip(g)
                    .zip(w)
                    .map(move |((x, g), w)| r * g * w - x * c)
            }))
        })?;
        Ok(output(dx, lx.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        sx: &CudaStorage,
        lx: &Layout,
        sg: &CudaStorage,
        lg: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (x, g) = ((sx, lx), (sg, lg));
        let dx = fused_cuda::rms_norm_bwd(x, g, &self.weight, self.eps, self.cast_before_mul)?;
        Ok((dx, lx.shape().clone()))
    }
}

// ---------------------------------------------------------------- gated activations

const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;

/// The gate activation and its derivative at `x` (candle's forward formulas), for the
/// backward pass.
fn value_and_slope(act: Activation, x: f32) -> (f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-x).exp());
            (x / (1.0 + (-x).exp()), s * (1.0 + x * (1.0 - s)))
        }
        Activation::GeluTanh => {
            // tanh through one `exp` (libm's tanhf is several times slower); the
            // absolute error, ~1e-7, is below f32 resolution of `1 + t`.
            let e = (2.0 * SQRT_TWO_OVER_PI * x * (1.0 + 0.044715 * x * x)).exp();
            let t = 1.0 - 2.0 / (e + 1.0);
            let dinner = SQRT_TWO_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
            (
                0.5 * x * (1.0 + t),
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dinner,
            )
        }
    }
}

/// `act(gate) · up`, element-wise.
pub fn gated(gate: &Tensor, up: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    gate.contiguous()?
        .apply_op2(&up.contiguous()?, GatedOp(act))
}

struct GatedOp(Activation);

/// An error naming `op` unless the gate and up projections have one shape.
fn same_shape(op: &str, lg: &Layout, lu: &Layout) -> candle_core::Result<()> {
    if lg.shape() != lu.shape() {
        candle_core::bail!("{op}: gate {:?} vs up {:?}", lg.shape(), lu.shape());
    }
    Ok(())
}

impl CustomOp2 for GatedOp {
    fn name(&self) -> &'static str {
        "fused-gated-activation"
    }

    fn cpu_fwd(
        &self,
        sg: &CpuStorage,
        lg: &Layout,
        su: &CpuStorage,
        lu: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(self.name(), sg, lg)?;
        let u = f32_slice(self.name(), su, lu)?;
        same_shape(self.name(), lg, lu)?;
        let n = lg.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut y = vec![0f32; g.len()];
        par_chunks(&mut y, n, |i, y| {
            let span = i * n..i * n + y.len();
            gated_product(self.0, &g[span.clone()], &u[span], y);
        });
        Ok(output(y, lg.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        sg: &CudaStorage,
        lg: &Layout,
        su: &CudaStorage,
        lu: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        same_shape(self.name(), lg, lu)?;
        Ok((
            fused_cuda::gated((sg, lg), (su, lu), self.0)?,
            lg.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let both = gate.apply_op3_no_bwd(up, &dy.contiguous()?, &GatedBwd(self.0))?;
        let n = gate.dims().len();
        let dg = both.narrow(n - 1, 0, gate.dim(n - 1)?)?;
        let du = both.narrow(n - 1, gate.dim(n - 1)?, gate.dim(n - 1)?)?;
        Ok((Some(dg), Some(du)))
    }
}

/// `(∂gate, ∂up)` of [`GatedOp`], concatenated on the last dimension.
struct GatedBwd(Activation);

impl candle_core::CustomOp3 for GatedBwd {
    fn name(&self) -> &'static str {
        "fused-gated-activation-bwd"
    }

    fn cpu_fwd(
        &self,
        sg: &CpuStorage,
        lg: &Layout,
        su: &CpuStorage,
        lu: &Layout,
        sd: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(self.name(), sg, lg)?;
        let u = f32_slice(self.name(), su, lu)?;
        let d = f32_slice(self.name(), sd, ld)?;
        let dims = lg.shape().dims();
        let n = dims[dims.len() - 1];
        let mut out = vec![0f32; 2 * g.len()];
        par_chunks(&mut out, 2 * n, |r, out| {
            let at = r * n;
            let (dg, du) = out.split_at_mut(n);
            for i in 0..n {
                let (a, slope) = value_and_slope(self.0, g[at + i]);
                dg[i] = d[at + i] * u[at + i] * slope;
                du[i] = d[at + i] * a;
            }
        });
        Ok(output(out, &doubled_last(lg)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        sg: &CudaStorage,
        lg: &Layout,
        su: &CudaStorage,
        lu: &Layout,
        sd: &CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let out = fused_cuda::gated_bwd((sg, lg), (su, lu), (sd, ld), self.0)?;
        Ok((out, doubled_last(lg)))
    }
}

/// `l`'s shape with its last dimension doubled.
fn doubled_last(l: &Layout) -> Shape {
    let mut dims = l.shape().dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last *= 2;
    }
    Shape::from(dims)
}

// ---------------------------------------------------------------- RoPE

/// Rotate-half RoPE of `x` `[rows, heads, q, d]` with half tables `[rows, q, d/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(RopeOp {
        cos: cos.contiguous()?,
        sin: sin.contiguous()?,
        inverse: false,
    })
}

/// RoPE is a rotation, so its backward pass is the rotation by the opposite angle.
struct RopeOp {
    cos: Tensor,
    sin: Tensor,
    inverse: bool,
}

impl CustomOp1 for RopeOp {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s, l)?;
        let (rows, heads, q, d) = l.shape().dims4()?;
        let half = d / 2;
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let y = with_f32(self.name(), &self.cos, |cos| {
            with_f32(self.name(), &self.sin, |sin| {
                if d % 2 != 0 || cos.len() != rows * q * half || sin.len() != cos.len() {
                    candle_core::bail!("fused-rope: tables do not match [{rows}, {q}, {half}]");
                }
                Ok(par_collect(x.len(), d, |i| {
                    let (lo, hi) = x[i * d..(i + 1) * d].split_at(half);
                    let (r, t) = (i / (heads * q), i % q);
                    let at = (r * q + t) * half;
                    let (c, s) = (&cos[at..at + half], &sin[at..at + half]);
                    let first = (0..half).map(move |j| lo[j] * c[j] - hi[j] * (sign * s[j]));
                    let second = (0..half).map(move |j| hi[j] * c[j] + lo[j] * (sign * s[j]));
                    first.chain(second)
                }))
            })
        })?;
        Ok(output(y, l.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let y = fused_cuda::rope(s, l, &self.cos, &self.sin, self.inverse)?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = RopeOp {
            cos: self.cos.clone(),
            sin: self.sin.clone(),
            inverse: !self.inverse,
        };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

// ---------------------------------------------------------------- softmax

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(SoftmaxOp)
}

struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s, l)?;
        let n = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut y = vec![0f32; x.len()];
        par_chunks(&mut y, n, |i, y| {
            let x = &x[i * n..(i + 1) * n];
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (y, x) in y.iter_mut().zip(x) {
                *y = (x - max).exp();
                sum += *y;
            }
            y.iter_mut().for_each(|v| *v /= sum);
        });
        Ok(output(y, l.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        Ok((fused_cuda::softmax(s, l)?, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxBwd)?))
    }
}

/// `∂x = y ∘ (∂y − ⟨∂y, y⟩)` per row.
struct SoftmaxBwd;

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "fused-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        sy: &CpuStorage,
        ly: &Layout,
        sd: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = f32_slice(self.name(), sy, ly)?;
        let d = f32_slice(self.name(), sd, ld)?;
        let n = ly.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0f32; y.len()];
        par_chunks(&mut dx, n, |i, dx| {
            let (y, d) = (&y[i * n..(i + 1) * n], &d[i * n..(i + 1) * n]);
            let dot: f32 = y.iter().zip(d).map(|(y, d)| y * d).sum();
            for ((dx, y), d) in dx.iter_mut().zip(y).zip(d) {
                *dx = y * (d - dot);
            }
        });
        Ok(output(dx, ly.shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        sy: &CudaStorage,
        ly: &Layout,
        sd: &CudaStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        Ok((
            fused_cuda::softmax_bwd((sy, ly), (sd, ld))?,
            ly.shape().clone(),
        ))
    }
}
