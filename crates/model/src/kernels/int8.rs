//! Products by int8 weights ([`crate::kernels::Precision::Int8`]): a GGUF weight of int8
//! blocks with groups of [`GROUP`] inputs, or [`HALF_GROUP`] (Q6_K), ([`IntBlocks`]) kept as
//! its values, times the inputs rounded to int8 per row and group of [`GROUP`] (scale: the
//! group's largest magnitude / 127, llama.cpp's Q8 inputs). Each weight group's sums are
//! exact in int32, then scaled into f32: an output is `Σ_groups sx·(s·Σ xq·v − o·Σ xq)` for
//! the weight's values `v`, scale `s` and offset `o` (weight `v·s − o`, as [`IntBlocks`]
//! reads it) and the inputs' int8 values `xq` and scale `sx` (that of the input group
//! holding the weight group). Four kernels compute the same sums ([`Form`]), and scale them into f32
//! in the same order, so every path gives the same bits: AVX512-VNNI's `vpdpbusd` (`vnni`:
//! 64 products per instruction, twice `vdpbf16ps`), the same on 256-bit registers
//! (`vnni256`: 32 products per instruction, four times an f32 FMA), AVX2's `vpmaddubsw`
//! (`avx2`: 32 products per instruction too, but with two more to sum them) and aarch64's
//! `sdot` (`neon`: 16 products per instruction, four times `fmla`). The price is the inputs' rounding to 8 bits
//! per group, where bf16 keeps 8 bits per value.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use std::ops::Range;

use anyhow::{ensure, Result};

use super::Dest;
use crate::aligned::Aligned;
use crate::blocks::IntBlocks;
use crate::cpu::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::vmath;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod vnni;
#[cfg(target_arch = "x86_64")]
mod vnni256;

/// Inputs per group of the inputs' rounding: one scale per input row. A weight's groups (one
/// scale, and offset, per column) are this size or half of it (Q6_K's 16): [`HALF_GROUP`].
pub(super) const GROUP: usize = 32;
/// The smaller weight groups' size: two per input group.
pub(super) const HALF_GROUP: usize = GROUP / 2;
/// Inputs per 32-bit lane of a step: a panel holds `[k / QUAD][nr][QUAD]` values.
const QUAD: usize = 4;
/// [`Form::Vnni`]'s panel width: four 16-lane registers.
const VNNI_NR: usize = 64;
/// [`Form::Vnni256`]'s panel width: two 8-lane registers.
const VNNI256_NR: usize = 16;
/// The AVX2 forms' panel width: two 8-lane registers.
const AVX2_NR: usize = 16;
/// [`Form::Sdot`]'s panel width: four 4-lane registers.
const SDOT_NR: usize = 16;

/// How a weight's values sit in its panels, and so which kernel multiplies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// For `vpdpbusd` (unsigned bytes times signed ones): 64 columns per panel, each value
    /// plus 128 as an unsigned byte.
    Vnni,
    /// For `vpdpbusd` on 256-bit registers ([`Isa::Avx2Vnni`]): 16 columns per panel, each
    /// value plus 128 as an unsigned byte; `vex`: in AVX-VNNI's encoding (where the CPU has
    /// it), else in AVX512-VNNI's.
    Vnni256 { vex: bool },
    /// For AVX2's `vpmaddubsw`, which multiplies unsigned bytes by signed ones and adds
    /// pairs into int16 with saturation, so the sums must stay below 2^15 (summed over a
    /// whole group: [`int16_holds_group`]): 16 columns per panel; values in a range of at
    /// most 16 (Q4_0, Q4_1, Q4_K) as the value plus `shift`, unsigned.
    Unsigned { shift: i32 },
    /// AVX2, other values (Q5_0, Q8_0) as signed bytes: their magnitudes multiply the inputs
    /// with the values' signs (`vpsignb`), summed in int16 over a whole group where
    /// magnitudes stay within 16 (Q5_0), else widened into int32 at every step (one step's
    /// pairs always fit: 2 · 128 · 127 < 2^15). (Q8_0 as two 4-bit halves, each summed in
    /// int16 over a whole group, ran slower: 160–186 against 201–241 GFLOP/s on a Zen 4. So
    /// did the inputs as two nibbles times the values plus 128, two `vpmaddubsw` and two
    /// int16 adds per 32 products, without `vpsignb` and the widening at every step: the
    /// head 191–194 against 207–209; a Zen 4 issues about 3.2 of these instructions per
    /// cycle, and it is four per 32 products either way.)
    Signed { whole_group: bool },
    /// For aarch64's `sdot` (signed bytes times signed bytes, four products into each int32
    /// lane): 16 columns per panel, every type's values as signed bytes.
    Sdot,
}

impl Form {
    /// The form of `blocks` for kernel path `isa`.
    fn of(isa: Isa, blocks: &IntBlocks) -> Form {
        if isa == Isa::Neon {
            return Form::Sdot;
        }
        if isa.int8_dot() {
            return Form::Vnni;
        }
        if isa == Isa::Avx2Vnni {
            return Form::Vnni256 { vex: vex_vnni() };
        }
        let (lo, hi) = blocks.value_range();
        let (lo, hi) = (i32::from(lo), i32::from(hi));
        let group = blocks.group();
        if int16_holds_group(group, hi - lo) {
            Form::Unsigned { shift: -lo }
        } else {
            Form::Signed {
                whole_group: int16_holds_group(group, hi.max(-lo)),
            }
        }
    }

    /// Output columns per panel.
    fn nr(self) -> usize {
        match self {
            Form::Vnni => VNNI_NR,
            Form::Vnni256 { .. } => VNNI256_NR,
            Form::Sdot => SDOT_NR,
            _ => AVX2_NR,
        }
    }

    /// What is added to a value as it is stored (its byte then read unsigned); the
    /// products' sums are corrected by `shift × Σ xq`.
    fn shift(self) -> i32 {
        match self {
            Form::Vnni | Form::Vnni256 { .. } => 128,
            Form::Unsigned { shift } => shift,
            Form::Signed { .. } | Form::Sdot => 0,
        }
    }
}

/// Whether the CPU has AVX-VNNI, the VEX encoding of `vpdpbusd` (never off x86-64).
fn vex_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avxvnni");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the int16 sums of a weight group of `group` inputs (`group / 4` steps of
/// `vpmaddubsw`, each adding a pair of products to each int16 lane: `group / 2` products)
/// of unsigned bytes up to `largest` and inputs up to 127 in magnitude stay below 2^15.
fn int16_holds_group(group: usize, largest: i32) -> bool {
    (group as i32 / 2) * largest * 127 < 1 << 15
}

/// A weight packed for the int8 products.
#[derive(Debug, Clone)]
pub(super) struct Int8Panels {
    /// `[panel][k / 4][nr][4]`: each value plus the form's shift, as a byte.
    values: Aligned<u8>,
    /// `[panel][k / group][nr]`: the weight's group scales.
    scales: Aligned<f32>,
    /// As `scales`: the group offsets, for the types that have them.
    offsets: Option<Aligned<f32>>,
    form: Form,
    /// Whether the weight's groups are [`HALF_GROUP`] inputs, else [`GROUP`].
    half_groups: bool,
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    n: usize,
    k: usize,
}

/// Where column `c` (of a panel of `nr`), input `kk` sits in a panel's values.
fn index(nr: usize, c: usize, kk: usize) -> usize {
    ((kk / QUAD) * nr + c) * QUAD + kk % QUAD
}

impl Int8Panels {
    /// Packs `blocks` for path `isa`; an error unless their groups are [`GROUP`] or
    /// [`HALF_GROUP`] inputs.
    pub(super) fn pack(isa: Isa, blocks: &IntBlocks) -> Result<Self> {
        ensure!(
            matches!(blocks.group(), GROUP | HALF_GROUP),
            "int8 products need groups of {GROUP} or {HALF_GROUP} inputs, this weight has {}",
            blocks.group()
        );
        let form = Form::of(isa, blocks);
        let (nr, shift) = (form.nr(), form.shift());
        // Columns past the weight: byte 0, scale 0: they add 0.
        let (values, scales, offsets) =
            super::decode_panels::<_, QUAD>(blocks, nr, move |v| (i32::from(v) + shift) as u8);
        Ok(Int8Panels {
            values,
            scales,
            offsets: blocks.has_offsets().then_some(offsets),
            form,
            half_groups: blocks.group() == HALF_GROUP,
            n: blocks.rows(),
            k: blocks.k(),
        })
    }

    /// Output columns per panel.
    pub(super) fn nr(&self) -> usize {
        self.form.nr()
    }

    /// Inputs per weight group.
    fn group(&self) -> usize {
        if self.half_groups {
            HALF_GROUP
        } else {
            GROUP
        }
    }

    /// The weight of column `col`, input `kk`: `value × scale − offset` in f32, as
    /// [`IntBlocks`] reads it.
    pub(super) fn weight(&self, col: usize, kk: usize) -> f32 {
        let (nr, k) = (self.nr(), self.k);
        let (p, c) = (col / nr, col % nr);
        let byte = self.values[p * nr * k + index(nr, c, kk)];
        let value = match self.form {
            Form::Signed { .. } | Form::Sdot => i32::from(byte as i8),
            form => i32::from(byte) - form.shift(),
        };
        let group = self.group();
        let at = (p * (k / group) + kk / group) * nr + c;
        let offset = self.offsets.as_ref().map_or(0.0, |o| o[at]);
        value as f32 * self.scales[at] - offset
    }

    /// `x · wᵀ` (`x` `[m, k]`) into `out` (plus the bias and GELU it asks for), in parallel
    /// over the panels on candle's worker pool.
    ///
    /// # Safety
    /// The CPU runs the path the panels were packed for ([`Isa::int8_products`]); `out` is
    /// valid for `m × n` values and its bias (if any) for `n`; nothing else accesses them
    /// meanwhile.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(super) unsafe fn product(&self, x: &[f32], m: usize, out: Dest) {
        let inputs = Inputs::quantize(x, m, self.k);
        let kernel = Kernel::of(self.form);
        let panels = self.n.div_ceil(self.nr());
        candle_core::utils::barrier_pool().execute_chunked(panels, |range| {
            // SAFETY: the caller's contract; each range of panels goes to one call, which
            // writes only its own output columns.
            unsafe { self.panel_range(kernel, &inputs, m, range, out) }
        });
    }

    /// Panels `range` times all `m` rows: every row tile of a panel while its values are
    /// in cache, the first one fetching the next panel's.
    ///
    /// # Safety
    /// As [`Int8Panels::product`], for the output columns of `range`.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    unsafe fn panel_range(
        &self,
        kernel: Kernel,
        inputs: &Inputs,
        m: usize,
        range: Range<usize>,
        out: Dest,
    ) {
        let (n, k, groups, nr) = (self.n, self.k, self.k / self.group(), self.nr());
        for p in range.clone() {
            let at = p * nr * groups;
            let next = if p + 1 < range.end {
                self.values[(p + 1) * nr * k..].as_ptr()
            } else {
                std::ptr::null()
            };
            for (i0, rows) in super::row_tiles(m, kernel.rows) {
                // SAFETY: the panel holds `nr × k` values and `nr × groups` scales (and
                // offsets); the inputs `m` rows; the output `m × n` values, its bias `n`;
                // `next` the next panel's `nr × k` values.
                unsafe {
                    let t = Tile {
                        w: self.values[p * nr * k..].as_ptr(),
                        shift: self.form.shift(),
                        scales: self.scales[at..].as_ptr(),
                        offsets: self.offsets.as_ref().map(|o| o[at..].as_ptr()),
                        x: inputs.values[i0 * k..].as_ptr(),
                        row_scales: inputs.scales[i0 * (k / GROUP)..].as_ptr(),
                        row_sums: inputs.sums_per(self.group())[i0 * groups..].as_ptr(),
                        half_groups: self.half_groups,
                        k,
                        out: out.out.add(i0 * n + p * nr),
                        ldo: n,
                        cols: nr.min(n - p * nr),
                        bias: if out.bias.is_null() {
                            std::ptr::null()
                        } else {
                            out.bias.add(p * nr)
                        },
                        next: if i0 == 0 { next } else { std::ptr::null() },
                    };
                    (kernel.tile)(&t, rows);
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

    /// Off x86-64 and aarch64 nothing packs int8 panels ([`Isa::int8_products`] is false).
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn product(&self, _: &[f32], _: usize, _: Dest) {
        unreachable!("int8 panels are packed only on x86-64 and aarch64")
    }
}

/// A kernel's register tile: its rows, and the function that multiplies up to that many.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Clone, Copy)]
struct Kernel {
    rows: usize,
    /// Multiplies `rows` rows (at most `Kernel::rows`) of a tile, fetching the next panel
    /// where the tile says so. Safety: the CPU runs the kernel's instructions; the tile's
    /// pointers are valid for that many rows of its shape.
    tile: unsafe fn(&Tile, usize),
}

impl Kernel {
    /// The kernel that multiplies panels of `form`; only this architecture's forms are
    /// ever packed ([`Form::of`] on a path the CPU runs).
    fn of(form: Form) -> Kernel {
        match form {
            #[cfg(target_arch = "x86_64")]
            Form::Vnni => Kernel {
                rows: vnni::MR,
                tile: vnni::tile_rows,
            },
            #[cfg(target_arch = "x86_64")]
            Form::Vnni256 { vex } => Kernel {
                rows: vnni256::MR,
                tile: if vex {
                    vnni256::vex::tile_rows
                } else {
                    vnni256::evex::tile_rows
                },
            },
            #[cfg(target_arch = "x86_64")]
            Form::Unsigned { .. } => Kernel {
                rows: avx2::MR,
                tile: avx2::tile_rows::<false, true>,
            },
            #[cfg(target_arch = "x86_64")]
            Form::Signed { whole_group } => Kernel {
                rows: avx2::MR,
                tile: if whole_group {
                    avx2::tile_rows::<true, true>
                } else {
                    avx2::tile_rows::<true, false>
                },
            },
            #[cfg(target_arch = "aarch64")]
            Form::Sdot => Kernel {
                rows: neon::MR,
                tile: neon::tile_rows,
            },
            #[allow(unreachable_patterns)]
            other => unreachable!("{other:?} panels are not packed on this architecture"),
        }
    }
}

/// The inputs of a product rounded to int8, per row and group of [`GROUP`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct Inputs {
    /// `[m, k]`: `round(x / scale)`, in `−127..=127`.
    values: Vec<i8>,
    /// `[m, k / GROUP]`: the group's largest magnitude / 127 (NaN where the group has a NaN).
    scales: Vec<f32>,
    /// `[m, k / GROUP]`: the sum of the group's int8 values.
    sums: Vec<i32>,
    /// `[m, k / HALF_GROUP]`: the sums of the groups' halves.
    half_sums: Vec<i32>,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Inputs {
    /// Zeroed buffers for `m` rows of `k` inputs (whole groups).
    fn zeroed(m: usize, k: usize) -> Inputs {
        let groups = m * k / GROUP;
        Inputs {
            values: vec![0; m * k],
            scales: vec![0.0; groups],
            sums: vec![0; groups],
            half_sums: vec![0; 2 * groups],
        }
    }

    /// The sums of the int8 values per `group` inputs ([`GROUP`] or [`HALF_GROUP`]).
    fn sums_per(&self, group: usize) -> &[i32] {
        if group == HALF_GROUP {
            &self.half_sums
        } else {
            &self.sums
        }
    }

    /// `x` (`[m, k]`, `k` whole groups) rounded.
    fn quantize(x: &[f32], m: usize, k: usize) -> Inputs {
        let mut inputs = Inputs::zeroed(m, k);
        // SAFETY: on x86-64 products run only where the CPU has AVX2
        // (`Isa::int8_products`); the buffers hold `groups` groups.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            inputs.fill(x)
        };
        #[cfg(not(target_arch = "x86_64"))]
        inputs.fill_portable(x);
        inputs
    }

    /// Rounds `x` group by group into the buffers, in plain Rust: the same values as
    /// [`Inputs::fill`] (checked on x86-64), for the other CPUs.
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn fill_portable(&mut self, x: &[f32]) {
        let groups = x
            .chunks_exact(GROUP)
            .zip(self.values.chunks_exact_mut(GROUP))
            .zip(self.scales.iter_mut().zip(&mut self.sums))
            .zip(self.half_sums.chunks_exact_mut(2));
        for (((x, q), (scale, sum)), halves) in groups {
            let clean = !x.iter().any(|v| v.is_nan());
            let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            let (d, inv) = group_scale(clean, amax);
            for (q, &v) in q.iter_mut().zip(x) {
                // Rounded to nearest, ties to even, and saturated, as AVX2 converts and packs.
                *q = if inv > 0.0 {
                    (v * inv).round_ties_even().clamp(-128.0, 127.0) as i8
                } else {
                    0
                };
            }
            for (half, q) in halves.iter_mut().zip(q.chunks_exact(HALF_GROUP)) {
                *half = q.iter().map(|&v| i32::from(v)).sum();
            }
            *sum = halves[0] + halves[1];
            *scale = d;
        }
    }

    /// Rounds `x` group by group into the buffers.
    ///
    /// # Safety
    /// The CPU has AVX2; `x` and the buffers hold the same number of groups.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill(&mut self, x: &[f32]) {
        let groups = x
            .chunks_exact(GROUP)
            .zip(self.values.chunks_exact_mut(GROUP))
            .zip(self.scales.iter_mut().zip(&mut self.sums))
            .zip(self.half_sums.chunks_exact_mut(2));
        for (((x, q), (scale, sum)), halves) in groups {
            // SAFETY: each chunk holds 32 values.
            unsafe {
                let v: [__m256; 4] =
                    std::array::from_fn(|j| _mm256_loadu_ps(x.as_ptr().add(8 * j)));
                let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
                let (mut nan, mut amax) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                for v in v {
                    nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                    amax = _mm256_max_ps(amax, _mm256_and_ps(v, magnitude));
                }
                let (d, inv) = group_scale(_mm256_movemask_ps(nan) == 0, max_lane(amax));
                // Rounded to nearest, ties to even (the default rounding mode); zeros where
                // the group has no usable scale.
                let q32 = if inv > 0.0 {
                    let inv = _mm256_set1_ps(inv);
                    v.map(|v| _mm256_cvtps_epi32(_mm256_mul_ps(v, inv)))
                } else {
                    [_mm256_setzero_si256(); 4]
                };
                // Packing works per 128-bit half: bytes 4j..4j+4 of the result are dword
                // `[0, 4, 1, 5, 2, 6, 3, 7][j]` of the packed order.
                let bytes = _mm256_packs_epi16(
                    _mm256_packs_epi32(q32[0], q32[1]),
                    _mm256_packs_epi32(q32[2], q32[3]),
                );
                let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
                let bytes = _mm256_permutevar8x32_epi32(bytes, order);
                _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes);
                for (half, q) in halves.iter_mut().zip(q32.chunks_exact(2)) {
                    let lanes: [i32; 8] = std::mem::transmute(_mm256_add_epi32(q[0], q[1]));
                    *half = lanes.iter().sum();
                }
                *sum = halves[0] + halves[1];
                *scale = d;
            }
        }
    }
}

/// The largest of the eight lanes of `v` (no NaN among them).
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn max_lane(v: __m256) -> f32 {
    let half = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pairs = _mm_max_ps(half, _mm_movehl_ps(half, half));
    _mm_cvtss_f32(_mm_max_ss(pairs, _mm_shuffle_ps::<1>(pairs, pairs)))
}

/// The scale of a group of inputs whose largest magnitude is `amax` (`clean`: no NaN among
/// them) and its inverse: `amax / 127` and `1 / scale`, as llama.cpp rounds. A NaN or
/// infinite input gives a NaN scale (the row's outputs NaN, never a silent number), values
/// too small to invert (all zero, or below ~1e-36) scale 0; both with inverse 0, the group's
/// int8 values then all zero.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
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

/// One register tile's work: a kernel's rows times one whole panel.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct Tile {
    /// The panel's values.
    w: *const u8,
    /// What each value had added as it was stored ([`Form::shift`]).
    shift: i32,
    /// The panel's group scales, `[k / group][nr]`.
    scales: *const f32,
    /// The panel's group offsets, if any.
    offsets: Option<*const f32>,
    /// Row 0's int8 inputs (`k` per row).
    x: *const i8,
    /// Row 0's input scales (`k / GROUP` per row).
    row_scales: *const f32,
    /// Row 0's sums of int8 inputs per weight group (`k / group` per row).
    row_sums: *const i32,
    /// Whether the weight's groups are [`HALF_GROUP`] inputs, else [`GROUP`]: the kernels
    /// take `STEPS` = `group / 4` steps per group.
    half_groups: bool,
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

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Tile {
    /// Row `i`'s four int8 inputs of step `s` (of the whole panel), as one 32-bit lane.
    ///
    /// # Safety
    /// Row `i` is one of the tile's.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn quad(&self, i: usize, s: usize) -> i32 {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::read_unaligned(self.inputs(i, s).cast::<i32>()) }
    }

    /// Row `i`'s first int8 input of step `s` (of the whole panel).
    ///
    /// # Safety
    /// Row `i` is one of the tile's.
    #[inline(always)]
    unsafe fn inputs(&self, i: usize, s: usize) -> *const i8 {
        // SAFETY: the caller's contract.
        unsafe { self.x.add(i * self.k + s * QUAD) }
    }

    /// Row `i`'s input scale and sum of int8 inputs of weight group `g` of `STEPS` steps.
    ///
    /// # Safety
    /// Row `i` is one of the tile's.
    #[inline(always)]
    unsafe fn row_group<const STEPS: usize>(&self, i: usize, g: usize) -> (f32, i32) {
        let group = STEPS * QUAD;
        let scale = i * (self.k / GROUP) + g * group / GROUP;
        let sum = i * (self.k / group) + g;
        // SAFETY: the caller's contract.
        unsafe { (*self.row_scales.add(scale), *self.row_sums.add(sum)) }
    }

    /// The sums `rows` (one per tile row, `cols` of each used) plus the bias, stored.
    ///
    /// # Safety
    /// The tile's output is valid for these rows.
    unsafe fn store<const NR: usize>(&self, rows: &mut [[f32; NR]]) {
        for (i, row) in rows.iter_mut().enumerate() {
            // SAFETY: the caller's contract; the bias holds the panel's `cols` columns.
            unsafe {
                if !self.bias.is_null() {
                    let bias = std::slice::from_raw_parts(self.bias, self.cols);
                    row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                }
                std::ptr::copy_nonoverlapping(row.as_ptr(), self.out.add(i * self.ldo), self.cols);
            }
        }
    }
}

/// The f32 sums of a tile in memory (L1): where the AVX2 and NEON kernels keep them while the
/// int sums of a group take the registers, and where the VNNI kernel stores its registers' at
/// the end.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C, align(64))]
struct Sums<const R: usize, const NR: usize>([[f32; NR]; R]);

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;
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

    /// The inputs as [`Inputs::quantize`] rounds them, and (on x86-64, where that is AVX2
    /// code) as [`Inputs::fill_portable`] does, which must be the same.
    fn quantized_both_ways(x: &[f32], m: usize, k: usize) -> Inputs {
        let inputs = Inputs::quantize(x, m, k);
        let mut plain = Inputs::zeroed(m, k);
        plain.fill_portable(x);
        assert_eq!(inputs.values, plain.values);
        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&inputs.scales), bits(&plain.scales));
        assert_eq!(inputs.sums, plain.sums);
        assert_eq!(inputs.half_sums, plain.half_sums);
        inputs
    }

    #[test]
    fn inputs_round_as_llama_cpp_does() {
        assert!(
            !int8_paths().is_empty(),
            "the int8 products need AVX2 or NEON's dot product"
        );
        let mut x: Vec<f32> = data(3 * 64, 37, 101, 7.0)
            .into_iter()
            .chain(std::iter::repeat_n(0.0, 32))
            .collect();
        // Halves (ties to even) and the largest magnitude at either sign.
        x[40..48].copy_from_slice(&[-127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 63.5, 64.5]);
        let inputs = quantized_both_ways(&x, 7, 32);
        for (g, chunk) in x.chunks_exact(32).enumerate() {
            let (q, d) = quantize_group(chunk);
            assert_eq!(&inputs.values[g * 32..][..32], &q[..], "group {g}");
            assert_eq!(inputs.scales[g], d);
            let sum = |q: &[i8]| q.iter().map(|&v| i32::from(v)).sum::<i32>();
            assert_eq!(inputs.sums[g], sum(&q));
            assert_eq!(
                inputs.half_sums[2 * g..][..2],
                [sum(&q[..16]), sum(&q[16..])]
            );
        }
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut group = x[..32].to_vec();
            group[5] = bad;
            let inputs = quantized_both_ways(&group, 1, 32);
            assert!(inputs.scales[0].is_nan(), "{bad}");
            assert!(inputs.values.iter().all(|&v| v == 0) && inputs.sums[0] == 0);
        }
        let tiny = quantized_both_ways(&[1e-40; 32], 1, 32);
        assert!(tiny.scales[0] == 0.0 && tiny.sums[0] == 0);
    }

    /// `x · wᵀ` for the int8 blocks `w`, as every kernel computes it, written plainly (so
    /// the kernels of every CPU give the same bits): per row and weight group, the exact
    /// int32 sum of the int8 inputs times the values, added to the f32 sum by one fused
    /// multiply-add with the product of the weight's and the row's scales (that of the
    /// input group of 32 holding it), less the weight's offset times the row's scale times
    /// its sum of inputs by another.
    fn scaled_sums(w: &IntBlocks, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k, group) = (w.rows(), w.k(), w.group());
        let groups = k / group;
        let inputs = Inputs::quantize(x, m, k);
        let mut out = vec![0f32; m * n];
        let (mut v, mut s, mut o) = (vec![0i8; k], vec![0f32; groups], vec![0f32; groups]);
        for c in 0..n {
            w.decode_row(c, &mut v, &mut s, &mut o);
            for i in 0..m {
                let mut acc = 0f32;
                for g in 0..groups {
                    let xq = &inputs.values[i * k + g * group..][..group];
                    let values = &v[g * group..][..group];
                    let dot: i32 = xq
                        .iter()
                        .zip(values)
                        .map(|(a, b)| i32::from(*a) * i32::from(*b))
                        .sum();
                    let sx = inputs.scales[(i * k + g * group) / GROUP];
                    let sum: i32 = xq.iter().map(|&a| i32::from(a)).sum();
                    acc = (dot as f32).mul_add(s[g] * sx, acc);
                    if w.has_offsets() {
                        acc = (-o[g]).mul_add(sx * sum as f32, acc);
                    }
                }
                out[i * n + c] = acc;
            }
        }
        out
    }

    /// The paths of this CPU with the int8 products.
    fn int8_paths() -> Vec<Isa> {
        crate::cpu::available()
            .into_iter()
            .filter(|isa| isa.int8_products())
            .collect()
    }

    /// Every type read (groups of 32 and of 16, offsets or not; every [`Form`]), a partial
    /// last panel, row counts that leave partial tiles, a bias and GELU, on every path with
    /// the int8 products: the weight packed is candle's dequantized weight exactly, and each
    /// output the f64 product of it and the inputs as llama.cpp rounds them, to f32
    /// precision; a NaN input makes its row NaN; every path gives the same bits, those of
    /// the sums written plainly ([`scaled_sums`]: the int32 sums are exact, and scaled in
    /// the same order), so every CPU's do; other types are refused.
    #[test]
    fn products_are_the_rounded_inputs_times_the_weight() {
        use candle_core::quantized::{GgmlDType::*, QTensor};
        let (n, k) = (70, 512);
        let w = data(n * k, 37, 101, 64.0);
        // Every type's extreme values (constant columns of either sign, and alternating
        // ones), where the int16 sums come closest to 2^15 against constant inputs.
        let extremes: Vec<f32> = (0..n * k)
            .map(|i| match (i / k) % 3 {
                0 => 1.0,
                1 => -1.0,
                _ => [1.0, -1.0][i % 2],
            })
            .collect();
        let bias = data(n, 7, 13, 5.0);
        let weights = [w, extremes]
            .map(|w| candle_core::Tensor::from_vec(w, (n, k), &candle_core::Device::Cpu).unwrap());
        // Each path's outputs, which must be the same bits on every path.
        let mut first = std::collections::HashMap::new();
        for (isa, (wi, t)) in int8_paths()
            .into_iter()
            .flat_map(|i| weights.iter().enumerate().map(move |t| (i, t)))
        {
            for dtype in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K, Q6K] {
                let q = QTensor::quantize(t, dtype).unwrap();
                let blocks = q.data().unwrap();
                let dense = q.dequantize(&candle_core::Device::Cpu).unwrap();
                let dense = dense.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let packed =
                    PackedMatrix::pack_int_blocks_for(isa, dtype, &blocks, n, k, Precision::Int8)
                        .unwrap();
                let back = packed.to_tensor().unwrap().flatten_all().unwrap();
                assert_eq!(back.to_vec1::<f32>().unwrap(), dense, "{isa} {dtype:?}");
                for m in [1, 5, 7, 40] {
                    let mut x = data(m * k, 53, 89, 32.0);
                    x[3] = f32::NAN;
                    // Inputs at the int8 extremes (±127): a group of row 1, rows 2 and 3.
                    if m > 3 {
                        x[k + 64..k + 96].copy_from_slice(&[-9.0; 32]);
                        x[k + 70] = 9.0;
                        x[2 * k..4 * k].iter_mut().enumerate().for_each(|(j, v)| {
                            *v = if j < k { 3.0 } else { -3.0 };
                        });
                    }
                    let y = packed.matmul_t(&x, m).unwrap();
                    let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    let want = first
                        .entry((wi, format!("{dtype:?}"), m))
                        .or_insert(bits.clone());
                    assert!(
                        *want == bits,
                        "{isa} {dtype:?}, {m} rows: not the other paths' bits"
                    );
                    let int_blocks = IntBlocks::new(dtype, &blocks, n, k).unwrap();
                    let plain = scaled_sums(&int_blocks, &x, m);
                    let same =
                        |a: &f32, b: &f32| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
                    assert!(
                        y.iter().zip(&plain).all(|(a, b)| same(a, b)),
                        "{isa} {dtype:?}, {m} rows: not the plainly written sums' bits"
                    );
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
                                assert!(got.is_nan(), "{isa} {dtype:?}: a NaN input, column {c}");
                                continue;
                            }
                            let wr = &dense[c * k..][..k];
                            let terms = xr.iter().zip(wr).map(|(a, b)| a * f64::from(*b));
                            let (want, size) =
                                terms.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs()));
                            assert!(
                                (f64::from(got) - want).abs() <= 1e-6 * size,
                                "{isa} {dtype:?}, {m} rows, [{i}, {c}]: {got} vs {want}"
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
                        "{isa} {dtype:?}, GELU"
                    );
                }
            }
            let q = QTensor::quantize(t, Q5K).unwrap();
            let five = PackedMatrix::pack_int_blocks_for(
                isa,
                Q5K,
                &q.data().unwrap(),
                n,
                k,
                Precision::Int8,
            );
            assert!(five.is_err());
        }
    }

    /// The AVX2 forms follow the types' value ranges and group sizes: unsigned bytes summed
    /// over a whole group for ranges of 16 values, signed ones otherwise, over a whole group
    /// only while magnitudes stay within 16 (within 32 for groups of 16).
    #[test]
    fn avx2_forms_keep_int16_sums_exact() {
        use candle_core::quantized::{GgmlDType::*, QTensor};
        let zeros = candle_core::Tensor::zeros(
            (1, 256),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        );
        let form = |dtype| {
            let b = QTensor::quantize(zeros.as_ref().unwrap(), dtype)
                .unwrap()
                .data()
                .unwrap()
                .to_vec();
            Form::of(Isa::Avx2, &IntBlocks::new(dtype, &b, 1, 256).unwrap())
        };
        assert_eq!(form(Q4_0), Form::Unsigned { shift: 8 });
        assert_eq!(form(Q4_1), Form::Unsigned { shift: 0 });
        assert_eq!(form(Q4K), Form::Unsigned { shift: 0 });
        assert_eq!(form(Q5_0), Form::Signed { whole_group: true });
        assert_eq!(form(Q8_0), Form::Signed { whole_group: false });
        assert_eq!(form(Q6K), Form::Signed { whole_group: true });
    }
}
