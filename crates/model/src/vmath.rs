//! Vectorised f32 element-wise math for inference on the CPU: an AVX-512 `exp` (Cephes'
//! `expf` polynomial, within 2 ulp of libm) and what decoding builds on it: the log-softmax
//! normaliser of a row of logits and the gated MLP activations. Each function has a scalar
//! path, taken on CPUs without AVX-512.

/// `(max, ln Σ exp(x − max))` of a non-empty row: what `log_softmax` subtracts.
pub fn log_softmax_shift(x: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU feature was checked.
        return unsafe { log_softmax_shift_avx512(x) };
    }
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = x.iter().map(|v| (v - max).exp()).sum();
    (max, sum.ln())
}

/// `Σ a[i]·b[i]` over equal-length slices (16 lanes at a time with AVX-512).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU feature was checked; lengths are equal.
        return unsafe { dot_avx512(a, b) };
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y += alpha · x` over equal-length slices.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU feature was checked; lengths are equal.
        return unsafe { axpy_avx512(alpha, x, y) };
    }
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// The `k` largest values with their indices, best first (lower index first on ties).
pub fn top_k(x: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let offer = |i: usize, v: f32, top: &mut Vec<(u32, f32)>| {
        if top.len() == k && v <= top[k - 1].1 {
            return;
        }
        let pos = top.partition_point(|&(_, t)| t >= v);
        top.insert(pos, (i as u32, v));
        top.truncate(k);
    };
    if k == 0 {
        return top;
    }
    let mut start = 0;
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        for (b, block) in x.chunks_exact(16).enumerate() {
            let bar = if top.len() == k {
                top[k - 1].1
            } else {
                f32::NEG_INFINITY
            };
            // SAFETY: the CPU feature was checked; `block` has 16 values.
            let mut hits = unsafe { above16(block, bar) } | if top.len() < k { 0xffff } else { 0 };
            while hits != 0 {
                let lane = hits.trailing_zeros() as usize;
                offer(b * 16 + lane, block[lane], &mut top);
                hits &= hits - 1;
            }
        }
        start = x.len() / 16 * 16;
    }
    for (i, &v) in x.iter().enumerate().skip(start) {
        offer(i, v, &mut top);
    }
    top
}

/// Lanes of `block` (16 values) that are not `<= bar` (NaN included).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn above16(block: &[f32], bar: f32) -> u32 {
    use std::arch::x86_64::*;
    u32::from(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(
        _mm512_loadu_ps(block.as_ptr()),
        _mm512_set1_ps(bar),
    ))
}

/// The gate activation of a gated MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `silu(g) = g · σ(g)` (LLaMA's SwiGLU).
    Silu,
    /// tanh-approximated GELU, `g · σ(2·√(2/π)·(g + 0.044715·g³))` (Gemma's GeGLU).
    GeluTanh,
}

const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;

/// `out[i] = act(gate[i]) · up[i]`.
pub fn gated_product(act: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU feature was checked; lengths are equal.
        done = unsafe { gated_product_avx512(act, gate, up, out) };
    }
    for i in done..out.len() {
        out[i] = gate[i] * sigmoid_arg_scale(act, gate[i]) * up[i];
    }
}

/// `σ(s)` where `act(g) = g · σ(s)`.
fn sigmoid_arg_scale(act: Activation, g: f32) -> f32 {
    let s = match act {
        Activation::Silu => g,
        Activation::GeluTanh => 2.0 * SQRT_TWO_OVER_PI * (g + 0.044_715 * g * g * g),
    };
    1.0 / (1.0 + (-s).exp())
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// `exp` of 16 lanes: Cody–Waite reduction by ln 2, Cephes' degree-6 polynomial, scaling by
/// `2ⁿ`; 0 below the smallest normal result, saturating above the largest.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let x = _mm512_min_ps(x, _mm512_set1_ps(88.376_26));
    let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.336_55));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let y = _mm512_fmadd_ps(
        _mm512_mul_ps(p, r),
        r,
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    _mm512_maskz_mov_ps(!underflow, _mm512_scalef_ps(y, n))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len() / 16 * 16;
    let mut acc = [_mm512_setzero_ps(); 2];
    for (c, i) in (0..n).step_by(16).enumerate() {
        let p = _mm512_loadu_ps(a.as_ptr().add(i));
        let q = _mm512_loadu_ps(b.as_ptr().add(i));
        acc[c % 2] = _mm512_fmadd_ps(p, q, acc[c % 2]);
    }
    let tail: f32 = a[n..].iter().zip(&b[n..]).map(|(x, y)| x * y).sum();
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy_avx512(alpha: f32, x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = x.len() / 16 * 16;
    let a = _mm512_set1_ps(alpha);
    for i in (0..n).step_by(16) {
        let yp = y.as_mut_ptr().add(i);
        _mm512_storeu_ps(
            yp,
            _mm512_fmadd_ps(a, _mm512_loadu_ps(x.as_ptr().add(i)), _mm512_loadu_ps(yp)),
        );
    }
    for (y, x) in y[n..].iter_mut().zip(&x[n..]) {
        *y += alpha * x;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn log_softmax_shift_avx512(x: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in chunks.clone() {
        vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(c.as_ptr()));
    }
    let max = tail
        .iter()
        .copied()
        .fold(_mm512_reduce_max_ps(vmax), f32::max);
    let m = _mm512_set1_ps(max);
    let mut acc = _mm512_setzero_ps();
    for c in chunks {
        acc = _mm512_add_ps(acc, exp16(_mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), m)));
    }
    let sum = _mm512_reduce_add_ps(acc) + tail.iter().map(|v| (v - max).exp()).sum::<f32>();
    (max, sum.ln())
}

/// The vectorised part of [`gated_product`]; returns how many elements it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gated_product_avx512(
    act: Activation,
    gate: &[f32],
    up: &[f32],
    out: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let n = out.len() / 16 * 16;
    let one = _mm512_set1_ps(1.0);
    for i in (0..n).step_by(16) {
        let g = _mm512_loadu_ps(gate.as_ptr().add(i));
        let s = match act {
            Activation::Silu => g,
            Activation::GeluTanh => {
                let g3 = _mm512_mul_ps(_mm512_mul_ps(g, g), g);
                let inner = _mm512_fmadd_ps(_mm512_set1_ps(0.044_715), g3, g);
                _mm512_mul_ps(_mm512_set1_ps(2.0 * SQRT_TWO_OVER_PI), inner)
            }
        };
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), s));
        let a = _mm512_div_ps(g, _mm512_add_ps(one, e));
        let u = _mm512_loadu_ps(up.as_ptr().add(i));
        _mm512_storeu_ps(out.as_mut_ptr().add(i), _mm512_mul_ps(a, u));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exp_is_within_two_ulp_of_libm() {
        if !avx512() {
            return;
        }
        use std::arch::x86_64::*;
        let mut worst = 0;
        let mut v = -87.0f32;
        while v < 88.0 {
            let xs: [f32; 16] = std::array::from_fn(|i| v + i as f32 * 1.37e-3);
            let mut got = [0f32; 16];
            // SAFETY: feature checked above.
            unsafe { _mm512_storeu_ps(got.as_mut_ptr(), exp16(_mm512_loadu_ps(xs.as_ptr()))) };
            for (x, g) in xs.iter().zip(got) {
                worst = worst.max(ulps(g, x.exp()));
            }
            v += 0.0219;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        let mut got = [1f32; 16];
        let xs = [
            -1e4f32,
            f32::NEG_INFINITY,
            -88.0,
            89.0,
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.0,
            -2.0,
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
        ];
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(got.as_mut_ptr(), exp16(_mm512_loadu_ps(xs.as_ptr()))) };
        assert_eq!(&got[..3], &[0.0, 0.0, 0.0]);
        assert!(got[3].is_finite() && got[3] > 1e38);
        assert_eq!(got[4], 1.0);
    }

    #[test]
    fn dot_and_axpy_match_scalar_loops() {
        for n in [0, 5, 16, 37, 256] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-5, "dot over {n}");
            let mut y = b.clone();
            axpy(0.5, &a, &mut y);
            assert!(y
                .iter()
                .zip(a.iter().zip(&b))
                .all(|(y, (x, b))| *y == 0.5f32.mul_add(*x, *b) || *y == b + 0.5 * x));
        }
    }

    #[test]
    fn top_k_agrees_with_a_full_sort() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919 % 257) as f32 / 8.0).floor())
            .collect();
        for k in [0, 1, 3, 10, 40] {
            let mut want: Vec<(u32, f32)> =
                x.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
            want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            want.truncate(k);
            assert_eq!(top_k(&x, k), want, "k = {k}");
        }
    }

    #[test]
    fn log_softmax_shift_matches_a_direct_sum() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 3.0)
            .collect();
        let (max, lse) = log_softmax_shift(&x);
        let want_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let want: f64 = x
            .iter()
            .map(|&v| ((v - want_max) as f64).exp())
            .sum::<f64>()
            .ln();
        assert_eq!(max, want_max);
        assert!((lse as f64 - want).abs() < 1e-6, "{lse} vs {want}");
    }

    #[test]
    fn gated_products_match_the_textbook_formulas() {
        let g: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 7.0).collect();
        let u: Vec<f32> = (0..100).map(|i| 1.0 + i as f32 / 100.0).collect();
        let mut out = vec![0f32; 100];
        for act in [Activation::Silu, Activation::GeluTanh] {
            gated_product(act, &g, &u, &mut out);
            for i in 0..100 {
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
                    "{act:?} {x}: {} vs {want}",
                    out[i]
                );
            }
        }
    }
}
