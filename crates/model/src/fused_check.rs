//! Each fused training op ([`crate::fused`]) against its composite twin (the candle ops of
//! [`crate::nn`] that run where the fused op does not), on one device and precision: the
//! forward values and the input gradients of `Σ y ∘ probe` for the same random inputs. The
//! twin runs in f32 on those inputs, so below f32 the check measures the fused op's own
//! rounding rather than the composite ops' (candle sums bf16 in bf16).
//! `datm check-kernels --device cuda` runs it on a GPU (the CUDA kernels); the tests run it
//! on the CPU.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};

use crate::fused;
use crate::nn::{composite_gated, composite_rms_norm, composite_rope, Activation};

/// One fused op against its composite twin.
#[derive(Debug, Clone)]
pub struct OpCheck {
    /// The op, and the input differentiated where it has several.
    pub op: String,
    /// The precision of its inputs.
    pub dtype: DType,
    /// The largest difference of the outputs, relative to the twin's largest magnitude.
    pub value_error: f32,
    /// The same for the input gradients.
    pub gradient_error: f32,
    /// The largest relative error that passes in this precision.
    pub tolerance: f32,
}

impl OpCheck {
    /// Whether both errors are finite and within the tolerance.
    pub fn passed(&self) -> bool {
        self.value_error <= self.tolerance && self.gradient_error <= self.tolerance
    }
}

/// The relative error allowed in `dtype`: the fused op rounds its output once (and, for
/// LLaMA's RMSNorm, the normalised row) where the f32 twin does not, and both sum in their own
/// orders: a few units in the last place; an indexing or formula bug is off by far more.
pub fn tolerance(dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => 3e-2,
        DType::F16 => 4e-3,
        _ => 1e-4,
    }
}

/// Values spread over [-2, 2), fixed by `seed`, of `shape` in `dtype` on `device`.
pub fn sample(shape: &[usize], seed: u64, dtype: DType, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    Ok(Tensor::from_vec(v, shape, device)?.to_dtype(dtype)?)
}

/// The output (in f32) and the input gradient of `Σ f(x) ∘ probe`, with a fixed probe.
fn value_and_gradient(
    f: &impl Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let v = Var::from_tensor(x)?;
    let y = f(v.as_tensor())?.to_dtype(DType::F32)?;
    let probe = sample(y.dims(), 99, DType::F32, x.device())?;
    let grads = (&y * probe)?.sum_all()?.backward()?;
    let g = grads
        .get(v.as_tensor())
        .context("no gradient reached the input")?
        .to_dtype(DType::F32)?;
    Ok((y, g))
}

/// `max |a − b| / max |b|`.
fn relative_error(a: &Tensor, b: &Tensor) -> Result<f32> {
    let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(diff / scale.max(1e-12))
}

/// `fused` against `composite` on the input `x`.
pub fn compare(
    op: &str,
    x: &Tensor,
    fused: impl Fn(&Tensor) -> Result<Tensor>,
    composite: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<OpCheck> {
    let (y1, g1) = value_and_gradient(&fused, x).with_context(|| format!("{op}: fused op"))?;
    let (y2, g2) = value_and_gradient(&composite, x).with_context(|| format!("{op}: twin"))?;
    let nan_if_not_finite = |e: f32| if e.is_finite() { e } else { f32::NAN };
    Ok(OpCheck {
        op: op.to_string(),
        dtype: x.dtype(),
        value_error: nan_if_not_finite(relative_error(&y1, &y2)?),
        gradient_error: nan_if_not_finite(relative_error(&g1, &g2)?),
        tolerance: tolerance(x.dtype()),
    })
}

/// `t` in f32, for the twins.
fn f32_of(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?)
}

/// Every fused op of this crate on `device` with inputs in `dtype` (the CPU's ops take f32
/// only). Rows are longer than a CUDA block's 1024 threads where the op reduces over them.
pub fn run(device: &Device, dtype: DType) -> Result<Vec<OpCheck>> {
    let input = |shape: &[usize], seed| sample(shape, seed, dtype, device);
    let constant = |shape: &[usize], seed| sample(shape, seed, DType::F32, device);
    let mut checks = Vec::new();
    let w = constant(&[1100], 1)?;
    let x = input(&[3, 5, 1100], 2)?;
    for (op, cast) in [("rms-norm (LLaMA)", true), ("rms-norm (Gemma)", false)] {
        checks.push(compare(
            op,
            &x,
            |x| Ok(fused::rms_norm(x, &w, 1e-6, cast)?),
            |x| composite_rms_norm(&f32_of(x)?, &w, 1e-6, cast),
        )?);
    }
    let (gate, up) = (input(&[4, 6, 300], 3)?, input(&[4, 6, 300], 4)?);
    for act in [Activation::Silu, Activation::GeluTanh] {
        checks.push(compare(
            &format!("gated {act:?}, ∂gate"),
            &gate,
            |g| Ok(fused::gated(g, &up, act)?),
            |g| composite_gated(&f32_of(g)?, &f32_of(&up)?, act),
        )?);
        checks.push(compare(
            &format!("gated {act:?}, ∂up"),
            &up,
            |u| Ok(fused::gated(&gate, u, act)?),
            |u| composite_gated(&f32_of(&gate)?, &f32_of(u)?, act),
        )?);
    }
    let (cos, sin) = (constant(&[2, 5, 32], 5)?, constant(&[2, 5, 32], 6)?);
    checks.push(compare(
        "rope",
        &input(&[2, 3, 5, 64], 7)?,
        |x| Ok(fused::rope(x, &cos, &sin)?),
        |x| composite_rope(&f32_of(x)?, &cos, &sin),
    )?);
    checks.push(compare(
        "softmax",
        &input(&[2, 3, 7, 1300], 8)?,
        |x| Ok(fused::softmax_last_dim(x)?),
        |x| Ok(candle_nn::ops::softmax(&f32_of(x)?, D::Minus1)?),
    )?);
    Ok(checks)
}
