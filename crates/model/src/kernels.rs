//! A bf16 matrix-times-transposed-matrix kernel for x86-64 CPUs with AVX512-BF16
//! (`vdpbf16ps`: 32 bf16 multiply-adds per instruction, f32 accumulation).
//!
//! candle 0.11's CPU matmuls reach ~60–70 GFLOP/s on two cores (f32 `gemm`, Q8_0 `vec_dot`);
//! decoding with beams is dominated by such matmuls (the Gemma-3 LM head alone is
//! 262 144 × 640 per row). [`Bf16Matrix`] keeps a weight as bf16 rows and multiplies blocks
//! of 4 input rows by 4 weight rows in registers, weight blocks staying in cache while every
//! input row passes. Inference only (no backward pass); used for the default (quantized)
//! GGUF weights when the CPU supports it, never for `--dtype` runs or training.

use anyhow::{ensure, Result};
use rayon::prelude::*;

/// Weight rows (output features) per parallel work item.
const BLOCK_N: usize = 64;

/// A `[n, k]` weight stored as bf16, multiplied as `x · wᵀ`.
#[derive(Debug, Clone)]
pub struct Bf16Matrix {
    n: usize,
    k: usize,
    data: Vec<u16>,
}

/// Whether this CPU can run the kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512bf16") && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn to_bf16(v: f32) -> u16 {
    half::bf16::from_f32(v).to_bits()
}

impl Bf16Matrix {
    /// Packs a row-major `[n, k]` f32 weight; `k` must be a multiple of 32.
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Result<Self> {
        ensure!(
            w.len() == n * k,
            "weight has {} values, expected {n}×{k}",
            w.len()
        );
        ensure!(
            k.is_multiple_of(32),
            "bf16 kernel needs the input size to be a multiple of 32, got {k}"
        );
        Ok(Bf16Matrix {
            n,
            k,
            data: w.par_iter().map(|&v| to_bf16(v)).collect(),
        })
    }

    /// The weight back as an f32 `[n, k]` tensor.
    pub fn to_tensor(&self) -> Result<candle_core::Tensor> {
        let v: Vec<f32> = self
            .data
            .iter()
            .map(|&b| half::bf16::from_bits(b).to_f32())
            .collect();
        Ok(candle_core::Tensor::from_vec(
            v,
            (self.n, self.k),
            &candle_core::Device::Cpu,
        )?)
    }

    /// `x · wᵀ` for row-major `x` `[m, k]`; returns row-major `[m, n]`.
    pub fn matmul_t(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        ensure!(supported(), "this CPU has no AVX512-BF16");
        ensure!(
            x.len() == m * self.k,
            "input has {} values, expected {m}×{}",
            x.len(),
            self.k
        );
        let xb: Vec<u16> = x.iter().map(|&v| to_bf16(v)).collect();
        let mut out = vec![0f32; m * self.n];
        let out_ptr = SendPtr(out.as_mut_ptr());
        let blocks = self.n.div_ceil(BLOCK_N);
        (0..blocks).into_par_iter().for_each(|b| {
            let n0 = b * BLOCK_N;
            let n1 = (n0 + BLOCK_N).min(self.n);
            // SAFETY: the CPU feature was checked above; every work item writes only the
            // output columns n0..n1, so no two items write the same element.
            unsafe { self.block(&xb, m, n0, n1, out_ptr) };
        });
        Ok(out)
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn block(&self, xb: &[u16], m: usize, n0: usize, n1: usize, out: SendPtr) {
        let k = self.k;
        for i0 in (0..m).step_by(4) {
            let rows_x: [usize; 4] = std::array::from_fn(|i| (i0 + i).min(m - 1));
            for j0 in (n0..n1).step_by(4) {
                let rows_w: [usize; 4] = std::array::from_fn(|j| (j0 + j).min(n1 - 1));
                let xp = rows_x.map(|r| xb.as_ptr().add(r * k));
                let wp = rows_w.map(|r| self.data.as_ptr().add(r * k));
                let tile = tile_4x4(xp, wp, k);
                for (i, row) in tile.iter().enumerate().take((m - i0).min(4)) {
                    for (j, v) in row.iter().enumerate().take((n1 - j0).min(4)) {
                        *out.0.add((i0 + i) * self.n + j0 + j) = *v;
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn block(&self, _: &[u16], _: usize, _: usize, _: usize, _: SendPtr) {
        unreachable!("supported() is false off x86-64")
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes from rayon workers (see `matmul_t`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Dot products of 4 bf16 rows of `x` with 4 bf16 rows of `w`, each `k` long.
///
/// No closures in here: they would not inherit the target features and would not be inlined.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_4x4(x: [*const u16; 4], w: [*const u16; 4], k: usize) -> [[f32; 4]; 4] {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    let mut acc = [[zero; 4]; 4];
    let mut kk = 0;
    while kk < k {
        let mut xv: [__m512bh; 4] = std::mem::zeroed();
        let mut wv: [__m512bh; 4] = std::mem::zeroed();
        for i in 0..4 {
            xv[i] = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                x[i].add(kk) as *const _
            ));
            wv[i] = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                w[i].add(kk) as *const _
            ));
        }
        for i in 0..4 {
            for j in 0..4 {
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv[j]);
            }
        }
        kk += 32;
    }
    let mut out = [[0f32; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            out[i][j] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f32_reference_on_ragged_shapes() {
        if !supported() {
            eprintln!("skip: no AVX512-BF16 on this CPU");
            return;
        }
        let (m, n, k) = (7, 131, 96);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 32.0)
            .collect();
        let y = Bf16Matrix::from_f32(&w, n, k)
            .unwrap()
            .matmul_t(&x, m)
            .unwrap();
        let r = |v: f32| half::bf16::from_f32(v).to_f32();
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| r(x[i * k + t]) * r(w[j * k + t])).sum();
                let got = y[i * n + j];
                assert!(
                    (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                    "({i},{j}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(Bf16Matrix::from_f32(&[0.0; 30], 1, 30).is_err());
        assert!(Bf16Matrix::from_f32(&[0.0; 64], 1, 32).is_err());
    }
}
