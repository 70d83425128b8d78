//! Vectorised f32 element-wise math for inference on the CPU, written once over
//! [`crate::simd::Vector`] and run on the active kernel path ([`crate::cpu`]): `exp`
//! (Cephes' `expf` polynomial, within 2 ulp of libm) and what decoding builds on it: the
//! log-softmax normaliser of a row of logits, softmax, the gated MLP activations, dot
//! products, `axpy` and top-k; and for encoders, LayerNorm and the erf GELU.

use crate::cpu::{self, Isa};
use crate::simd::{lanes, run, Scalar, Task, Vector};

/// `(max, ln Σ exp(x − max))` of a non-empty row: what `log_softmax` subtracts.
pub fn log_softmax_shift(x: &[f32]) -> (f32, f32) {
    run(cpu::isa(), LogSoftmaxShift { x, max: None })
}

/// [`log_softmax_shift`] of a row whose largest value is known to be `max` (the first of
/// its [`top_k`]): one pass over the row instead of two.
pub fn log_softmax_shift_with_max(x: &[f32], max: f32) -> (f32, f32) {
    run(cpu::isa(), LogSoftmaxShift { x, max: Some(max) })
}

/// `out[i] = exp(x[i] − shift) · scale` over equal-length slices: a row of softmax
/// probabilities scaled by `scale` when `shift` is the row's log-sum-exp.
pub fn scaled_exp(x: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
    assert_eq!(x.len(), out.len());
    run(
        cpu::isa(),
        ScaledExp {
            x: Some(x),
            shift,
            scale,
            out,
        },
    )
}

/// [`scaled_exp`] in place: `x[i] = exp(x[i] − shift) · scale`.
pub fn scaled_exp_in_place(x: &mut [f32], shift: f32, scale: f32) {
    run(
        cpu::isa(),
        ScaledExp {
            x: None,
            shift,
            scale,
            out: x,
        },
    )
}

/// `Σ a[i]·b[i]` over equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    run(cpu::isa(), Dot(a, b))
}

/// `y += alpha · x` over equal-length slices.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    run(cpu::isa(), Axpy(alpha, x, y))
}

/// The `k` largest values with their indices, best first (lower index first on ties).
pub fn top_k(x: &[f32], k: usize) -> Vec<(u32, f32)> {
    run(cpu::isa(), TopK(x, k))
}

/// The gate activation of a gated MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `silu(g) = g · σ(g)` (LLaMA's SwiGLU).
    Silu,
    /// tanh-approximated GELU, `g · σ(2·√(2/π)·(g + 0.044715·g³))` (Gemma's GeGLU).
    GeluTanh,
}

/// `out[i] = act(gate[i]) · up[i]`.
pub fn gated_product(act: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    gated_product_on(cpu::isa(), act, gate, up, out)
}

/// [`gated_product`] on path `isa`.
pub(crate) fn gated_product_on(
    isa: Isa,
    act: Activation,
    gate: &[f32],
    up: &[f32],
    out: &mut [f32],
) {
    assert!(gate.len() == up.len() && up.len() == out.len());
    run(isa, Gated { act, gate, up, out })
}

/// LayerNorm of one row in place, over `v = x + residual` (or `v = x`):
/// `(v − mean) · (var + eps)^-½ · weight + bias` with the biased variance; `v` is computed
/// and stored first, so `x` ends up normalised either way.
pub fn layer_norm(x: &mut [f32], residual: Option<&[f32]>, weight: &[f32], bias: &[f32], eps: f32) {
    layer_norm_on(cpu::isa(), x, residual, weight, bias, eps)
}

/// [`layer_norm`] on path `isa`.
pub(crate) fn layer_norm_on(
    isa: Isa,
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    assert!(!x.is_empty() && weight.len() == x.len() && bias.len() == x.len());
    assert!(residual.is_none_or(|r| r.len() == x.len()));
    run(
        isa,
        LayerNorm {
            x,
            residual,
            weight,
            bias,
            eps,
        },
    )
}

/// GELU with the exact erf, `x·Φ(x)`, in place.
pub fn gelu_erf(x: &mut [f32]) {
    run(cpu::isa(), GeluErf(x))
}

// ---------------------------------------------------------------- generic kernels
// Each runs with registers `V` (the caller guarantees the CPU runs them) and finishes the
// values that do not fill a register with `Scalar`, so the formulas are the same.

const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;

/// `exp` of each lane: Cody–Waite reduction by ln 2, Cephes' degree-6 polynomial, scaling
/// by `2ⁿ` (as `2^min(n, 127) · 2^(n − min(n, 127))`, both factors normal); 0 below the
/// smallest normal result, saturating above the largest.
#[inline(always)]
pub(crate) unsafe fn exp<V: Vector>(x: V) -> V {
    // SAFETY: the caller guarantees the CPU runs `V`.
    unsafe {
        let x0 = x;
        let x = x.min(V::splat(88.376_26)).max(V::splat(-88.0));
        let n = x.mul(V::splat(std::f32::consts::LOG2_E)).round();
        let r = n.mul_add(V::splat(-0.693_359_4), x);
        let r = n.mul_add(V::splat(2.121_944_4e-4), r);
        let mut p = V::splat(1.987_569_1e-4);
        for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = p.mul_add(r, V::splat(c));
        }
        let y = p.mul(r).mul_add(r, r.add(V::splat(1.0)));
        let n1 = n.min(V::splat(127.0));
        let y = y.mul(n1.pow2()).mul(n.sub(n1).pow2());
        y.zero_where_below(x0, -87.336_55)
    }
}

/// Sum of the lanes, in order.
#[inline(always)]
unsafe fn sum_lanes<V: Vector>(v: V) -> f32 {
    // SAFETY: the caller guarantees the CPU runs `V`.
    let l = unsafe { lanes(v) };
    l[..V::LANES].iter().sum()
}

/// Maximum of the lanes.
#[inline(always)]
unsafe fn max_lanes<V: Vector>(v: V) -> f32 {
    // SAFETY: the caller guarantees the CPU runs `V`.
    let l = unsafe { lanes(v) };
    l[..V::LANES]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// [`dot`] with registers `V`: two accumulator chains, then the tail.
#[inline(always)]
pub(crate) unsafe fn dot_v<V: Vector>(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { dots_v::<V, 1>([a], b)[0] }
}

/// [`dot_v`] of each of `Q` vectors `a` with one vector `b` (all of `b`'s length), each
/// the same bits as alone: `b` is read once for all, and the `2·Q` chains run side by side.
#[inline(always)]
pub(crate) unsafe fn dots_v<V: Vector, const Q: usize>(a: [&[f32]; Q], b: &[f32]) -> [f32; Q] {
    let n = b.len() / V::LANES * V::LANES;
    // SAFETY: the CPU runs `V` (caller); every load lies below `n <= b.len() == a[q].len()`.
    unsafe {
        let mut acc = [[V::splat(0.0); 2]; Q];
        for (c, i) in (0..n).step_by(V::LANES).enumerate() {
            let bv = V::load(b.as_ptr().add(i));
            for (sums, a) in acc.iter_mut().zip(&a) {
                sums[c % 2] = V::load(a.as_ptr().add(i)).mul_add(bv, sums[c % 2]);
            }
        }
        // Loops, not closures: a closure would not run on `V`'s CPU features.
        let mut dots = [0f32; Q];
        for ((dot, sums), a) in dots.iter_mut().zip(acc).zip(a) {
            let tail: f32 = a[n..].iter().zip(&b[n..]).map(|(x, y)| x * y).sum();
            *dot = sum_lanes(sums[0].add(sums[1])) + tail;
        }
        dots
    }
}

/// [`axpy`] with registers `V`.
#[inline(always)]
pub(crate) unsafe fn axpy_v<V: Vector>(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len() / V::LANES * V::LANES;
    // SAFETY: the CPU runs `V` (caller); every access lies below `n <= x.len() == y.len()`.
    unsafe {
        let a = V::splat(alpha);
        for i in (0..n).step_by(V::LANES) {
            let yp = y.as_mut_ptr().add(i);
            a.mul_add(V::load(x.as_ptr().add(i)), V::load(yp)).store(yp);
        }
    }
    for (y, x) in y[n..].iter_mut().zip(&x[n..]) {
        *y = alpha.mul_add(*x, *y);
    }
}

/// `outs[q] += Σ_j weights[j][q] · values[j]` for `Q` outputs over the same values (each of
/// the outputs' length): each output the bits of [`axpy_v`] by one value after the other.
/// [`VALUES_PER_PASS`] values at a time, block of lanes by block of lanes with the sums in
/// registers, each value read once for all the outputs.
#[inline(always)]
pub(crate) unsafe fn weighted_sums_v<V: Vector, const Q: usize>(
    weights: &[[f32; Q]],
    values: &[&[f32]],
    mut outs: [&mut [f32]; Q],
) {
    let d = outs.first().map_or(0, |o| o.len());
    let n = d / V::LANES * V::LANES;
    for (weights, values) in weights
        .chunks(VALUES_PER_PASS)
        .zip(values.chunks(VALUES_PER_PASS))
    {
        // SAFETY: the CPU runs `V` (caller); every access lies below `n <= d`, the length
        // of each output and value.
        unsafe {
            for i in (0..n).step_by(V::LANES) {
                let mut acc = [V::splat(0.0); Q];
                for (a, o) in acc.iter_mut().zip(&outs) {
                    *a = V::load(o.as_ptr().add(i));
                }
                for (w, v) in weights.iter().zip(values) {
                    let vb = V::load(v.as_ptr().add(i));
                    for (a, &w) in acc.iter_mut().zip(w) {
                        *a = V::splat(w).mul_add(vb, *a);
                    }
                }
                for (a, o) in acc.into_iter().zip(outs.iter_mut()) {
                    a.store(o.as_mut_ptr().add(i));
                }
            }
        }
    }
    for (q, o) in outs.into_iter().enumerate() {
        for (w, v) in weights.iter().zip(values) {
            for (y, x) in o[n..].iter_mut().zip(&v[n..]) {
                *y = w[q].mul_add(*x, *y);
            }
        }
    }
}

/// Values per pass of [`weighted_sums_v`]: read across, lane block by lane block, they stay
/// in the first-level cache (8 KiB of Gemma-3's 256-value heads); all the values of a long
/// span at once were read from the next level at every block, slower than one value after
/// the other.
const VALUES_PER_PASS: usize = 8;

/// Softmax of a non-empty row, in place, with registers `V`.
#[inline(always)]
pub(crate) unsafe fn softmax_v<V: Vector>(row: &mut [f32]) {
    // SAFETY: the CPU runs `V` (caller); `row` is read and written in place.
    let sum = unsafe {
        let max = max_v::<V>(row);
        exp_sum_v::<V>(row.as_mut_ptr(), row.len(), max, true)
    };
    for s in row.iter_mut() {
        *s /= sum;
    }
}

/// The largest value of a non-empty row.
#[inline(always)]
unsafe fn max_v<V: Vector>(x: &[f32]) -> f32 {
    let n = x.len() / V::LANES * V::LANES;
    // SAFETY: the CPU runs `V` (caller); loads lie below `n <= x.len()`.
    let head = unsafe {
        let mut vmax = V::splat(f32::NEG_INFINITY);
        for i in (0..n).step_by(V::LANES) {
            vmax = vmax.max(V::load(x.as_ptr().add(i)));
        }
        max_lanes(vmax)
    };
    x[n..].iter().copied().fold(head, f32::max)
}

/// `Σ exp(x[i] − max)` over `len` values at `x`, storing each term back at `x` if `store`.
///
/// # Safety
/// The CPU runs `V`; `x` is valid for `len` reads (and writes if `store`).
#[inline(always)]
unsafe fn exp_sum_v<V: Vector>(x: *mut f32, len: usize, max: f32, store: bool) -> f32 {
    let n = len / V::LANES * V::LANES;
    // SAFETY: the caller's contract; accesses lie below `len`.
    unsafe {
        let (m, mut acc) = (V::splat(max), V::splat(0.0));
        for i in (0..n).step_by(V::LANES) {
            let e = exp(V::load(x.add(i)).sub(m));
            if store {
                e.store(x.add(i));
            }
            acc = acc.add(e);
        }
        let mut sum = sum_lanes(acc);
        for i in n..len {
            let e = exp(Scalar::splat(*x.add(i) - max));
            if store {
                e.store(x.add(i));
            }
            sum += lanes(e)[0];
        }
        sum
    }
}

/// `act(g) · u` of each lane.
#[inline(always)]
unsafe fn gated_lanes<V: Vector>(act: Activation, g: V, u: V) -> V {
    // SAFETY: the caller guarantees the CPU runs `V`.
    unsafe {
        let s = match act {
            Activation::Silu => g,
            Activation::GeluTanh => {
                let inner = V::splat(0.044_715).mul_add(g.mul(g).mul(g), g);
                V::splat(2.0 * SQRT_TWO_OVER_PI).mul(inner)
            }
        };
        let e = exp(V::splat(0.0).sub(s));
        g.div(V::splat(1.0).add(e)).mul(u)
    }
}

/// `x·Φ(x)` of each lane, as `max(x, 0) − ½·|x|·erfc(|x|/√2)` (both terms exact in sign,
/// so negative inputs suffer no cancellation), with erfc from the Chebyshev fit of
/// Numerical Recipes (§6.2, relative error below 1.2e-7 for every argument ≥ 0).
#[inline(always)]
unsafe fn gelu_erf_lanes<V: Vector>(x: V) -> V {
    // SAFETY: the caller guarantees the CPU runs `V`.
    unsafe {
        let zero = V::splat(0.0);
        let a = x.max(zero.sub(x));
        let z = a.mul(V::splat(std::f32::consts::FRAC_1_SQRT_2));
        let t = V::splat(1.0).div(V::splat(0.5).mul_add(z, V::splat(1.0)));
        let mut p = V::splat(0.170_872_77);
        for c in [
            -0.822_152_23,
            1.488_515_9,
            -1.135_204,
            0.278_868_07,
            -0.186_288_06,
            0.096_784_18,
            0.374_091_96,
            1.000_023_7,
            -1.265_512_2,
        ] {
            p = p.mul_add(t, V::splat(c));
        }
        let erfc = t.mul(exp(zero.sub(z).mul_add(z, p)));
        V::splat(-0.5).mul(a).mul_add(erfc, x.max(zero))
    }
}

/// Sum of `x[i]` (with `store`, of `x[i] + r[i]`, stored back at `x[i]`) over `len` values.
///
/// # Safety
/// The CPU runs `V`; `x` is valid for `len` reads and writes, `r` (if `store`) for reads.
#[inline(always)]
unsafe fn add_sum_v<V: Vector>(x: *mut f32, r: *const f32, len: usize, store: bool) -> f32 {
    let n = len / V::LANES * V::LANES;
    // SAFETY: the caller's contract; accesses lie below `len`.
    unsafe {
        let mut acc = [V::splat(0.0); 2];
        for (c, i) in (0..n).step_by(V::LANES).enumerate() {
            let mut v = V::load(x.add(i));
            if store {
                v = v.add(V::load(r.add(i)));
                v.store(x.add(i));
            }
            acc[c % 2] = acc[c % 2].add(v);
        }
        let mut sum = sum_lanes(acc[0].add(acc[1]));
        for i in n..len {
            if store {
                *x.add(i) += *r.add(i);
            }
            sum += *x.add(i);
        }
        sum
    }
}

/// `Σ (x[i] − mean)²` over a row.
#[inline(always)]
unsafe fn centred_squares_v<V: Vector>(x: &[f32], mean: f32) -> f32 {
    let n = x.len() / V::LANES * V::LANES;
    // SAFETY: the CPU runs `V` (caller); loads lie below `n <= x.len()`.
    unsafe {
        let (m, mut acc) = (V::splat(mean), [V::splat(0.0); 2]);
        for (c, i) in (0..n).step_by(V::LANES).enumerate() {
            let d = V::load(x.as_ptr().add(i)).sub(m);
            acc[c % 2] = d.mul_add(d, acc[c % 2]);
        }
        let tail: f32 = x[n..].iter().map(|v| (v - mean) * (v - mean)).sum();
        sum_lanes(acc[0].add(acc[1])) + tail
    }
}

/// `x ← (x − mean) · rstd · w + b` over `len` values at `x`.
///
/// # Safety
/// The CPU runs `W`; the pointers are valid for `len` values.
#[inline(always)]
unsafe fn normalise<W: Vector>(
    x: *mut f32,
    w: *const f32,
    b: *const f32,
    len: usize,
    mean: f32,
    rstd: f32,
) {
    // SAFETY: the caller's contract; accesses lie below `len`.
    unsafe {
        let (m, r) = (W::splat(mean), W::splat(rstd));
        for i in (0..len / W::LANES * W::LANES).step_by(W::LANES) {
            let v = W::load(x.add(i)).sub(m).mul(r);
            v.mul_add(W::load(w.add(i)), W::load(b.add(i)))
                .store(x.add(i));
        }
    }
}

// ---------------------------------------------------------------- tasks

struct LayerNorm<'a> {
    x: &'a mut [f32],
    residual: Option<&'a [f32]>,
    weight: &'a [f32],
    bias: &'a [f32],
    eps: f32,
}

impl Task for LayerNorm<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let len = self.x.len();
        let x = self.x.as_mut_ptr();
        let (r, store) = match self.residual {
            Some(r) => (r.as_ptr(), true),
            None => (std::ptr::null(), false),
        };
        // SAFETY: the CPU runs `V` (caller); every slice holds `len` values (checked by
        // `layer_norm_on`).
        unsafe {
            let mean = add_sum_v::<V>(x, r, len, store) / len as f32;
            let var = centred_squares_v::<V>(self.x, mean) / len as f32;
            let rstd = 1.0 / (var + self.eps).sqrt();
            let (w, b) = (self.weight.as_ptr(), self.bias.as_ptr());
            normalise::<V>(x, w, b, len, mean, rstd);
            let n = len / V::LANES * V::LANES;
            normalise::<Scalar>(x.add(n), w.add(n), b.add(n), len - n, mean, rstd);
        }
    }
}

struct GeluErf<'a>(&'a mut [f32]);

impl Task for GeluErf<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let len = self.0.len();
        let n = len / V::LANES * V::LANES;
        let x = self.0.as_mut_ptr();
        // SAFETY: the CPU runs `V` (caller); accesses lie below `len`.
        unsafe {
            for i in (0..n).step_by(V::LANES) {
                gelu_erf_lanes(V::load(x.add(i))).store(x.add(i));
            }
            for i in n..len {
                gelu_erf_lanes(Scalar::load(x.add(i))).store(x.add(i));
            }
        }
    }
}

struct LogSoftmaxShift<'a> {
    x: &'a [f32],
    /// The row's largest value, if known.
    max: Option<f32>,
}

impl Task for LogSoftmaxShift<'_> {
    type Out = (f32, f32);
    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> (f32, f32) {
        let x = self.x;
        // SAFETY: the CPU runs `V` (caller); the row is only read (`store` false).
        unsafe {
            // A match, not `unwrap_or_else`: a closure would not run on `V`'s CPU features.
            let max = match self.max {
                Some(max) => max,
                None => max_v::<V>(x),
            };
            let sum = exp_sum_v::<V>(x.as_ptr().cast_mut(), x.len(), max, false);
            (max, sum.ln())
        }
    }
}

struct Dot<'a>(&'a [f32], &'a [f32]);

impl Task for Dot<'_> {
    type Out = f32;
    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> f32 {
        // SAFETY: the caller guarantees the CPU runs `V`.
        unsafe { dot_v::<V>(self.0, self.1) }
    }
}

struct Axpy<'a>(f32, &'a [f32], &'a mut [f32]);

impl Task for Axpy<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        // SAFETY: the caller guarantees the CPU runs `V`.
        unsafe { axpy_v::<V>(self.0, self.1, self.2) }
    }
}

struct Gated<'a> {
    act: Activation,
    gate: &'a [f32],
    up: &'a [f32],
    out: &'a mut [f32],
}

impl Task for Gated<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let len = self.out.len();
        let n = len / V::LANES * V::LANES;
        let (g, u, o) = (self.gate.as_ptr(), self.up.as_ptr(), self.out.as_mut_ptr());
        // SAFETY: the CPU runs `V` (caller); the three slices hold `len` values each.
        unsafe {
            for i in (0..n).step_by(V::LANES) {
                gated_lanes::<V>(self.act, V::load(g.add(i)), V::load(u.add(i))).store(o.add(i));
            }
            for i in n..len {
                let v =
                    gated_lanes::<Scalar>(self.act, Scalar::load(g.add(i)), Scalar::load(u.add(i)));
                v.store(o.add(i));
            }
        }
    }
}

/// `out = exp(x − shift) · scale`, reading `out` itself where `x` is `None`.
struct ScaledExp<'a> {
    x: Option<&'a [f32]>,
    shift: f32,
    scale: f32,
    out: &'a mut [f32],
}

impl Task for ScaledExp<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let len = self.out.len();
        let n = len / V::LANES * V::LANES;
        let o = self.out.as_mut_ptr();
        let x = self.x.map_or(o.cast_const(), <[f32]>::as_ptr);
        // SAFETY: the CPU runs `V` (caller); both slices hold `len` values (the same one in
        // place, where each value is read before it is written).
        unsafe {
            let (shift, scale) = (V::splat(self.shift), V::splat(self.scale));
            for i in (0..n).step_by(V::LANES) {
                exp(V::load(x.add(i)).sub(shift)).mul(scale).store(o.add(i));
            }
            let (shift, scale) = (Scalar::splat(self.shift), Scalar::splat(self.scale));
            for i in n..len {
                exp(Scalar::load(x.add(i)).sub(shift))
                    .mul(scale)
                    .store(o.add(i));
            }
        }
    }
}

struct TopK<'a>(&'a [f32], usize);

impl Task for TopK<'_> {
    type Out = Vec<(u32, f32)>;
    #[inline(always)]
    unsafe fn run<V: Vector>(self) -> Vec<(u32, f32)> {
        let (x, k) = (self.0, self.1);
        let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
        if k == 0 {
            return top;
        }
        let n = x.len() / V::LANES * V::LANES;
        let all = (1u32 << V::LANES) - 1;
        for b in (0..n).step_by(V::LANES) {
            let mut hits = if top.len() < k {
                all
            } else {
                // SAFETY: the CPU runs `V` (caller); the block lies below `n`.
                unsafe { V::load(x.as_ptr().add(b)).above(top[k - 1].1) }
            };
            while hits != 0 {
                let i = b + hits.trailing_zeros() as usize;
                offer(&mut top, k, i, x[i]);
                hits &= hits - 1;
            }
        }
        for (i, &v) in x.iter().enumerate().skip(n) {
            offer(&mut top, k, i, v);
        }
        top
    }
}

/// Inserts `(i, v)` into the best-first list `top` of at most `k` entries if it belongs.
fn offer(top: &mut Vec<(u32, f32)>, k: usize, i: usize, v: f32) {
    if top.len() == k && v <= top[k - 1].1 {
        return;
    }
    let pos = top.partition_point(|&(_, t)| t >= v);
    top.insert(pos, (i as u32, v));
    top.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::available;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// `exp` of every value, with registers and then `Scalar` for the tail.
    struct ExpAll<'a>(&'a [f32]);

    impl Task for ExpAll<'_> {
        type Out = Vec<f32>;
        #[inline(always)]
        unsafe fn run<V: Vector>(self) -> Vec<f32> {
            let mut out = self.0.to_vec();
            let n = out.len() / V::LANES * V::LANES;
            // SAFETY: the CPU runs `V`; accesses lie within `out`.
            unsafe {
                for i in (0..n).step_by(V::LANES) {
                    let p = out.as_mut_ptr().add(i);
                    exp(V::load(p)).store(p);
                }
                for v in &mut out[n..] {
                    exp(Scalar::splat(*v)).store(v);
                }
            }
            out
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_on_every_path() {
        let mut xs = Vec::new();
        let mut v = -87.0f32;
        while v < 88.0 {
            xs.extend((0..16).map(|i| v + i as f32 * 1.37e-3));
            v += 0.0219;
        }
        xs.push(1.5); // a tail value for the wide registers
        let edges = [-1e4f32, f32::NEG_INFINITY, -88.0, 89.0, 0.0, -0.0];
        for isa in available() {
            let got = run(isa, ExpAll(&xs));
            let worst = xs.iter().zip(&got).map(|(x, g)| ulps(*g, x.exp())).max();
            assert!(worst <= Some(2), "{isa}: worst error {worst:?} ulp");
            let got = run(isa, ExpAll(&edges));
            assert_eq!(&got[..3], &[0.0, 0.0, 0.0], "{isa}");
            assert!(got[3].is_finite() && got[3] > 1e38, "{isa}: {}", got[3]);
            assert_eq!(&got[4..], &[1.0, 1.0], "{isa}");
        }
    }

    #[test]
    fn dot_and_axpy_match_scalar_loops_on_every_path() {
        for isa in available() {
            for n in [0, 5, 16, 37, 256] {
                let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
                let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
                let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
                let got = run(isa, Dot(&a, &b)) as f64;
                assert!((got - want).abs() < 1e-5, "{isa}: dot over {n}");
                let mut y = b.clone();
                run(isa, Axpy(0.5, &a, &mut y));
                let want = a.iter().zip(&b).map(|(x, b)| 0.5f32.mul_add(*x, *b));
                assert!(y.iter().copied().eq(want), "{isa}: axpy over {n}");
            }
        }
    }

    #[test]
    fn top_k_agrees_with_a_full_sort_on_every_path() {
        let x: Vec<f32> = (0..1003)
            .map(|i| ((i * 7919 % 257) as f32 / 8.0).floor())
            .collect();
        for isa in available() {
            for k in [0, 1, 3, 10, 40] {
                let mut want: Vec<(u32, f32)> =
                    x.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
                want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                want.truncate(k);
                assert_eq!(run(isa, TopK(&x, k)), want, "{isa}: k = {k}");
            }
        }
    }

    #[test]
    fn log_softmax_shift_matches_a_direct_sum_on_every_path() {
        let x: Vec<f32> = (0..1001)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 3.0)
            .collect();
        let want_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let want: f64 = x
            .iter()
            .map(|&v| ((v - want_max) as f64).exp())
            .sum::<f64>()
            .ln();
        for isa in available() {
            let (max, lse) = run(isa, LogSoftmaxShift { x: &x, max: None });
            assert_eq!(max, want_max, "{isa}");
            assert!((lse as f64 - want).abs() < 1e-6, "{isa}: {lse} vs {want}");
            // Given the top-k's best value, the same bits from one pass.
            let best = run(isa, TopK(&x, 3))[0].1;
            let given = run(
                isa,
                LogSoftmaxShift {
                    x: &x,
                    max: Some(best),
                },
            );
            assert_eq!(given, (max, lse), "{isa}: with the max given");
        }
    }

    #[test]
    fn scaled_exp_is_within_three_ulp_of_libm_on_every_path() {
        let x: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin() * 40.0).collect();
        let (shift, scale) = (3.25f32, -0.75f32);
        for isa in available() {
            let mut out = vec![0f32; x.len()];
            run(
                isa,
                ScaledExp {
                    x: Some(&x),
                    shift,
                    scale,
                    out: &mut out,
                },
            );
            let worst = x
                .iter()
                .zip(&out)
                .map(|(v, g)| ulps(*g, (v - shift).exp() * scale))
                .max();
            assert!(worst <= Some(3), "{isa}: worst error {worst:?} ulp");
            // In place: the same values.
            let mut in_place = x.clone();
            let (shift, scale, x) = (shift, scale, None);
            run(
                isa,
                ScaledExp {
                    x,
                    shift,
                    scale,
                    out: &mut in_place,
                },
            );
            assert_eq!(in_place, out, "{isa} in place");
        }
    }

    #[test]
    fn softmax_sums_to_one_on_every_path() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 9.0).collect();
        let e: Vec<f64> = x.iter().map(|&v| (v as f64).exp()).collect();
        let total: f64 = e.iter().sum();
        for isa in available() {
            struct Softmax<'a>(&'a mut [f32]);
            impl Task for Softmax<'_> {
                type Out = ();
                #[inline(always)]
                unsafe fn run<V: Vector>(self) {
                    // SAFETY: the CPU runs `V`.
                    unsafe { softmax_v::<V>(self.0) }
                }
            }
            let mut y = x.clone();
            run(isa, Softmax(&mut y));
            for (got, want) in y.iter().zip(&e) {
                assert!((*got as f64 - want / total).abs() < 1e-7, "{isa}");
            }
        }
    }

    #[test]
    fn gelu_erf_is_within_a_few_ulp_of_the_exact_formula_on_every_path() {
        let mut x: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 190.0).collect();
        x.extend([-30.0, -9.5, 40.0, 0.0, -0.0, 1e-30, -1e-30, 3.0e6]);
        let want: Vec<f64> = x
            .iter()
            .map(|&v| {
                let v = v as f64;
                0.5 * v * libm::erfc(-v / std::f64::consts::SQRT_2)
            })
            .collect();
        for isa in available() {
            let mut y = x.clone();
            run(isa, GeluErf(&mut y));
            for ((v, got), want) in x.iter().zip(&y).zip(&want) {
                // Relative to the value, or (in the far negative tail, where exp(−x²/2)
                // amplifies the rounding of x²) tiny next to the input.
                let err = (*got as f64 - want).abs();
                assert!(
                    err <= 5e-7 * want.abs() + 1e-9 * v.abs() as f64,
                    "{isa} gelu({v}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn layer_norm_matches_the_formula_on_every_path() {
        for len in [37, 1024] {
            let x: Vec<f32> = (0..len)
                .map(|i| (i as f32 * 0.37).sin() * 3.0 + 0.5)
                .collect();
            let r: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let w: Vec<f32> = (0..len).map(|i| 1.0 + i as f32 / 100.0).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 7) as f32 / 10.0).collect();
            for residual in [None, Some(&r[..])] {
                let v: Vec<f64> = (0..len)
                    .map(|i| x[i] as f64 + residual.map_or(0.0, |r| r[i] as f64))
                    .collect();
                let mean = v.iter().sum::<f64>() / len as f64;
                let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / len as f64;
                for isa in available() {
                    let mut y = x.clone();
                    layer_norm_on(isa, &mut y, residual, &w, &b, 1e-5);
                    for i in 0..len {
                        let want = (v[i] - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
                        assert!(
                            (y[i] as f64 - want).abs() < 5e-7 * want.abs() + 1e-6,
                            "{isa} len {len} {i}: {} vs {want}",
                            y[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gated_products_match_the_textbook_formulas_on_every_path() {
        let g: Vec<f32> = (0..101).map(|i| (i as f32 - 50.0) / 7.0).collect();
        let u: Vec<f32> = (0..101).map(|i| 1.0 + i as f32 / 100.0).collect();
        let mut out = vec![0f32; 101];
        for isa in available() {
            for act in [Activation::Silu, Activation::GeluTanh] {
                gated_product_on(isa, act, &g, &u, &mut out);
                for i in 0..g.len() {
                    let x = g[i] as f64;
                    let a = match act {
                        Activation::Silu => x / (1.0 + (-x).exp()),
                        Activation::GeluTanh => {
                            let t = (0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)).tanh();
                            0.5 * x * (1.0 + t)
                        }
                    };
                    let want = a * u[i] as f64;
                    assert!(
                        (out[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1e-3),
                        "{isa} {act:?} {x}: {} vs {want}",
                        out[i]
                    );
                }
            }
        }
    }
}
