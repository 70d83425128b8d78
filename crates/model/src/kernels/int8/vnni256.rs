//! The int8 products' 256-bit VNNI kernel ([`super::Form::Vnni256`]) for the
//! [`crate::cpu::Isa::Avx2Vnni`] path: per weight group, its steps (eight, or four for
//! groups of 16) of `vpdpbusd` on 256-bit
//! registers (32 products each: four inputs of 8 columns, where AVX2 needs `vpmaddubsw`,
//! `vpmaddwd` and an add) into int32 sums, then scaled into f32 in the other kernels' order,
//! so the outputs are theirs bit for bit. One kernel, built twice: [`vex`] with AVX-VNNI's
//! encoding (Intel's cores from Alder Lake on, which have no AVX-512), [`evex`] with
//! AVX512-VNNI's encoding of the same instruction on 256-bit registers (AVX512-VL), which
//! AVX-512 CPUs run, so that they test the kernel too.

use std::arch::x86_64::*;

use super::{Sums, Tile, GROUP, HALF_GROUP, QUAD, VNNI256_NR as NR};

/// Rows per register tile: 6 int32 sums and 6 f32 sums (3 rows × 2 registers), two weight
/// registers and a broadcast, 15 of the 16 registers.
pub(super) const MR: usize = 3;

/// Registers of eight panel columns in a step.
const REGS: usize = NR / 8;

/// One encoding of `vpdpbusd` on 256-bit registers.
trait Dot {
    /// `acc` plus, in each int32 lane, the four products of `w`'s unsigned bytes and `x`'s
    /// signed ones.
    ///
    /// # Safety
    /// The CPU has the encoding's instruction.
    unsafe fn dot(acc: __m256i, w: __m256i, x: __m256i) -> __m256i;
}

/// AVX-VNNI's VEX encoding.
struct Vex;

impl Dot for Vex {
    #[inline(always)]
    unsafe fn dot(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: the caller's contract.
        unsafe { _mm256_dpbusd_avx_epi32(acc, w, x) }
    }
}

/// AVX512-VNNI's EVEX encoding on 256-bit registers.
struct Evex;

impl Dot for Evex {
    #[inline(always)]
    unsafe fn dot(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: the caller's contract.
        unsafe { _mm256_dpbusd_epi32(acc, w, x) }
    }
}

/// A module with `tile_rows` (for `rows` rows, at most [`MR`], fetching the next panel if
/// the tile has one, with offsets if it has them, in groups of the tile's steps) and the
/// never-inlined tiles it calls, compiled for `$features` with the encoding `$dot`.
macro_rules! encoding {
    ($(#[$doc:meta])* $module:ident, $features:literal, $dot:ty) => {
        $(#[$doc])*
        pub(super) mod $module {
            use super::{Tile, GROUP, HALF_GROUP, MR, QUAD};

            /// [`tile`] for `rows` rows (at most [`MR`]).
            ///
            /// # Safety
            /// As [`tile`].
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn tile_rows(t: &Tile, rows: usize) {
                // SAFETY: the caller's contract.
                unsafe {
                    if t.half_groups {
                        tile_height::<{ HALF_GROUP / QUAD }>(t, rows)
                    } else {
                        tile_height::<{ GROUP / QUAD }>(t, rows)
                    }
                }
            }

            /// [`tile`] for `rows` rows, in groups of `STEPS` steps.
            ///
            /// # Safety
            /// As [`tile`].
            #[target_feature(enable = $features)]
            unsafe fn tile_height<const STEPS: usize>(t: &Tile, rows: usize) {
                // SAFETY: the caller's contract.
                unsafe {
                    match (t.next.is_null(), t.offsets.is_some(), rows.min(MR)) {
                        (true, false, 3) => tile::<3, false, false, STEPS>(t),
                        (true, false, 2) => tile::<2, false, false, STEPS>(t),
                        (true, false, _) => tile::<1, false, false, STEPS>(t),
                        (true, true, 3) => tile::<3, false, true, STEPS>(t),
                        (true, true, 2) => tile::<2, false, true, STEPS>(t),
                        (true, true, _) => tile::<1, false, true, STEPS>(t),
                        (false, false, 3) => tile::<3, true, false, STEPS>(t),
                        (false, false, 2) => tile::<2, true, false, STEPS>(t),
                        (false, false, _) => tile::<1, true, false, STEPS>(t),
                        (false, true, 3) => tile::<3, true, true, STEPS>(t),
                        (false, true, 2) => tile::<2, true, true, STEPS>(t),
                        (false, true, _) => tile::<1, true, true, STEPS>(t),
                    }
                }
            }

            /// [`super::tile`] with this encoding. Never inlined, as the other int8 kernels'
            /// tiles: compiled the same whatever the code around it.
            ///
            /// # Safety
            /// As [`super::tile`].
            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn tile<
                const R: usize,
                const PREFETCH: bool,
                const OFFSETS: bool,
                const STEPS: usize,
            >(
                t: &Tile,
            ) {
                // SAFETY: the caller's contract.
                unsafe { super::tile::<$dot, R, PREFETCH, OFFSETS, STEPS>(t) }
            }
        }
    };
}

encoding!(
    /// The kernel in AVX-VNNI's VEX encoding.
    vex,
    "avx2,fma,avxvnni",
    super::Vex
);
encoding!(
    /// The kernel in AVX512-VNNI's EVEX encoding on 256-bit registers.
    evex,
    "avx2,fma,avx512vl,avx512vnni",
    super::Evex
);

/// One tile of `R` rows: per weight group, its `STEPS` steps of `vpdpbusd` into int32 sums
/// started at `−shift × Σ xq` (so they end as `Σ xq·v`), then scaled into the f32 sums,
/// both in registers; at the end the f32 sums (plus the bias) stored.
///
/// # Safety
/// The CPU has AVX2, FMA and `D`'s instruction; the tile's pointers are valid for `R` rows of
/// its shape.
#[inline(always)]
unsafe fn tile<
    D: Dot,
    const R: usize,
    const PREFETCH: bool,
    const OFFSETS: bool,
    const STEPS: usize,
>(
    t: &Tile,
) {
    let groups = t.k / (STEPS * QUAD);
    // SAFETY: the caller's contract.
    unsafe {
        let mut f32_sums = [[_mm256_setzero_ps(); REGS]; R];
        for g in 0..groups {
            let mut acc = [[_mm256_setzero_si256(); REGS]; R];
            step::<D, R, PREFETCH>(t, g * STEPS, true, &mut acc, |i| {
                _mm256_set1_epi32(-t.shift * t.row_group::<STEPS>(i, g).1)
            });
            for s in 1..STEPS {
                step::<D, R, PREFETCH>(t, g * STEPS + s, false, &mut acc, |_| {
                    _mm256_setzero_si256()
                });
            }
            let scales = t.scales.add(g * NR);
            for (i, (row, out)) in acc.iter().zip(f32_sums.iter_mut()).enumerate() {
                let (sx, sum) = t.row_group::<STEPS>(i, g);
                let scale = _mm256_set1_ps(sx);
                let taken = _mm256_set1_ps(if OFFSETS { sx * sum as f32 } else { 0.0 });
                for (j, (a, o)) in row.iter().zip(out.iter_mut()).enumerate() {
                    let s = _mm256_mul_ps(_mm256_load_ps(scales.add(8 * j)), scale);
                    let mut v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(*a), s, *o);
                    if OFFSETS {
                        let off = _mm256_load_ps(t.offsets.unwrap_unchecked().add(g * NR + 8 * j));
                        v = _mm256_fnmadd_ps(off, taken, v);
                    }
                    *o = v;
                }
            }
        }
        let mut sums = Sums::<R, NR>([[0.0; NR]; R]);
        for (row, out) in f32_sums.iter().zip(sums.0.iter_mut()) {
            for (j, v) in row.iter().enumerate() {
                _mm256_store_ps(out.as_mut_ptr().add(8 * j), *v);
            }
        }
        t.store(&mut sums.0);
    }
}

/// Step `s` of the panel (four inputs of each row): the sums `acc` gain the products of
/// the step's weights and each row's inputs; a sum is `start(row)` plus them at a group's
/// `first` step.
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn step<D: Dot, const R: usize, const PREFETCH: bool>(
    t: &Tile,
    s: usize,
    first: bool,
    acc: &mut [[__m256i; REGS]; R],
    start: impl Fn(usize) -> __m256i,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = s * NR * QUAD;
        if PREFETCH {
            _mm_prefetch::<_MM_HINT_T1>(t.next.add(at).cast());
        }
        let wp = t.w.add(at).cast::<__m256i>();
        let w: [__m256i; REGS] = [_mm256_load_si256(wp), _mm256_load_si256(wp.add(1))];
        for (i, row) in acc.iter_mut().enumerate() {
            let xb = _mm256_set1_epi32(t.quad(i, s));
            let begin = if first { Some(start(i)) } else { None };
            for (a, w) in row.iter_mut().zip(&w) {
                *a = D::dot(begin.unwrap_or(*a), *w, xb);
            }
        }
    }
}
