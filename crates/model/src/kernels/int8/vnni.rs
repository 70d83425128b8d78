//! The int8 products' AVX512-VNNI kernel ([`super::Form::Vnni`]): per weight group, its
//! steps (eight, or four for groups of 16) of `vpdpbusd` (64 products each: four inputs of
//! 16 columns) into int32 sums, then scaled into f32.

use std::arch::x86_64::*;

use super::{Sums, Tile, GROUP, HALF_GROUP, QUAD, VNNI_NR as NR};

/// Rows per register tile: 12 int32 sums and 12 f32 sums (3 rows × 4 registers each), four
/// weight registers and a broadcast, 29 of the 32 registers. Four rows with the f32 sums in
/// memory ran 15–25% slower on a Zen 4 (the compiler spilled within the steps; Q8_0 LM head
/// 424–446 against 536–543 GFLOP/s), six spilled their int sums.
pub(super) const MR: usize = 3;

/// [`tile`] for `rows` rows (at most [`MR`]), fetching the next panel if the tile has one,
/// with offsets if it has them.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn tile_rows(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        const HALF: usize = HALF_GROUP / QUAD;
        const WHOLE: usize = GROUP / QUAD;
        match (t.next.is_null(), t.offsets.is_some(), t.half_groups) {
            (true, false, false) => tile_height::<false, false, WHOLE>(t, rows),
            (true, true, false) => tile_height::<false, true, WHOLE>(t, rows),
            (false, false, false) => tile_height::<true, false, WHOLE>(t, rows),
            (false, true, false) => tile_height::<true, true, WHOLE>(t, rows),
            (true, false, true) => tile_height::<false, false, HALF>(t, rows),
            (true, true, true) => tile_height::<false, true, HALF>(t, rows),
            (false, false, true) => tile_height::<true, false, HALF>(t, rows),
            (false, true, true) => tile_height::<true, true, HALF>(t, rows),
        }
    }
}

/// [`tile`] for `rows` rows.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_height<const PREFETCH: bool, const OFFSETS: bool, const STEPS: usize>(
    t: &Tile,
    rows: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match rows {
            3 => tile::<3, PREFETCH, OFFSETS, STEPS>(t),
            2 => tile::<2, PREFETCH, OFFSETS, STEPS>(t),
            _ => tile::<1, PREFETCH, OFFSETS, STEPS>(t),
        }
    }
}

/// One tile of `R` rows: per weight group, its `STEPS` steps of `vpdpbusd` into int32 sums
/// started at `−shift × Σ xq` (so they end as `Σ xq·v`), then scaled into the f32 sums,
/// both in registers; at the end the f32 sums (plus the bias) stored.
///
/// Never inlined: as a function of its own, each tile is compiled the same way whatever
/// the code around it. Inlined into [`tile_rows`], one build kept the f32 sums in memory and
/// ran 10% slower than another from the same source.
///
/// # Safety
/// The CPU has the instructions; the tile's pointers are valid for `R` rows of its shape.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline(never)]
unsafe fn tile<const R: usize, const PREFETCH: bool, const OFFSETS: bool, const STEPS: usize>(
    t: &Tile,
) {
    let groups = t.k / (STEPS * QUAD);
    let mut f32_sums = [[_mm512_setzero_ps(); 4]; R];
    // SAFETY: the caller's contract.
    unsafe {
        for g in 0..groups {
            // The group's first step starts each row's sums at `−shift × Σ xq` (one
            // register per row until then); the others add to them.
            let mut acc = [[_mm512_setzero_si512(); 4]; R];
            step::<R, PREFETCH>(t, g * STEPS, true, &mut acc, |i| {
                _mm512_set1_epi32(-t.shift * t.row_group::<STEPS>(i, g).1)
            });
            for s in 1..STEPS {
                step::<R, PREFETCH>(t, g * STEPS + s, false, &mut acc, |_| {
                    _mm512_setzero_si512()
                });
            }
            let scales = t.scales.add(g * NR);
            for (i, (row, out)) in acc.iter().zip(f32_sums.iter_mut()).enumerate() {
                let (sx, sum) = t.row_group::<STEPS>(i, g);
                let scale = _mm512_set1_ps(sx);
                let taken = _mm512_set1_ps(if OFFSETS { sx * sum as f32 } else { 0.0 });
                for (j, (a, o)) in row.iter().zip(out.iter_mut()).enumerate() {
                    let s = _mm512_mul_ps(_mm512_load_ps(scales.add(16 * j)), scale);
                    let mut v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(*a), s, *o);
                    if OFFSETS {
                        let off = _mm512_load_ps(t.offsets.unwrap_unchecked().add(g * NR + 16 * j));
                        v = _mm512_fnmadd_ps(off, taken, v);
                    }
                    *o = v;
                }
            }
        }
        let mut sums = Sums::<R, NR>([[0.0; NR]; R]);
        for (row, out) in f32_sums.iter().zip(sums.0.iter_mut()) {
            for (j, v) in row.iter().enumerate() {
                _mm512_store_ps(out.as_mut_ptr().add(16 * j), *v);
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
unsafe fn step<const R: usize, const PREFETCH: bool>(
    t: &Tile,
    s: usize,
    first: bool,
    acc: &mut [[__m512i; 4]; R],
    start: impl Fn(usize) -> __m512i,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = s * NR * QUAD;
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
            let xb = _mm512_set1_epi32(t.quad(i, s));
            let begin = if first { Some(start(i)) } else { None };
            for (a, w) in row.iter_mut().zip(&w) {
                *a = _mm512_dpbusd_epi32(begin.unwrap_or(*a), *w, xb);
            }
        }
    }
}
