//! The CUDA halves of the fused training ops: launches of the kernels in `cuda/fused.cu`
//! (compiled to PTX at build time) on candle's CUDA storages, for the `cuda_fwd` of the ops
//! in [`crate::fused`] and of datm-train's row cross-entropy. Inputs are f32, bf16 or f16
//! (the kernels compute in f32 and round once); norm weights, RoPE tables, per-row loss
//! gradients and losses are f32.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchArgs, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{kernel_name, CudaDType, WrapErr};
use candle_core::{bail, builder_arg, WithDType};
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Result, Shape, Storage, Tensor};

use crate::vmath::Activation;

mod ptx {
    include!(concat!(env!("OUT_DIR"), "/ptx.rs"));
}

/// The name candle's device caches the loaded module under.
const MODULE: &str = "datm-fused";

/// Runs `$f::<T>(args)` for the element type of `$dtype` (f32, bf16 or f16).
macro_rules! for_float {
    ($dtype:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::BF16 => $f::<half::bf16>($($arg),*),
            DType::F16 => $f::<half::f16>($($arg),*),
            other => bail!("fused CUDA ops take f32, bf16 or f16 tensors, not {other:?}"),
        }
    };
}

/// Element types the kernels are instantiated for.
trait Float: CudaDType + DeviceRepr + WithDType {}
impl<T: CudaDType + DeviceRepr + WithDType> Float for T {}

/// The contiguous data of `s` as `T`, from its layout's start.
fn view<'a, T: Float>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, T>> {
    let (start, end) = match l.contiguous_offsets() {
        Some(span) => span,
        None => bail!("fused CUDA op: input is not contiguous"),
    };
    Ok(T::as_cuda_slice(s)?.slice(start..end))
}

/// `f` applied to the contiguous f32 data of a CUDA tensor (weights, tables).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(CudaView<'_, f32>) -> Result<R>) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    let Storage::Cuda(s) = &*s else {
        bail!("fused CUDA op: a constant tensor is not on the GPU");
    };
    f(view::<f32>(s, l)?)
}

/// The last dimension of `l` and the number of rows before it.
fn rows_of(l: &Layout) -> Result<(usize, usize)> {
    let n = l.shape().dims().last().copied().unwrap_or(1);
    if n == 0 || n > i32::MAX as usize {
        bail!("fused CUDA op: rows of {n} values");
    }
    Ok((l.shape().elem_count() / n, n))
}

/// One block per row, a warp multiple of threads up to 1024.
fn row_launch(rows: usize, n: usize) -> Result<LaunchConfig> {
    if rows > i32::MAX as usize {
        bail!("fused CUDA op: {rows} rows");
    }
    Ok(LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (n.next_multiple_of(32).clamp(32, 1024) as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// A grid striding over `len` elements.
fn flat_launch(len: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (len.div_ceil(256).clamp(1, 65_536) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A fresh device buffer of `len` `T`s, each written by the kernel launched next.
fn output<T: Float>(dev: &CudaDevice, len: usize) -> Result<CudaSlice<T>> {
    // SAFETY: every element is written by the kernel before anything reads it.
    unsafe { dev.alloc::<T>(len) }
}

/// Launches the kernel `$root` instantiated for `$t` (loaded from the PTX once per device)
/// with `$cfg`: its buffer arguments, then its scalars, in the order of its signature in
/// `cuda/fused.cu`.
macro_rules! launch {
    ($t:ty, $dev:expr, $root:expr, $cfg:expr, [$($buffer:expr),*], [$($scalar:expr),*]) => {{
        let func = $dev.get_or_load_custom_func(&kernel_name::<$t>($root), MODULE, ptx::FUSED)?;
        let mut args = func.builder();
        $(args.arg($buffer);)*
        builder_arg!(args, $($scalar),*);
        go(args, $cfg)
    }};
}

/// Launches a kernel with its arguments pushed.
fn go(mut args: LaunchArgs<'_>, cfg: LaunchConfig) -> Result<()> {
    // SAFETY: `launch!` pushes the arguments of the kernel's signature in cuda/fused.cu, and
    // every buffer holds the elements the launch shape makes the kernel touch.
    unsafe { args.launch(cfg) }.w()?;
    Ok(())
}

/// The activation's code in the kernels.
fn activation_code(act: Activation) -> i32 {
    match act {
        Activation::Silu => 0,
        Activation::GeluTanh => 1,
    }
}

/// `x / sqrt(mean(x²) + eps) · w` over the last dimension (`cast`: the normalised row is
/// rounded to x's precision before the weight multiplies it, LLaMA's order).
pub(crate) fn rms_norm(
    x: &CudaStorage,
    lx: &Layout,
    w: &Tensor,
    eps: f32,
    cast: bool,
) -> Result<CudaStorage> {
    fn run<T: Float>(
        x: &CudaStorage,
        lx: &Layout,
        w: &Tensor,
        eps: f32,
        cast: bool,
    ) -> Result<CudaStorage> {
        let (rows, n) = rows_of(lx)?;
        let (dev, xv) = (x.device(), view::<T>(x, lx)?);
        let y = output::<T>(dev, rows * n)?;
        with_f32(w, |w| {
            launch!(
                T,
                dev,
                "rms_norm_fwd",
                row_launch(rows, n)?,
                [&xv, &w, &y],
                [n as i32, eps, cast as i32]
            )
        })?;
        Ok(T::wrap_cuda_slice(y, dev.clone()))
    }
    for_float!(x.dtype(), run(x, lx, w, eps, cast))
}

/// The gradient of [`rms_norm`] with respect to `x`, for the gradient `g` of its output.
pub(crate) fn rms_norm_bwd(
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    w: &Tensor,
    eps: f32,
    cast: bool,
) -> Result<CudaStorage> {
    fn run<T: Float>(
        (x, lx): (&CudaStorage, &Layout),
        (g, lg): (&CudaStorage, &Layout),
        w: &Tensor,
        eps: f32,
        cast: bool,
    ) -> Result<CudaStorage> {
        let (rows, n) = rows_of(lx)?;
        let (dev, xv, gv) = (x.device(), view::<T>(x, lx)?, view::<T>(g, lg)?);
        let dx = output::<T>(dev, rows * n)?;
        with_f32(w, |w| {
            launch!(
                T,
                dev,
                "rms_norm_bwd",
                row_launch(rows, n)?,
                [&xv, &gv, &w, &dx],
                [n as i32, eps, cast as i32]
            )
        })?;
        Ok(T::wrap_cuda_slice(dx, dev.clone()))
    }
    for_float!(x.0.dtype(), run(x, g, w, eps, cast))
}

/// `act(gate) · up`, element-wise.
pub(crate) fn gated(
    gate: (&CudaStorage, &Layout),
    up: (&CudaStorage, &Layout),
    act: Activation,
) -> Result<CudaStorage> {
    fn run<T: Float>(
        (g, lg): (&CudaStorage, &Layout),
        (u, lu): (&CudaStorage, &Layout),
        act: Activation,
    ) -> Result<CudaStorage> {
        let len = lg.shape().elem_count();
        let (dev, gv, uv) = (g.device(), view::<T>(g, lg)?, view::<T>(u, lu)?);
        let y = output::<T>(dev, len)?;
        launch!(
            T,
            dev,
            "gated_fwd",
            flat_launch(len),
            [&gv, &uv, &y],
            [len as u64, activation_code(act)]
        )?;
        Ok(T::wrap_cuda_slice(y, dev.clone()))
    }
    for_float!(gate.0.dtype(), run(gate, up, act))
}

/// `(∂gate, ∂up)` of [`gated`] for the output's gradient `d`, concatenated on the last
/// dimension.
pub(crate) fn gated_bwd(
    gate: (&CudaStorage, &Layout),
    up: (&CudaStorage, &Layout),
    d: (&CudaStorage, &Layout),
    act: Activation,
) -> Result<CudaStorage> {
    fn run<T: Float>(
        (g, lg): (&CudaStorage, &Layout),
        (u, lu): (&CudaStorage, &Layout),
        (d, ld): (&CudaStorage, &Layout),
        act: Activation,
    ) -> Result<CudaStorage> {
        let (rows, n) = rows_of(lg)?;
        let len = rows * n;
        let dev = g.device();
        let (gv, uv, dv) = (view::<T>(g, lg)?, view::<T>(u, lu)?, view::<T>(d, ld)?);
        let out = output::<T>(dev, 2 * len)?;
        launch!(
            T,
            dev,
            "gated_bwd",
            flat_launch(len),
            [&gv, &uv, &dv, &out],
            [len as u64, n as i32, activation_code(act)]
        )?;
        Ok(T::wrap_cuda_slice(out, dev.clone()))
    }
    for_float!(gate.0.dtype(), run(gate, up, d, act))
}

/// Rotate-half RoPE of `x` `[rows, heads, q, d]` with f32 half tables `[rows, q, d/2]`;
/// `inverse` rotates by the opposite angle (the backward pass).
pub(crate) fn rope(
    x: &CudaStorage,
    lx: &Layout,
    cos: &Tensor,
    sin: &Tensor,
    inverse: bool,
) -> Result<CudaStorage> {
    fn run<T: Float>(
        x: &CudaStorage,
        lx: &Layout,
        cos: &Tensor,
        sin: &Tensor,
        inverse: bool,
    ) -> Result<CudaStorage> {
        let (rows, heads, q, d) = lx.shape().dims4()?;
        if d % 2 != 0 || cos.elem_count() != rows * q * d / 2 || sin.dims() != cos.dims() {
            bail!("fused-rope: tables do not match [{rows}, {q}, {}]", d / 2);
        }
        let (dev, xv) = (x.device(), view::<T>(x, lx)?);
        let y = output::<T>(dev, lx.shape().elem_count())?;
        let vectors = rows * heads * q;
        let sign: f32 = if inverse { -1.0 } else { 1.0 };
        with_f32(cos, |c| {
            with_f32(sin, |s| {
                launch!(
                    T,
                    dev,
                    "rope",
                    flat_launch(vectors * d / 2),
                    [&xv, &c, &s, &y],
                    [vectors as u64, heads as i32, q as i32, d as i32, sign]
                )
            })
        })?;
        Ok(T::wrap_cuda_slice(y, dev.clone()))
    }
    for_float!(x.dtype(), run(x, lx, cos, sin, inverse))
}

/// Softmax over the last dimension.
pub(crate) fn softmax(x: &CudaStorage, lx: &Layout) -> Result<CudaStorage> {
    fn run<T: Float>(x: &CudaStorage, lx: &Layout) -> Result<CudaStorage> {
        let (rows, n) = rows_of(lx)?;
        let (dev, xv) = (x.device(), view::<T>(x, lx)?);
        let y = output::<T>(dev, rows * n)?;
        launch!(
            T,
            dev,
            "softmax_fwd",
            row_launch(rows, n)?,
            [&xv, &y],
            [n as i32]
        )?;
        Ok(T::wrap_cuda_slice(y, dev.clone()))
    }
    for_float!(x.dtype(), run(x, lx))
}

/// `∂x = y ∘ (∂y − ⟨∂y, y⟩)` per row, from softmax's output `y` and its gradient `d`.
pub(crate) fn softmax_bwd(
    y: (&CudaStorage, &Layout),
    d: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    fn run<T: Float>(
        (y, ly): (&CudaStorage, &Layout),
        (d, ld): (&CudaStorage, &Layout),
    ) -> Result<CudaStorage> {
        let (rows, n) = rows_of(ly)?;
        let (dev, yv, dv) = (y.device(), view::<T>(y, ly)?, view::<T>(d, ld)?);
        let dx = output::<T>(dev, rows * n)?;
        launch!(
            T,
            dev,
            "softmax_bwd",
            row_launch(rows, n)?,
            [&yv, &dv, &dx],
            [n as i32]
        )?;
        Ok(T::wrap_cuda_slice(dx, dev.clone()))
    }
    for_float!(y.0.dtype(), run(y, d))
}

/// The targets on `dev`, one per row of `rows`, checked against the vocabulary `vocab`.
fn targets_on(
    dev: &CudaDevice,
    targets: &[u32],
    rows: usize,
    vocab: usize,
) -> Result<CudaSlice<u32>> {
    if targets.len() != rows {
        bail!("cross-entropy: {} targets for {rows} rows", targets.len());
    }
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        bail!("cross-entropy: target {bad} outside a vocabulary of {vocab}");
    }
    dev.clone_htod(targets)
}

/// Each row's `logsumexp(z) − z[target]` (f32, one per row) for logits `z` `[rows, vocab]`.
pub fn cross_entropy(
    z: &CudaStorage,
    lz: &Layout,
    targets: &[u32],
) -> Result<(CudaStorage, Shape)> {
    fn run<T: Float>(z: &CudaStorage, lz: &Layout, targets: &[u32]) -> Result<CudaStorage> {
        let (rows, vocab) = rows_of(lz)?;
        let (dev, zv) = (z.device(), view::<T>(z, lz)?);
        let t = targets_on(dev, targets, rows, vocab)?;
        let loss = output::<f32>(dev, rows)?;
        launch!(
            T,
            dev,
            "cross_entropy_fwd",
            row_launch(rows, vocab)?,
            [&zv, &t, &loss],
            [vocab as i32]
        )?;
        Ok(f32::wrap_cuda_slice(loss, dev.clone()))
    }
    let rows = rows_of(lz)?.0;
    Ok((
        for_float!(z.dtype(), run(z, lz, targets))?,
        Shape::from(rows),
    ))
}

/// `(softmax(z) − onehot(target)) · g_row` in z's precision: the gradient of
/// [`cross_entropy`] for the per-row loss gradients `g` (f32).
pub fn cross_entropy_bwd(
    z: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    targets: &[u32],
) -> Result<CudaStorage> {
    fn run<T: Float>(
        (z, lz): (&CudaStorage, &Layout),
        (g, lg): (&CudaStorage, &Layout),
        targets: &[u32],
    ) -> Result<CudaStorage> {
        let (rows, vocab) = rows_of(lz)?;
        let (dev, zv, gv) = (z.device(), view::<T>(z, lz)?, view::<f32>(g, lg)?);
        let t = targets_on(dev, targets, rows, vocab)?;
        let dz = output::<T>(dev, rows * vocab)?;
        launch!(
            T,
            dev,
            "cross_entropy_bwd",
            row_launch(rows, vocab)?,
            [&zv, &t, &gv, &dz],
            [vocab as i32]
        )?;
        Ok(T::wrap_cuda_slice(dz, dev.clone()))
    }
    for_float!(z.0.dtype(), run(z, g, targets))
}
