//! The int8 products' aarch64 kernel ([`super::Form::Sdot`]), for CPUs with the dot-product
//! extension (FEAT_DotProd: Apple's cores, Neoverse N1 and later, so Graviton 2 on): per
//! weight group, its steps (eight, or four for groups of 16) of `sdot` by element (a row's four inputs times four signed bytes of
//! each of a register's 4 columns: 16 products into four int32 lanes, where `fmla` does 4
//! f32 products) into int32 sums, then scaled into f32 in the x86 kernels' order, so the
//! outputs are theirs bit for bit. `sdot` is written as inline assembly: Rust's intrinsic
//! for it is not stable.

use std::arch::aarch64::*;
use std::arch::asm;

use super::{Sums, Tile, GROUP, HALF_GROUP, QUAD, SDOT_NR as NR};

/// Rows per register tile: 16 int32 sums (4 rows × 4 registers), four weight registers and
/// a row's sixteen inputs (four steps) per row, 24 of the 32 registers.
pub(super) const MR: usize = 4;

/// Registers of four panel columns in a step.
const REGS: usize = NR / 4;

/// [`tile`] for `rows` rows (at most [`MR`]), fetching the next panel if the tile has one.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "neon,dotprod")]
pub(super) unsafe fn tile_rows(t: &Tile, rows: usize) {
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
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_height<const STEPS: usize>(t: &Tile, rows: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match (t.next.is_null(), rows) {
            (true, 4) => tile::<4, false, STEPS>(t),
            (true, 3) => tile::<3, false, STEPS>(t),
            (true, 2) => tile::<2, false, STEPS>(t),
            (true, _) => tile::<1, false, STEPS>(t),
            (false, 4) => tile::<4, true, STEPS>(t),
            (false, 3) => tile::<3, true, STEPS>(t),
            (false, 2) => tile::<2, true, STEPS>(t),
            (false, _) => tile::<1, true, STEPS>(t),
        }
    }
}

/// One tile of `R` rows: per weight group, its `STEPS` steps into int32 sums (signed values: no
/// shift to take back), scaled into the f32 sums as [`super::vnni`] scales them (the scale
/// product, one fused multiply-add, then the offsets' fused multiply-subtract); at the end
/// the f32 sums (plus the bias) stored.
///
/// # Safety
/// The CPU has NEON and the dot-product extension; the tile's pointers are valid for `R`
/// rows of its shape.
#[target_feature(enable = "neon,dotprod")]
// Never inlined, as `vnni`'s tiles: compiled the same whatever the code around them.
#[inline(never)]
unsafe fn tile<const R: usize, const PREFETCH: bool, const STEPS: usize>(t: &Tile) {
    debug_assert_eq!(t.shift, 0, "sdot panels hold the values as they are");
    let groups = t.k / (STEPS * QUAD);
    let mut sums = Sums::<R, NR>([[0.0; NR]; R]);
    // In memory, as the x86 kernels keep them: the int sums take the registers.
    let rows = std::hint::black_box(sums.0.as_mut_ptr());
    // SAFETY: the caller's contract; `rows` points to the `R` rows of `sums`.
    unsafe {
        for g in 0..groups {
            let mut acc = [[vdupq_n_s32(0); REGS]; R];
            // Four steps per load of each row's inputs (16 bytes), one lane each.
            for quarter in 0..STEPS / 4 {
                let s = g * STEPS + 4 * quarter;
                let x: [int8x16_t; R] = std::array::from_fn(|i| vld1q_s8(t.inputs(i, s)));
                step::<R, PREFETCH, 0>(t, s, &x, &mut acc);
                step::<R, PREFETCH, 1>(t, s + 1, &x, &mut acc);
                step::<R, PREFETCH, 2>(t, s + 2, &x, &mut acc);
                step::<R, PREFETCH, 3>(t, s + 3, &x, &mut acc);
            }
            let scales = t.scales.add(g * NR);
            for (i, row) in acc.iter().enumerate() {
                let out = &mut *rows.add(i);
                let (sx, sum) = t.row_group::<STEPS>(i, g);
                let taken = vdupq_n_f32(sx * sum as f32);
                for (j, a) in row.iter().enumerate() {
                    let o = out.as_mut_ptr().add(4 * j);
                    let s = vmulq_n_f32(vld1q_f32(scales.add(4 * j)), sx);
                    let mut v = vfmaq_f32(vld1q_f32(o), vcvtq_f32_s32(*a), s);
                    if let Some(offsets) = t.offsets {
                        v = vfmsq_f32(v, vld1q_f32(offsets.add(g * NR + 4 * j)), taken);
                    }
                    vst1q_f32(o, v);
                }
            }
        }
        t.store(&mut sums.0);
    }
}

/// Step `s` of the panel: the sums `acc` gain the products of the step's weights and each
/// row's inputs, lane `LANE` of the row's register in `x`.
///
/// # Safety
/// As [`tile`].
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn step<const R: usize, const PREFETCH: bool, const LANE: i32>(
    t: &Tile,
    s: usize,
    x: &[int8x16_t; R],
    acc: &mut [[int32x4_t; REGS]; R],
) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = s * NR * QUAD;
        if PREFETCH {
            asm!(
                "prfm pldl2keep, [{0}]",
                in(reg) t.next.add(at),
                options(nostack, readonly, preserves_flags)
            );
        }
        let w: [int8x16_t; REGS] =
            std::array::from_fn(|j| vld1q_s8(t.w.add(at + 16 * j).cast::<i8>()));
        for (row, x) in acc.iter_mut().zip(x) {
            for (a, w) in row.iter_mut().zip(&w) {
                *a = sdot::<LANE>(*a, *w, *x);
            }
        }
    }
}

/// `acc` plus, in lane `c`, the products of bytes `4c..4c + 4` of `w` and bytes
/// `4·LANE..4·LANE + 4` of `x` (signed): `sdot` by element.
///
/// # Safety
/// The CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot<const LANE: i32>(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: registers only; the caller's contract for the instruction.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}
