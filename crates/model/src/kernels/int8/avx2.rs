//! The int8 products' AVX2 kernel ([`super::Form::Unsigned`], [`super::Form::Signed`]): per
//! step, `vpmaddubsw` multiplies a row's four inputs by four unsigned bytes of 8 columns per
//! register (32 products, pairs added into int16), summed in int16 over a weight group's
//! steps (eight, or four for groups of 16) where the form keeps them below 2^15, else
//! widened into int32 (`vpmaddwd`) at each step; per group the int32 sums are scaled into
//! f32.

use std::arch::x86_64::*;

use super::{Sums, Tile, AVX2_NR as NR, GROUP, HALF_GROUP, QUAD};

/// Rows per register tile: 8 int16 sums (4 rows × 2 registers), the step's two weight
/// registers (and their magnitudes), a broadcast and the products leave one of the 16
/// registers.
pub(super) const MR: usize = 4;

/// [`tile`] for `rows` rows (at most [`MR`]), fetching the next panel if the tile has one:
/// signed values (magnitudes times the inputs with the values' signs) if `SIGNED`, else
/// unsigned ones, summed in int16 over whole groups if `WHOLE_GROUP`.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile_rows<const SIGNED: bool, const WHOLE_GROUP: bool>(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        if t.half_groups {
            tile_height::<{ HALF_GROUP / QUAD }, SIGNED, WHOLE_GROUP>(t, rows)
        } else {
            tile_height::<{ GROUP / QUAD }, SIGNED, WHOLE_GROUP>(t, rows)
        }
    }
}

/// [`tile`] for `rows` rows, with groups of `STEPS` steps.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_height<const STEPS: usize, const SIGNED: bool, const WHOLE_GROUP: bool>(
    t: &Tile,
    rows: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match (t.next.is_null(), rows) {
            (true, 4) => tile::<4, false, STEPS, SIGNED, WHOLE_GROUP>(t),
            (true, 3) => tile::<3, false, STEPS, SIGNED, WHOLE_GROUP>(t),
            (true, 2) => tile::<2, false, STEPS, SIGNED, WHOLE_GROUP>(t),
            (true, _) => tile::<1, false, STEPS, SIGNED, WHOLE_GROUP>(t),
            (false, 4) => tile::<4, true, STEPS, SIGNED, WHOLE_GROUP>(t),
            (false, 3) => tile::<3, true, STEPS, SIGNED, WHOLE_GROUP>(t),
            (false, 2) => tile::<2, true, STEPS, SIGNED, WHOLE_GROUP>(t),
            (false, _) => tile::<1, true, STEPS, SIGNED, WHOLE_GROUP>(t),
        }
    }
}

/// One tile of `R` rows: per weight group, its `STEPS` steps into int16 or int32 sums,
/// scaled into the f32 sums ([`scale_into`]); at the end the f32 sums (plus the bias)
/// stored.
///
/// # Safety
/// The CPU has AVX2 and FMA; the tile's pointers are valid for `R` rows of its shape.
#[target_feature(enable = "avx2,fma")]
// Never inlined, as `vnni`'s tiles: compiled the same whatever the code around them.
#[inline(never)]
unsafe fn tile<
    const R: usize,
    const PREFETCH: bool,
    const STEPS: usize,
    const SIGNED: bool,
    const WHOLE_GROUP: bool,
>(
    t: &Tile,
) {
    let groups = t.k / (STEPS * QUAD);
    let mut sums = Sums::<R, NR>([[0.0; NR]; R]);
    // In memory, as the VNNI kernel keeps them: the int sums take the registers.
    let rows = std::hint::black_box(sums.0.as_mut_ptr());
    // SAFETY: the caller's contract; `rows` points to the `R` rows of `sums`.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        for g in 0..groups {
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for s in 0..STEPS {
                step::<R, PREFETCH, SIGNED, WHOLE_GROUP>(t, g * STEPS + s, s == 0, &mut acc);
            }
            for (i, row) in acc.iter().enumerate() {
                for (j, &a) in row.iter().enumerate() {
                    let a = if WHOLE_GROUP {
                        _mm256_madd_epi16(a, ones)
                    } else {
                        a
                    };
                    scale_into::<STEPS>(t, g, i, j, a, &mut *rows.add(i));
                }
            }
        }
        t.store(&mut sums.0);
    }
}

/// Step `s` of the panel (four inputs of each row): the sums `acc` gain the products of the
/// step's weights and each row's inputs (they start at them at a group's `first` step):
/// int16 sums of the `vpmaddubsw` pairs if `WHOLE_GROUP`, else int32 sums of their pairs.
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn step<
    const R: usize,
    const PREFETCH: bool,
    const SIGNED: bool,
    const WHOLE_GROUP: bool,
>(
    t: &Tile,
    s: usize,
    first: bool,
    acc: &mut [[__m256i; 2]; R],
) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = s * NR * QUAD;
        if PREFETCH {
            _mm_prefetch::<_MM_HINT_T1>(t.next.add(at).cast());
        }
        let wp = t.w.add(at).cast::<__m256i>();
        let w = [_mm256_load_si256(wp), _mm256_load_si256(wp.add(1))];
        // `vpmaddubsw` takes unsigned bytes: signed values' magnitudes (−128's is 128).
        let magnitudes = if SIGNED {
            [_mm256_abs_epi8(w[0]), _mm256_abs_epi8(w[1])]
        } else {
            w
        };
        for (i, row) in acc.iter_mut().enumerate() {
            let xb = _mm256_set1_epi32(t.quad(i, s));
            for ((a, w), m) in row.iter_mut().zip(&w).zip(&magnitudes) {
                let x = if SIGNED { _mm256_sign_epi8(xb, *w) } else { xb };
                let p = _mm256_maddubs_epi16(*m, x);
                *a = match (WHOLE_GROUP, first) {
                    (true, true) => p,
                    (true, false) => _mm256_add_epi16(*a, p),
                    (false, true) => _mm256_madd_epi16(p, _mm256_set1_epi16(1)),
                    (false, false) => {
                        _mm256_add_epi32(*a, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
                    }
                };
            }
        }
    }
}

/// The int32 sums `a` of row `i`, weight group `g` (of `STEPS` steps), panel columns
/// `8j..8j + 8` (values plus the tile's shift times the inputs), less `shift × Σ xq`,
/// scaled by the weight's and the row's scales into the f32 sums `row`, less the weight's
/// offsets times the row's scaled `Σ xq` where the weight has them.
///
/// # Safety
/// The CPU has AVX2 and FMA; row `i` is one of the tile's.
#[inline(always)]
unsafe fn scale_into<const STEPS: usize>(
    t: &Tile,
    g: usize,
    i: usize,
    j: usize,
    a: __m256i,
    row: &mut [f32; NR],
) {
    // SAFETY: the caller's contract; the panel's scales (and offsets) hold `NR` per group.
    unsafe {
        let (sx, sum) = t.row_group::<STEPS>(i, g);
        let a = if t.shift == 0 {
            a
        } else {
            _mm256_add_epi32(a, _mm256_set1_epi32(-t.shift * sum))
        };
        let o = row.as_mut_ptr().add(8 * j);
        let s = _mm256_mul_ps(
            _mm256_load_ps(t.scales.add(g * NR + 8 * j)),
            _mm256_set1_ps(sx),
        );
        let mut v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), s, _mm256_load_ps(o));
        if let Some(offsets) = t.offsets {
            let taken = _mm256_set1_ps(sx * sum as f32);
            v = _mm256_fnmadd_ps(_mm256_load_ps(offsets.add(g * NR + 8 * j)), taken, v);
        }
        _mm256_store_ps(o, v);
    }
}
