//! Inference matmul kernels for x86-64 CPUs with AVX-512: `x · wᵀ` with the weight packed
//! once, at load time, into the layout the kernel streams.
//!
//! Decoding with beams multiplies a few dozen rows (prompts × beams) by every weight matrix
//! of the model at each step, the Gemma-3 LM head alone being 262 144 × 640. candle's CPU
//! matmuls re-pack the weight at every call and reach well under half of this CPU's FMA peak
//! on such shapes. [`PackedMatrix`] stores the weight in panels of [`PANEL`] output columns,
//! input-feature-major, so that the kernel keeps a tile of up to [`MR`] input rows ×
//! [`PANEL`] columns in 24 accumulator registers, loads each weight vector once per tile and
//! takes the input values as broadcast memory operands.
//!
//! Two precisions: [`Precision::F32`] (exact f32 products, one FMA chain per output over the
//! input features in order) for `--dtype f32` inference, and [`Precision::Bf16`] (weights and
//! inputs rounded to bf16, products summed in f32 pairwise by `vdpbf16ps`) for the default
//! weights of quantized models. Inference only: there is no backward pass.

use anyhow::{ensure, Result};
use rayon::prelude::*;

/// Output columns per packed panel (four 16-lane vectors).
pub const PANEL: usize = 64;
/// Input rows per register tile.
pub const MR: usize = 6;

/// Arithmetic of a packed matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and inputs, f32 FMAs.
    F32,
    /// bf16 weights and inputs, f32 accumulation (`vdpbf16ps`).
    Bf16,
}

#[derive(Debug, Clone)]
enum Panels {
    /// `[panel][k][PANEL]`.
    F32(Vec<f32>),
    /// `[panel][k / 2][PANEL][2]`: each 32-bit lane holds two consecutive input features.
    Bf16(Vec<u16>),
}

/// A `[n, k]` weight packed for [`PackedMatrix::matmul_t`].
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    n: usize,
    k: usize,
    panels: Panels,
}

/// Whether this CPU can run the kernels of that precision.
pub fn supported(precision: Precision) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && (precision == Precision::F32 || std::is_x86_feature_detected!("avx512bf16"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = precision;
        false
    }
}

fn to_bf16(v: f32) -> u16 {
    half::bf16::from_f32(v).to_bits()
}

impl PackedMatrix {
    /// Packs a row-major `[n, k]` f32 weight; bf16 needs an even `k`.
    pub fn pack(w: &[f32], n: usize, k: usize, precision: Precision) -> Result<Self> {
        ensure!(
            w.len() == n * k,
            "weight has {} values, expected {n}×{k}",
            w.len()
        );
        ensure!(n > 0 && k > 0, "cannot pack an empty {n}×{k} weight");
        let panels = match precision {
            Precision::F32 => Panels::F32(pack_panels(w, n, k, precision, |v| v)),
            Precision::Bf16 => {
                ensure!(
                    k.is_multiple_of(2),
                    "the bf16 kernel needs an even input size, got {k}"
                );
                Panels::Bf16(pack_panels(w, n, k, precision, to_bf16))
            }
        };
        Ok(PackedMatrix { n, k, panels })
    }

    /// Output features (rows of the weight).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The arithmetic this matrix was packed for.
    pub fn precision(&self) -> Precision {
        match self.panels {
            Panels::F32(_) => Precision::F32,
            Panels::Bf16(_) => Precision::Bf16,
        }
    }

    /// The weight back as a row-major `[n, k]` f32 tensor (bf16 values widened exactly).
    pub fn to_tensor(&self) -> Result<candle_core::Tensor> {
        let (n, k) = (self.n, self.k);
        let v: Vec<f32> = (0..n * k)
            .into_par_iter()
            .map(|i| {
                let (col, kk) = (i / k, i % k);
                let at =
                    (col / PANEL) * PANEL * k + packed_index(self.precision(), col % PANEL, kk);
                match &self.panels {
                    Panels::F32(d) => d[at],
                    Panels::Bf16(d) => half::bf16::from_bits(d[at]).to_f32(),
                }
            })
            .collect();
        Ok(candle_core::Tensor::from_vec(
            v,
            (n, k),
            &candle_core::Device::Cpu,
        )?)
    }

    /// `x · wᵀ` for row-major `x` `[m, k]`; returns row-major `[m, n]`.
    pub fn matmul_t(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let mut out = vec![0f32; m * self.n];
        self.matmul_t_into(x, m, &mut out)?;
        Ok(out)
    }

    /// Like [`PackedMatrix::matmul_t`], writing into `out` (`[m, n]`, overwritten): a
    /// buffer reused across calls spares the kernel the page faults of a fresh one.
    pub fn matmul_t_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        ensure!(
            supported(self.precision()),
            "this CPU lacks the AVX-512 instructions of the packed kernels"
        );
        ensure!(
            x.len() == m * self.k,
            "input has {} values, expected {m}×{}",
            x.len(),
            self.k
        );
        ensure!(
            out.len() == m * self.n,
            "output has {} values, expected {m}×{}",
            out.len(),
            self.n
        );
        if m == 0 {
            return Ok(());
        }
        let out_ptr = SendPtr(out.as_mut_ptr());
        let panels = self.n.div_ceil(PANEL);
        // On candle's worker pool, like the element-wise ops between the matmuls: one warm
        // pool instead of two competing for the cores.
        let pool = candle_core::utils::barrier_pool();
        match &self.panels {
            Panels::F32(data) => pool.execute_chunked(panels, |range| {
                for p in range {
                    // SAFETY: the CPU features were checked above; panel `p` is handed to
                    // one call only and writes only its own output columns.
                    unsafe { self.panel::<F32Arith>(data, x, m, p, out_ptr) }
                }
            }),
            Panels::Bf16(data) => {
                let xb = pairs_bf16(x);
                pool.execute_chunked(panels, |range| {
                    for p in range {
                        // SAFETY: as above.
                        unsafe { self.panel::<Bf16Arith>(data, &xb, m, p, out_ptr) }
                    }
                })
            }
        }
        Ok(())
    }

    /// Output columns of panel `p` that exist in the weight.
    fn panel_cols(&self, p: usize) -> usize {
        (self.n - p * PANEL).min(PANEL)
    }

    /// Panel `p` times all `m` rows, in blocks of [`KC`] steps along the input features so
    /// that the block of weights stays in L1 while every row tile passes over it.
    #[cfg(target_arch = "x86_64")]
    unsafe fn panel<A: Arith>(&self, data: &[A::W], x: &[A::X], m: usize, p: usize, out: SendPtr) {
        let steps = self.k / A::FEATURES_PER_STEP;
        let w = data.as_ptr().add(p * steps * A::W_PER_STEP);
        let cols = self.panel_cols(p);
        let has_next = (p + 1) * PANEL < self.n;
        for kb in (0..steps).step_by(KC) {
            for i0 in (0..m).step_by(MR) {
                // Row tiles 1 to 4 read this block from cache; each fetches one of the four
                // cache lines per step of the next panel's block, spreading its DRAM traffic.
                let pass = i0 / MR;
                let next = if has_next && (1..=4).contains(&pass) {
                    (w.add((steps + kb) * A::W_PER_STEP) as *const i8).add(64 * (pass - 1))
                } else {
                    std::ptr::null()
                };
                let t = Tile {
                    x: x.as_ptr().add(i0 * steps + kb),
                    ldx: steps,
                    steps: KC.min(steps - kb),
                    w: w.add(kb * A::W_PER_STEP),
                    out: out.0.add(i0 * self.n + p * PANEL),
                    ldo: self.n,
                    cols,
                    accumulate: kb > 0,
                    next,
                };
                match (m - i0).min(MR) {
                    6 => A::tile::<6>(&t),
                    5 => A::tile::<5>(&t),
                    4 => A::tile::<4>(&t),
                    3 => A::tile::<3>(&t),
                    2 => A::tile::<2>(&t),
                    _ => A::tile::<1>(&t),
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn panel<A: Arith>(&self, _: &[A::W], _: &[A::X], _: usize, _: usize, _: SendPtr) {
        unreachable!("supported() is false off x86-64")
    }
}

/// Steps along the input features per cache block: 64 KiB of weights in either precision,
/// which stay in L2 while the row tiles pass (large models have panels of megabytes).
const KC: usize = 256;

/// One register tile's work: `R` rows of `x` times a block of one panel.
struct Tile<X, W> {
    /// First input value of the block, row 0.
    x: *const X,
    /// Input values per row.
    ldx: usize,
    /// Steps in this block.
    steps: usize,
    /// First weight value of the block.
    w: *const W,
    /// First output value (row 0, panel column 0).
    out: *mut f32,
    /// Output values per row.
    ldo: usize,
    /// Panel columns that exist in the output.
    cols: usize,
    /// Add to the partial sums already in `out` (later blocks) instead of starting at 0.
    accumulate: bool,
    /// A cache line of the next panel's block to prefetch at each step (null: none).
    next: *const i8,
}

/// The arithmetic of a packed precision: input and weight element types and the tile kernel.
trait Arith {
    /// One input step as the kernel broadcasts it.
    type X;
    /// A packed weight element.
    type W;
    /// Input features per step.
    const FEATURES_PER_STEP: usize;
    /// Packed weight elements per step and panel.
    const W_PER_STEP: usize;
    /// Runs one tile of `R` rows.
    unsafe fn tile<const R: usize>(t: &Tile<Self::X, Self::W>);
}

struct F32Arith;
struct Bf16Arith;

/// Where weight column `c` of a panel (`0..PANEL`), input feature `kk`, sits in the panel.
fn packed_index(precision: Precision, c: usize, kk: usize) -> usize {
    match precision {
        Precision::F32 => kk * PANEL + c,
        Precision::Bf16 => ((kk / 2) * PANEL + c) * 2 + kk % 2,
    }
}

/// The panels of a row-major `[n, k]` weight, values converted by `conv`, missing columns of
/// the last panel zero.
fn pack_panels<T: Copy + Default + Send>(
    w: &[f32],
    n: usize,
    k: usize,
    precision: Precision,
    conv: impl Fn(f32) -> T + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); n.div_ceil(PANEL) * PANEL * k];
    advise_huge_pages(&mut out);
    out.par_chunks_mut(PANEL * k)
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..PANEL.min(n - p * PANEL) {
                for (kk, &v) in w[(p * PANEL + c) * k..][..k].iter().enumerate() {
                    panel[packed_index(precision, c, kk)] = conv(v);
                }
            }
        });
    out
}

/// Asks the kernel to back a large buffer (not yet written) with transparent huge pages:
/// the kernels stream the weights of a whole model at every decoding step, and 4 KiB pages
/// would cost a TLB miss every 4 KiB. A hint only; nothing changes where it is refused.
fn advise_huge_pages<T>(buf: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buf);
        let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if to > from {
            // SAFETY: the range lies inside `buf`; MADV_HUGEPAGE does not change contents.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Rounds `x` (even length) to bf16, nearest-even, and packs consecutive pairs into 32-bit
/// words (first of the pair in the low half). Only called once the CPU is known to have
/// AVX512-BF16.
fn pairs_bf16(x: &[f32]) -> Vec<u32> {
    let mut out = vec![0u32; x.len() / 2];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: callers checked the CPU features; `out` holds half as many words as `x` floats.
    let done = unsafe { pairs_bf16_avx512(x, &mut out) };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (o, p) in out[done / 2..].iter_mut().zip(x[done..].chunks_exact(2)) {
        *o = u32::from(to_bf16(p[0])) | (u32::from(to_bf16(p[1])) << 16);
    }
    out
}

/// The vectorised part of [`pairs_bf16`]; returns how many input values it converted.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs_bf16_avx512(x: &[f32], out: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let n = x.len() / 32 * 32;
    for i in (0..n).step_by(32) {
        let lo = _mm512_loadu_ps(x.as_ptr().add(i));
        let hi = _mm512_loadu_ps(x.as_ptr().add(i + 16));
        // `b` (second operand) fills the low half of the result.
        let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(out.as_mut_ptr().add(i / 2) as *mut _, v);
    }
    n
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes from the pool's workers (see `matmul_t`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// The tile's accumulators: zero, or the partial sums already in the output.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn start_tile<const R: usize, X, W>(t: &Tile<X, W>) -> [[std::arch::x86_64::__m512; 4]; R] {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    if t.accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, a) in row.iter_mut().enumerate() {
                if let Some(mask) = lanes(t.cols, j) {
                    *a = _mm512_maskz_loadu_ps(mask, t.out.add(i * t.ldo + 16 * j));
                }
            }
        }
    }
    acc
}

/// Stores the tile's accumulators into the first `cols` columns of its output rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn finish_tile<const R: usize, X, W>(
    t: &Tile<X, W>,
    acc: &[[std::arch::x86_64::__m512; 4]; R],
) {
    use std::arch::x86_64::*;
    for (i, row) in acc.iter().enumerate() {
        for (j, a) in row.iter().enumerate() {
            if let Some(mask) = lanes(t.cols, j) {
                _mm512_mask_storeu_ps(t.out.add(i * t.ldo + 16 * j), mask, *a);
            }
        }
    }
}

/// The lanes of accumulator `j` (columns `16j..16j+16`) that fall within `cols`.
fn lanes(cols: usize, j: usize) -> Option<u16> {
    let c0 = 16 * j;
    match cols.saturating_sub(c0) {
        0 => None,
        n if n >= 16 => Some(0xffff),
        n => Some((1u16 << n) - 1),
    }
}

// No closures in the kernels: they would not inherit the target features.

#[cfg(target_arch = "x86_64")]
impl Arith for F32Arith {
    type X = f32;
    type W = f32;
    const FEATURES_PER_STEP: usize = 1;
    const W_PER_STEP: usize = PANEL;

    /// One FMA chain per output along the features: `acc += x[i][k] · w[k][col]`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize>(t: &Tile<f32, f32>) {
        use std::arch::x86_64::*;
        let mut acc = start_tile::<R, _, _>(t);
        for kk in 0..t.steps {
            let wk = t.w.add(kk * PANEL);
            let wv = [
                _mm512_loadu_ps(wk),
                _mm512_loadu_ps(wk.add(16)),
                _mm512_loadu_ps(wk.add(32)),
                _mm512_loadu_ps(wk.add(48)),
            ];
            if !t.next.is_null() {
                _mm_prefetch::<_MM_HINT_T0>(t.next.add(kk * 256));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*t.x.add(i * t.ldx + kk));
                for (a, w) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xb, *w, *a);
                }
            }
        }
        finish_tile::<R, _, _>(t, &acc);
    }
}

#[cfg(target_arch = "x86_64")]
impl Arith for Bf16Arith {
    type X = u32;
    type W = u16;
    const FEATURES_PER_STEP: usize = 2;
    const W_PER_STEP: usize = 2 * PANEL;

    /// `acc += x[i][2p]·w[2p][col] + x[i][2p+1]·w[2p+1][col]` per step `p` (`vdpbf16ps`).
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize>(t: &Tile<u32, u16>) {
        use std::arch::x86_64::*;
        let mut acc = start_tile::<R, _, _>(t);
        for p in 0..t.steps {
            let wk = t.w.add(p * 2 * PANEL) as *const __m512i;
            let wv: [__m512bh; 4] = [
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(wk)),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(wk.add(1))),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(wk.add(2))),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(wk.add(3))),
            ];
            if !t.next.is_null() {
                _mm_prefetch::<_MM_HINT_T0>(t.next.add(p * 256));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xb = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(
                    *t.x.add(i * t.ldx + p) as i32,
                ));
                for (a, w) in row.iter_mut().zip(&wv) {
                    *a = _mm512_dpbf16_ps(*a, xb, *w);
                }
            }
        }
        finish_tile::<R, _, _>(t, &acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, mul: usize, modulo: usize, div: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul % modulo) as f32 - (modulo / 2) as f32) / div)
            .collect()
    }

    /// Every tile height, a ragged last panel and odd sizes, against a plain f64 product of
    /// the values the kernel sees.
    #[test]
    fn matches_reference_on_ragged_shapes() {
        for precision in [Precision::F32, Precision::Bf16] {
            if !supported(precision) {
                eprintln!("skip: no AVX-512 for {precision:?}");
                continue;
            }
            let round = |v: f32| match precision {
                Precision::F32 => v,
                Precision::Bf16 => half::bf16::from_f32(v).to_f32(),
            };
            for (m, n, k) in [(13, 131, 96), (1, 64, 2), (6, 70, 34), (40, 200, 640)] {
                let w = data(n * k, 37, 101, 64.0);
                let x = data(m * k, 53, 89, 32.0);
                let packed = PackedMatrix::pack(&w, n, k, precision).unwrap();
                let y = packed.matmul_t(&x, m).unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|t| round(x[i * k + t]) as f64 * round(w[j * k + t]) as f64)
                            .sum();
                        let got = y[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{precision:?} {m}×{n}×{k} ({i},{j}): {got} vs {want}"
                        );
                    }
                }
                let back = packed.to_tensor().unwrap().flatten_all().unwrap();
                let back = back.to_vec1::<f32>().unwrap();
                assert!(back.iter().zip(&w).all(|(b, &v)| *b == round(v)));
            }
        }
    }

    #[test]
    fn f32_tiles_equal_a_sequential_fma_chain() {
        if !supported(Precision::F32) {
            return;
        }
        let (m, n, k) = (7, 65, 300);
        let w = data(n * k, 29, 97, 7.0);
        let x = data(m * k, 31, 83, 3.0);
        let y = PackedMatrix::pack(&w, n, k, Precision::F32)
            .unwrap()
            .matmul_t(&x, m)
            .unwrap();
        for i in 0..m {
            for j in 0..n {
                let want = (0..k).fold(0f32, |a, t| x[i * k + t].mul_add(w[j * k + t], a));
                assert_eq!(y[i * n + j], want, "({i},{j})");
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(PackedMatrix::pack(&[0.0; 30], 1, 31, Precision::F32).is_err());
        assert!(PackedMatrix::pack(&[0.0; 3], 1, 3, Precision::Bf16).is_err());
        let p = PackedMatrix::pack(&[0.0; 4], 2, 2, Precision::F32).unwrap();
        assert!(p.matmul_t(&[0.0; 3], 2).is_err());
    }
}
