//! Products by int8 weights on AVX512-VNNI (`vpdpbusd`, [`crate::kernels::Precision::Int8`]):
//! a GGUF weight of int8 blocks with groups of [`GROUP`] inputs ([`IntBlocks`]) kept as its
//! values, times the inputs rounded to int8 per row and group (scale: the group's largest
//! magnitude / 127, llama.cpp's Q8 inputs). Each group's sums are exact in int32, then
//! scaled into f32: an output is `Σ_groups sx·(s·Σ xq·v − o·Σ xq)` for the weight's values
//! `v`, scale `s` and offset `o` (weight `v·s − o`, as [`IntBlocks`] reads it) and the inputs'
//! int8 values `xq` and scale `sx`. `vpdpbusd` does twice the multiplies of `vdpbf16ps`
//! per instruction; the price is the inputs' rounding to 8 bits per group, where bf16 keeps
//! 8 bits per value.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
#[cfg(target_arch = "x86_64")]
use std::ops::Range;

use anyhow::{ensure, Result};

use super::Dest;
use crate::aligned::Aligned;
use crate::blocks::IntBlocks;
#[cfg(target_arch = "x86_64")]
use crate::vmath;

/// Output columns per panel: four 16-lane registers.
pub(super) const NR: usize = 64;
/// Inputs per group: one scale (and offset) per weight column, one scale per input row.
pub(super) const GROUP: usize = 32;
/// Inputs per `vpdpbusd` lane.
const QUAD: usize = 4;
/// Added to the weight values to make unsigned bytes (`vpdpbusd` multiplies unsigned by
/// signed bytes); taken back out of each group's sum through the inputs' sum.
const BIAS: i32 = 128;
/// Rows per register tile: 16 int32 sums (4 rows × 4 registers), four weight registers and
/// a broadcast (6 rows spilled their sums to the stack).
#[cfg(target_arch = "x86_64")]
const MR: usize = 4;

/// A weight packed for the int8 products.
#[derive(Debug, Clone)]
pub(super) struct Int8Panels {
    /// `[panel][k / 4][NR][4]`: each value plus [`BIAS`], as a byte.
    values: Aligned<u8>,
    /// `[panel][k / GROUP][NR]`: the weight's group scales.
    scales: Aligned<f32>,
    /// As `scales`: the group offsets, for the types that have them.
    offsets: Option<Aligned<f32>>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    n: usize,
    k: usize,
}

/// Where column `c` (of a panel), input `kk` sits in a panel's values.
fn index(c: usize, kk: usize) -> usize {
    ((kk / QUAD) * NR + c) * QUAD + kk % QUAD
}

impl Int8Panels {
    /// Packs `blocks`; an error unless their groups are [`GROUP`] inputs.
    pub(super) fn pack(blocks: &IntBlocks) -> Result<Self> {
        ensure!(
            blocks.group() == GROUP,
            "int8 products need groups of {GROUP} inputs, this weight has {}",
            blocks.group()
        );
        // Columns past the weight: byte 0 (value −128), scale 0: they add 0.
        let (values, scales, offsets) =
            super::decode_panels(blocks, NR, index, |v| (i32::from(v) + BIAS) as u8);
        Ok(Int8Panels {
            values,
            scales,
            offsets: blocks.has_offsets().then_some(offsets),
            n: blocks.rows(),
            k: blocks.k(),
        })
    }

    /// The weight of column `col`, input `kk`: `value × scale − offset` in f32, as
    /// [`IntBlocks`] reads it.
    pub(super) fn weight(&self, col: usize, kk: usize) -> f32 {
        let (p, c, k) = (col / NR, col % NR, self.k);
        let value = i32::from(self.values[p * NR * k + index(c, kk)]) - BIAS;
        let at = (p * (k / GROUP) + kk / GROUP) * NR + c;
        let offset = self.offsets.as_ref().map_or(0.0, |o| o[at]);
        value as f32 * self.scales[at] - offset
    }

    /// `x · wᵀ` (`x` `[m, k]`) into `out` (plus the bias and GELU it asks for), in parallel
    /// over the panels on candle's worker pool.
    ///
    /// # Safety
    /// The CPU has the instructions ([`crate::cpu::Isa::int8_dot`]); `out` is valid for `m × n` values and
    /// its bias (if any) for `n`; nothing else accesses them meanwhile.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn product(&self, x: &[f32], m: usize, out: Dest) {
        let inputs = Inputs::quantize(x, m, self.k);
        let panels = self.n.div_ceil(NR);
        candle_core::utils::barrier_pool().execute_chunked(panels, |range| {
            // SAFETY: the caller's contract; each range of panels goes to one call, which
            // writes only its own output columns.
            unsafe { self.panel_range(&inputs, m, range, out) }
        });
    }

    /// Panels `range` times all `m` rows: every row tile of a panel while its values are
    /// in cache, the first one fetching the next panel's.
    ///
    /// # Safety
    /// As [`Int8Panels::product`], for the output columns of `range`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panel_range(&self, inputs: &Inputs, m: usize, range: Range<usize>, out: Dest) {
        let (n, k, groups) = (self.n, self.k, self.k / GROUP);
        for p in range.clone() {
            let at = p * NR * groups;
            let next = if p + 1 < range.end {
                self.values[(p + 1) * NR * k..].as_ptr()
            } else {
                std::ptr::null()
            };
            for i0 in (0..m).step_by(MR) {
                // SAFETY: the panel holds `NR × k` values and `NR × groups` scales (and
                // offsets); the inputs `m` rows; the output `m × n` values, its bias `n`;
                // `next` the next panel's `NR × k` values.
                unsafe {
                    let t = Tile {
                        w: self.values[p * NR * k..].as_ptr(),
                        scales: self.scales[at..].as_ptr(),
                        offsets: self.offsets.as_ref().map(|o| o[at..].as_ptr()),
                        x: inputs.values[i0 * k..].as_ptr(),
                        row_scales: inputs.scales[i0 * groups..].as_ptr(),
                        row_sums: inputs.sums[i0 * groups..].as_ptr(),
                        k,
                        out: out.out.add(i0 * n + p * NR),
                        ldo: n,
                        cols: NR.min(n - p * NR),
                        bias: if out.bias.is_null() {
                            std::ptr::null()
                        } else {
                            out.bias.add(p * NR)
                        },
                        next: if i0 == 0 { next } else { std::ptr::null() },
                    };
                    let rows = (m - i0).min(MR);
                    match (t.next.is_null(), t.offsets.is_some()) {
                        (true, false) => tile_rows::<false, false>(&t, rows),
                        (true, true) => tile_rows::<false, true>(&t, rows),
                        (false, false) => tile_rows::<true, false>(&t, rows),
                        (false, true) => tile_rows::<true, true>(&t, rows),
                    }
                    if out.gelu {
                        for i in 0..rows {
                            vmath::gelu_erf(std::slice::from_raw_parts_mut(
                                t.out.add(i * n),
                                t.cols,
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Off x86-64 nothing packs int8 panels ([`crate::cpu::Isa::int8_dot`] is false).
    #[cfg(not(target_arch = "x86_64"))]
    pub(super) unsafe fn product(&self, _: &[f32], _: usize, _: Dest) {
        unreachable!("int8 panels are packed only where AVX512-VNNI runs")
    }
}

/// The inputs of a product rounded to int8, per row and group of [`GROUP`].
#[cfg(target_arch = "x86_64")]
struct Inputs {
    /// `[m, k]`: `round(x / scale)`, in `−127..=127`.
    values: Vec<i8>,
    /// `[m, k / GROUP]`: the group's largest magnitude / 127 (NaN where the group has a NaN).
    scales: Vec<f32>,
    /// `[m, k / GROUP]`: the sum of the group's int8 values.
    sums: Vec<i32>,
}

#[cfg(target_arch = "x86_64")]
impl Inputs {
    /// `x` (`[m, k]`, `k` whole groups) rounded.
    fn quantize(x: &[f32], m: usize, k: usize) -> Inputs {
        let groups = m * k / GROUP;
        let mut inputs = Inputs {
            values: vec![0; m * k],
            scales: vec![0.0; groups],
            sums: vec![0; groups],
        };
        // SAFETY: products run only where the CPU has the instructions (`Isa::int8_dot`); the
        // buffers hold `groups` groups.
        unsafe { inputs.fill(x) };
        inputs
    }

    /// Rounds `x` group by group into the buffers.
    ///
    /// # Safety
    /// The CPU has AVX-512F/BW; `x` and the buffers hold the same number of groups.
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn fill(&mut self, x: &[f32]) {
        let groups = x
            .chunks_exact(GROUP)
            .zip(self.values.chunks_exact_mut(GROUP))
            .zip(self.scales.iter_mut().zip(&mut self.sums));
        for ((x, q), (scale, sum)) in groups {
            // SAFETY: each chunk holds 32 values.
            unsafe {
                let (a, b) = (
                    _mm512_loadu_ps(x.as_ptr()),
                    _mm512_loadu_ps(x.as_ptr().add(16)),
                );
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a)
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b);
                let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
                let (d, inv) = group_scale(nan == 0, amax);
                // Rounded to nearest, ties to even (the default rounding mode); zeros where
                // the group has no usable scale.
                let (qa, qb) = if inv > 0.0 {
                    let inv = _mm512_set1_ps(inv);
                    (
                        _mm512_cvtps_epi32(_mm512_mul_ps(a, inv)),
                        _mm512_cvtps_epi32(_mm512_mul_ps(b, inv)),
                    )
                } else {
                    (_mm512_setzero_si512(), _mm512_setzero_si512())
                };
                _mm_storeu_si128(q.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(qa));
                _mm_storeu_si128(q.as_mut_ptr().add(16).cast(), _mm512_cvtepi32_epi8(qb));
                *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
                *scale = d;
            }
        }
    }
}

/// The scale of a group of inputs whose largest magnitude is `amax` (`clean`: no NaN among
/// them) and its inverse: `amax / 127` and `1 / scale`, as llama.cpp rounds. A NaN or
/// infinite input gives a NaN scale (the row's outputs NaN, never a silent number), values
/// too small to invert (all zero, or below ~1e-36) scale 0; both with inverse 0, the group's
/// int8 values then all zero.
#[cfg(target_arch = "x86_64")]
fn group_scale(clean: bool, amax: f32) -> (f32, f32) {
    if !clean || !amax.is_finite() {
        return (f32::NAN, 0.0);
    }
    let d = amax / 127.0;
    let inv = 1.0 / d;
    if d > 0.0 && inv.is_finite() {
        (d, inv)
    } else {
        (0.0, 0.0)
    }
}

/// One register tile's work: up to [`MR`] rows times one whole panel.
#[cfg(target_arch = "x86_64")]
struct Tile {
    /// The panel's values.
    w: *const u8,
    /// The panel's group scales, `[k / GROUP][NR]`.
    scales: *const f32,
    /// The panel's group offsets, if any.
    offsets: Option<*const f32>,
    /// Row 0's int8 inputs (`k` per row).
    x: *const i8,
    /// Row 0's input scales (`k / GROUP` per row).
    row_scales: *const f32,
    /// Row 0's sums of int8 inputs (`k / GROUP` per row).
    row_sums: *const i32,
    /// Inputs per row.
    k: usize,
    /// First output value (row 0, panel column 0).
    out: *mut f32,
    /// Output values per row.
    ldo: usize,
    /// Panel columns that exist in the output.
    cols: usize,
    /// The bias of the panel's first column (null: none).
    bias: *const f32,
    /// The next panel's values, fetched a step at a time (null: none).
    next: *const u8,
}

/// [`tile`] for `rows` rows (at most [`MR`]), fetching the next panel if `PREFETCH`, with
/// offsets if `OFFSETS`.
///
/// # Safety
/// As [`tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_rows<const PREFETCH: bool, const OFFSETS: bool>(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match rows {
            6 => tile::<6, PREFETCH, OFFSETS>(t),
            5 => tile::<5, PREFETCH, OFFSETS>(t),
            4 => tile::<4, PREFETCH, OFFSETS>(t),
            3 => tile::<3, PREFETCH, OFFSETS>(t),
            2 => tile::<2, PREFETCH, OFFSETS>(t),
            _ => tile::<1, PREFETCH, OFFSETS>(t),
        }
    }
}

/// The f32 sums of a tile, in memory (L1): the int32 sums of a group take the registers.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct Sums<const R: usize>([[f32; NR]; R]);

/// One tile of `R` rows: per group, eight steps of `vpdpbusd` into int32 sums started at
/// `−BIAS × Σ xq` (so they end as `Σ xq·v`), then scaled into the f32 sums; at the end the
/// f32 sums (plus the bias) stored.
///
/// # Safety
/// The CPU has the instructions; the tile's pointers are valid for `R` rows of its shape.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const R: usize, const PREFETCH: bool, const OFFSETS: bool>(t: &Tile) {
    let groups = t.k / GROUP;
    let mut sums = Sums::<R>([[0.0; NR]; R]);
    // Through a pointer the compiler cannot see through, so that the sums stay in memory:
    // kept in registers, they pushed the int32 sums onto the stack (a third slower).
    let rows = std::hint::black_box(sums.0.as_mut_ptr());
    // SAFETY: the caller's contract; `rows` points to the `R` rows of `sums`.
    unsafe {
        for g in 0..groups {
            // Step 0 starts each row's sums at `−BIAS × Σ xq` (one register per row
            // until then); the other seven add to them.
            let mut acc = [[_mm512_setzero_si512(); 4]; R];
            step::<R, PREFETCH>(t, g, 0, &mut acc, |i| {
                _mm512_set1_epi32(-BIAS * *t.row_sums.add(i * groups + g))
            });
            for s in 1..GROUP / QUAD {
                step::<R, PREFETCH>(t, g, s, &mut acc, |_| _mm512_setzero_si512());
            }
            let scales = t.scales.add(g * NR);
            for (i, row) in acc.iter().enumerate() {
                let out = &mut *rows.add(i);
                let sx = *t.row_scales.add(i * groups + g);
                let scale = _mm512_set1_ps(sx);
                let taken = _mm512_set1_ps(if OFFSETS {
                    sx * *t.row_sums.add(i * groups + g) as f32
                } else {
                    0.0
                });
                for (j, a) in row.iter().enumerate() {
                    let o = out.as_mut_ptr().add(16 * j);
                    let s = _mm512_mul_ps(_mm512_load_ps(scales.add(16 * j)), scale);
                    let mut v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(*a), s, _mm512_load_ps(o));
                    if OFFSETS {
                        let off = _mm512_load_ps(t.offsets.unwrap_unchecked().add(g * NR + 16 * j));
                        v = _mm512_fnmadd_ps(off, taken, v);
                    }
                    _mm512_store_ps(o, v);
                }
            }
        }
        for (i, row) in sums.0.iter_mut().enumerate() {
            if !t.bias.is_null() {
                for (v, b) in row
                    .iter_mut()
                    .zip(std::slice::from_raw_parts(t.bias, t.cols))
                {
                    *v += b;
                }
            }
            std::ptr::copy_nonoverlapping(row.as_ptr(), t.out.add(i * t.ldo), t.cols);
        }
    }
}

/// Step `s` of group `g` (four inputs of each row): the sums `acc` gain the products of
/// the step's weights and each row's inputs; a sum is `start(row)` plus them at step 0.
///
/// # Safety
/// As [`tile`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn step<const R: usize, const PREFETCH: bool>(
    t: &Tile,
    g: usize,
    s: usize,
    acc: &mut [[__m512i; 4]; R],
    start: impl Fn(usize) -> __m512i,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = (g * GROUP / QUAD + s) * NR * QUAD;
        if PREFETCH {
            for line in 0..4 {
                _mm_prefetch::<_MM_HINT_T1>(t.next.add(at + 64 * line).cast());
            }
        }
        let wp = t.w.add(at).cast::<__m512i>();
        let w = [
            _mm512_load_si512(wp),
            _mm512_load_si512(wp.add(1)),
            _mm512_load_si512(wp.add(2)),
            _mm512_load_si512(wp.add(3)),
        ];
        for (i, row) in acc.iter_mut().enumerate() {
            let quad = t.x.add(i * t.k + g * GROUP + s * QUAD);
            let xb = _mm512_set1_epi32(std::ptr::read_unaligned(quad.cast::<i32>()));
            let first = if s == 0 { Some(start(i)) } else { None };
            for (a, w) in row.iter_mut().zip(&w) {
                *a = _mm512_dpbusd_epi32(first.unwrap_or(*a), *w, xb);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::cpu::Isa;
    use crate::kernels::tests::data;
    use crate::kernels::{Activation, PackedMatrix, Precision};

    /// llama.cpp's rounding of a group, written plainly.
    fn quantize_group(x: &[f32]) -> (Vec<i8>, f32) {
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
        let q = x
            .iter()
            .map(|v| (v * inv).round_ties_even() as i8)
            .collect();
        (q, d)
    }

    #[test]
    fn inputs_round_as_llama_cpp_does() {
        for _ in int8_paths() {
            let x: Vec<f32> = data(3 * 64, 37, 101, 7.0)
                .into_iter()
                .chain(std::iter::repeat_n(0.0, 32))
                .collect();
            let inputs = Inputs::quantize(&x, 7, 32);
            for (g, chunk) in x.chunks_exact(32).enumerate() {
                let (q, d) = quantize_group(chunk);
                assert_eq!(&inputs.values[g * 32..][..32], &q[..], "group {g}");
                assert_eq!(inputs.scales[g], d);
                assert_eq!(inputs.sums[g], q.iter().map(|&v| i32::from(v)).sum::<i32>());
            }
            for bad in [f32::NAN, f32::INFINITY] {
                let mut group = x[..32].to_vec();
                group[5] = bad;
                let inputs = Inputs::quantize(&group, 1, 32);
                assert!(inputs.scales[0].is_nan(), "{bad}");
                assert!(inputs.values.iter().all(|&v| v == 0) && inputs.sums[0] == 0);
            }
            let tiny = Inputs::quantize(&[1e-40; 32], 1, 32);
            assert!(tiny.scales[0] == 0.0 && tiny.sums[0] == 0);
        }
    }

    /// The paths of this CPU with the int8 products (the CPU's best one, if any).
    fn int8_paths() -> Vec<Isa> {
        crate::cpu::available()
            .into_iter()
            .filter(|isa| isa.int8_dot())
            .collect()
    }

    /// Every type with groups of 32 (offsets or not), a partial last panel, row counts
    /// that leave partial tiles, a bias and GELU: the weight packed is candle's
    /// dequantized weight exactly, and each output the f64 product of it and the inputs as
    /// llama.cpp rounds them, to f32 precision; a NaN input makes its row NaN; types with
    /// groups of 16 are refused.
    #[test]
    fn products_are_the_rounded_inputs_times_the_weight() {
        use candle_core::quantized::{GgmlDType::*, QTensor};
        let (n, k) = (70, 512);
        let w = data(n * k, 37, 101, 64.0);
        let t = candle_core::Tensor::from_vec(w, (n, k), &candle_core::Device::Cpu).unwrap();
        let bias = data(n, 7, 13, 5.0);
        for isa in int8_paths() {
            for dtype in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K] {
                let q = QTensor::quantize(&t, dtype).unwrap();
                let blocks = q.data().unwrap();
                let dense = q.dequantize(&candle_core::Device::Cpu).unwrap();
                let dense = dense.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let packed =
                    PackedMatrix::pack_int_blocks_for(isa, dtype, &blocks, n, k, Precision::Int8)
                        .unwrap();
                let back = packed.to_tensor().unwrap().flatten_all().unwrap();
                assert_eq!(back.to_vec1::<f32>().unwrap(), dense, "{dtype:?}");
                for m in [1, 5, 7, 40] {
                    let mut x = data(m * k, 53, 89, 32.0);
                    x[3] = f32::NAN;
                    let y = packed.matmul_t(&x, m).unwrap();
                    let rounded: Vec<f64> = x
                        .chunks_exact(32)
                        .flat_map(|g| {
                            let (q, d) = quantize_group(g);
                            q.into_iter().map(move |v| f64::from(v) * f64::from(d))
                        })
                        .collect();
                    for (i, (row, xr)) in y.chunks_exact(n).zip(rounded.chunks_exact(k)).enumerate()
                    {
                        for (c, &got) in row.iter().enumerate() {
                            if i == 0 {
                                assert!(got.is_nan(), "{dtype:?}: a NaN input, column {c}");
                                continue;
                            }
                            let wr = &dense[c * k..][..k];
                            let terms = xr.iter().zip(wr).map(|(a, b)| a * f64::from(*b));
                            let (want, size) =
                                terms.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs()));
                            assert!(
                                (f64::from(got) - want).abs() <= 1e-6 * size,
                                "{dtype:?}, {m} rows, [{i}, {c}]: {got} vs {want}"
                            );
                        }
                    }
                    let mut z = vec![0f32; m * n];
                    packed
                        .matmul_t_bias_into(&x, m, &bias, Activation::GeluErf, &mut z)
                        .unwrap();
                    let mut want: Vec<f32> =
                        y.iter().enumerate().map(|(j, v)| v + bias[j % n]).collect();
                    crate::vmath::gelu_erf(&mut want);
                    let same = |a: &f32, b: &f32| a == b || (a.is_nan() && b.is_nan());
                    assert!(
                        z.iter().zip(&want).all(|(a, b)| same(a, b)),
                        "{dtype:?}, GELU"
                    );
                }
            }
            let q = QTensor::quantize(&t, Q6K).unwrap();
            let six = PackedMatrix::pack_int_blocks_for(
                isa,
                Q6K,
                &q.data().unwrap(),
                n,
                k,
                Precision::Int8,
            );
            assert!(six.is_err());
        }
    }
}
