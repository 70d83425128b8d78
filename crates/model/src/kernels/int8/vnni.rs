//! The int8 products' AVX512-VNNI kernel ([`super::Form::Vnni`]): per group, eight steps of
//! `vpdpbusd` (64 products each: four inputs of 16 columns) into int32 sums, then scaled
//! into f32.

use std::arch::x86_64::*;

use super::{Sums, Tile, GROUP, QUAD, VNNI_NR as NR};

/// Rows per register tile: 16 int32 sums (4 rows × 4 registers), four weight registers and
/// a broadcast (6 rows spilled their sums to the stack).
pub(super) const MR: usize = 4;

/// [`tile`] for `rows` rows (at most [`MR`]), fetching the next panel if the tile has one,
/// with offsets if it has them.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn tile_rows(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match (t.next.is_null(), t.offsets.is_some()) {
            (true, false) => tile_height::<false, false>(t, rows),
            (true, true) => tile_height::<false, true>(t, rows),
            (false, false) => tile_height::<true, false>(t, rows),
            (false, true) => tile_height::<true, true>(t, rows),
        }
    }
}

/// [`tile`] for `rows` rows.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_height<const PREFETCH: bool, const OFFSETS: bool>(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match rows {
            4 => tile::<4, PREFETCH, OFFSETS>(t),
            3 => tile::<3, PREFETCH, OFFSETS>(t),
            2 => tile::<2, PREFETCH, OFFSETS>(t),
            _ => tile::<1, PREFETCH, OFFSETS>(t),
        }
    }
}

/// One tile of `R` rows: per group, eight steps of `vpdpbusd` into int32 sums started at
/// `−shift × Σ xq` (so they end as `Σ xq·v`), then scaled into the f32 sums; at the end the
/// f32 sums (plus the bias) stored.
///
/// # Safety
/// The CPU has the instructions; the tile's pointers are valid for `R` rows of its shape.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const R: usize, const PREFETCH: bool, const OFFSETS: bool>(t: &Tile) {
    let groups = t.k / GROUP;
    let mut sums = Sums::<R, NR>([[0.0; NR]; R]);
    // Through a pointer the compiler cannot see through, so that the sums stay in memory:
    // kept in registers, they pushed the int32 sums onto the stack (a third slower).
    let rows = std::hint::black_box(sums.0.as_mut_ptr());
    // SAFETY: the caller's contract; `rows` points to the `R` rows of `sums`.
    unsafe {
        for g in 0..groups {
            // Step 0 starts each row's sums at `−shift × Σ xq` (one register per row
            // until then); the other seven add to them.
            let mut acc = [[_mm512_setzero_si512(); 4]; R];
            step::<R, PREFETCH>(t, g, 0, &mut acc, |i| {
                _mm512_set1_epi32(-t.shift * t.row_group(i, g).1)
            });
            for s in 1..GROUP / QUAD {
                step::<R, PREFETCH>(t, g, s, &mut acc, |_| _mm512_setzero_si512());
            }
            let scales = t.scales.add(g * NR);
            for (i, row) in acc.iter().enumerate() {
                let out = &mut *rows.add(i);
                let (sx, sum) = t.row_group(i, g);
                let scale = _mm512_set1_ps(sx);
                let taken = _mm512_set1_ps(if OFFSETS { sx * sum as f32 } else { 0.0 });
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
        t.store(&mut sums.0);
    }
}

/// Step `s` of group `g` (four inputs of each row): the sums `acc` gain the products of
/// the step's weights and each row's inputs; a sum is `start(row)` plus them at step 0.
///
/// # Safety
/// As [`tile`].
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
            let xb = _mm512_set1_epi32(t.quad(i, g, s));
            let first = if s == 0 { Some(start(i)) } else { None };
            for (a, w) in row.iter_mut().zip(&w) {
                *a = _mm512_dpbusd_epi32(first.unwrap_or(*a), *w, xb);
            }
        }
    }
}
