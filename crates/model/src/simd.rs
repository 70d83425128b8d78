//! One SIMD register type per kernel path behind the [`Vector`] trait, so that each kernel
//! (GEMM tiles, `exp`, dot products, …) is written once, generically, and compiled for
//! every instruction set: [`run`] enters a function compiled with the path's target
//! features and runs a [`Task`] there with that path's register type.
//!
//! Everything below the entry point is `#[inline(always)]`: a function that is not inlined
//! into the entry does not inherit its target features and would call every intrinsic out
//! of line. For the same reason the kernels use no closures.

use crate::cpu::Isa;

/// A register of [`Vector::LANES`] f32 lanes.
///
/// # Safety
/// Every method runs the path's instructions: callers guarantee that the CPU has them
/// (which [`run`] checks once for the whole task).
pub(crate) trait Vector: Copy {
    /// f32 lanes per register.
    const LANES: usize;
    /// The registers of one row of a GEMM register tile.
    type Row: Copy + AsRef<[Self]> + AsMut<[Self]>;
    /// Output columns of a GEMM tile row: `LANES × Row length`.
    const NR: usize;
    /// A tile row with every lane `v`.
    unsafe fn row(v: f32) -> Self::Row;
    /// Every lane `v`.
    unsafe fn splat(v: f32) -> Self;
    /// `LANES` values from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self;
    /// `LANES` bf16 values from `p`, widened exactly to f32.
    unsafe fn load_bf16(p: *const u16) -> Self;
    /// `LANES` int8 values from `p`, widened exactly to f32.
    unsafe fn load_i8(p: *const i8) -> Self;
    /// Stores the lanes at `p` (unaligned).
    unsafe fn store(self, p: *mut f32);
    /// Lane-wise `self + o`.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise `self − o`.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise `self · o`.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise `self / o`.
    unsafe fn div(self, o: Self) -> Self;
    /// Lane-wise minimum.
    unsafe fn min(self, o: Self) -> Self;
    /// Lane-wise maximum.
    unsafe fn max(self, o: Self) -> Self;
    /// `self · b + c` with one rounding (FMA).
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// Rounded to the nearest integer, ties to even.
    unsafe fn round(self) -> Self;
    /// `2^self` for lanes holding integers in `-126..=127`.
    unsafe fn pow2(self) -> Self;
    /// `self` with the lanes where `x < bar` set to 0.
    unsafe fn zero_where_below(self, x: Self, bar: f32) -> Self;
    /// A bit per lane (lane 0 lowest): set where the lane is not `<= bar` (NaN included).
    unsafe fn above(self, bar: f32) -> u32;
    /// Hints that the cache line at `p` will be read soon.
    #[inline(always)]
    unsafe fn prefetch(_p: *const i8) {}
}

/// The lanes of `v`, in order.
#[inline(always)]
pub(crate) unsafe fn lanes<V: Vector>(v: V) -> [f32; 16] {
    let mut buf = [0f32; 16];
    // SAFETY: `buf` holds at least `LANES` (≤ 16) values; the caller guarantees the CPU.
    unsafe { v.store(buf.as_mut_ptr()) };
    buf
}

/// Work that runs on any path: [`run`] calls [`Task::run`] with the path's register type.
pub(crate) trait Task {
    /// What the task returns.
    type Out;
    /// Runs the task with registers `V`; implementations are `#[inline(always)]`.
    ///
    /// # Safety
    /// The CPU runs `V`'s instructions.
    unsafe fn run<V: Vector>(self) -> Self::Out;
}

/// Runs `task` on path `isa` (on the scalar path if the CPU cannot run `isa`, which
/// [`crate::cpu`] never hands out).
pub(crate) fn run<T: Task>(isa: Isa, task: T) -> T::Out {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the guard checked the CPU features the entry enables.
        Isa::Avx512 | Isa::Amx if isa.runs_here() => unsafe { x86::on_avx512(task) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 | Isa::Avx2Vnni if isa.runs_here() => unsafe { x86::on_avx2(task) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        Isa::Neon if isa.runs_here() => unsafe { neon::on_neon(task) },
        // SAFETY: the scalar type uses no special instructions.
        _ => unsafe { task.run::<Scalar>() },
    }
}

/// One f32 in a general-purpose register: the portable path (FMAs as `f32::mul_add`).
#[derive(Clone, Copy)]
pub(crate) struct Scalar(f32);

impl Vector for Scalar {
    const LANES: usize = 1;
    type Row = [Scalar; 16];
    const NR: usize = 16;
    #[inline(always)]
    unsafe fn row(v: f32) -> Self::Row {
        [Scalar(v); 16]
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Scalar(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller hands a readable pointer.
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self {
        // SAFETY: as above.
        Scalar(f32::from_bits(u32::from(unsafe { *p }) << 16))
    }
    #[inline(always)]
    unsafe fn load_i8(p: *const i8) -> Self {
        // SAFETY: as above.
        Scalar(f32::from(unsafe { *p }))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller hands a writable pointer.
        unsafe { *p = self.0 }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Scalar(self.0 / o.0)
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        Scalar(self.0.min(o.0))
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        Scalar(self.0.max(o.0))
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        Scalar(self.0.mul_add(b.0, c.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        Scalar(self.0.round_ties_even())
    }
    #[inline(always)]
    unsafe fn pow2(self) -> Self {
        Scalar(f32::from_bits(((self.0 as i32 + 127) as u32) << 23))
    }
    #[inline(always)]
    unsafe fn zero_where_below(self, x: Self, bar: f32) -> Self {
        if x.0 < bar {
            Scalar(0.0)
        } else {
            self
        }
    }
    #[inline(always)]
    // `!(x <= bar)`, not `x > bar`: a NaN counts as above, as in the vector paths' compares.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    unsafe fn above(self, bar: f32) -> u32 {
        u32::from(!(self.0 <= bar))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! AVX2+FMA (`Ymm`) and AVX-512F (`Zmm`) registers.
    use super::{Task, Vector};
    use std::arch::x86_64::*;

    /// Enters AVX-512F code.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn on_avx512<T: Task>(task: T) -> T::Out {
        // SAFETY: the caller guarantees AVX-512F, all `Zmm` uses.
        unsafe { task.run::<Zmm>() }
    }

    /// Enters AVX2+FMA code.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn on_avx2<T: Task>(task: T) -> T::Out {
        // SAFETY: the caller guarantees AVX2 and FMA, all `Ymm` uses.
        unsafe { task.run::<Ymm>() }
    }

    /// 16 lanes of AVX-512; GEMM tile rows of 4 registers (64 columns).
    #[derive(Clone, Copy)]
    pub(crate) struct Zmm(pub(crate) __m512);

    /// 8 lanes of AVX2; GEMM tile rows of 2 registers (16 columns: 6 × 2 accumulators,
    /// 2 weight registers and a broadcast fit the 16 ymm registers).
    #[derive(Clone, Copy)]
    pub(crate) struct Ymm(__m256);

    // SAFETY (every `unsafe` block below): the trait's contract, the CPU has the
    // instructions; pointers are the caller's, valid for `LANES` values.
    impl Vector for Zmm {
        const LANES: usize = 16;
        type Row = [Zmm; 4];
        const NR: usize = 64;
        #[inline(always)]
        unsafe fn row(v: f32) -> Self::Row {
            // SAFETY: see above.
            [unsafe { Self::splat(v) }; 4]
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> Self {
            // SAFETY: see above.
            Zmm(unsafe {
                let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
            })
        }
        #[inline(always)]
        unsafe fn load_i8(p: *const i8) -> Self {
            // SAFETY: see above.
            Zmm(unsafe {
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p as *const __m128i)))
            })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: see above.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn add(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn sub(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn div(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_div_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn min(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn max(self, o: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe {
                _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        unsafe fn pow2(self) -> Self {
            // SAFETY: see above.
            Zmm(unsafe {
                let e = _mm512_add_epi32(_mm512_cvtps_epi32(self.0), _mm512_set1_epi32(127));
                _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
            })
        }
        #[inline(always)]
        unsafe fn zero_where_below(self, x: Self, bar: f32) -> Self {
            // SAFETY: see above.
            Zmm(unsafe {
                let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x.0, _mm512_set1_ps(bar));
                _mm512_maskz_mov_ps(!below, self.0)
            })
        }
        #[inline(always)]
        unsafe fn above(self, bar: f32) -> u32 {
            // SAFETY: see above.
            u32::from(unsafe { _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(self.0, _mm512_set1_ps(bar)) })
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const i8) {
            // SAFETY: a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
        }
    }

    impl Vector for Ymm {
        const LANES: usize = 8;
        type Row = [Ymm; 2];
        const NR: usize = 16;
        #[inline(always)]
        unsafe fn row(v: f32) -> Self::Row {
            // SAFETY: see above.
            [unsafe { Self::splat(v) }; 2]
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> Self {
            // SAFETY: see above.
            Ymm(unsafe {
                let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
            })
        }
        #[inline(always)]
        unsafe fn load_i8(p: *const i8) -> Self {
            // SAFETY: see above (8 bytes).
            Ymm(unsafe {
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)))
            })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: see above.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn add(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn sub(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn div(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_div_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn min(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn max(self, o: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe {
                _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        unsafe fn pow2(self) -> Self {
            // SAFETY: see above.
            Ymm(unsafe {
                let e = _mm256_add_epi32(_mm256_cvtps_epi32(self.0), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
            })
        }
        #[inline(always)]
        unsafe fn zero_where_below(self, x: Self, bar: f32) -> Self {
            // SAFETY: see above.
            Ymm(unsafe {
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(x.0, _mm256_set1_ps(bar));
                _mm256_andnot_ps(below, self.0)
            })
        }
        #[inline(always)]
        unsafe fn above(self, bar: f32) -> u32 {
            // SAFETY: see above.
            unsafe {
                let m = _mm256_cmp_ps::<_CMP_NLE_UQ>(self.0, _mm256_set1_ps(bar));
                _mm256_movemask_ps(m) as u32
            }
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const i8) {
            // SAFETY: a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    //! Advanced SIMD (`Q`) registers.
    use super::{Task, Vector};
    use std::arch::aarch64::*;

    /// Enters NEON code.
    ///
    /// # Safety
    /// The CPU has NEON.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn on_neon<T: Task>(task: T) -> T::Out {
        // SAFETY: the caller guarantees NEON, all `Q` uses.
        unsafe { task.run::<Q>() }
    }

    /// 4 lanes of NEON; GEMM tile rows of 4 registers (16 columns: 6 × 4 accumulators,
    /// 4 weight registers and a broadcast fit the 32 vector registers).
    #[derive(Clone, Copy)]
    pub(crate) struct Q(float32x4_t);

    // SAFETY (every `unsafe` block below): the trait's contract, the CPU has NEON;
    // pointers are the caller's, valid for 4 values.
    impl Vector for Q {
        const LANES: usize = 4;
        type Row = [Q; 4];
        const NR: usize = 16;
        #[inline(always)]
        unsafe fn row(v: f32) -> Self::Row {
            // SAFETY: see above.
            [unsafe { Self::splat(v) }; 4]
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: see above.
            Q(unsafe { vdupq_n_f32(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: see above.
            Q(unsafe { vld1q_f32(p) })
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> Self {
            // SAFETY: see above.
            Q(unsafe { vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(p))) })
        }
        #[inline(always)]
        unsafe fn load_i8(p: *const i8) -> Self {
            // SAFETY: see above (4 bytes, read unaligned).
            Q(unsafe {
                let word = vdup_n_u32((p as *const u32).read_unaligned());
                let bytes = vmovl_s8(vreinterpret_s8_u32(word));
                vcvtq_f32_s32(vmovl_s16(vget_low_s16(bytes)))
            })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: see above.
            unsafe { vst1q_f32(p, self.0) }
        }
        #[inline(always)]
        unsafe fn add(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vaddq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn sub(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vsubq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vmulq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn div(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vdivq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn min(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vminq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn max(self, o: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vmaxq_f32(self.0, o.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vfmaq_f32(c.0, self.0, b.0) })
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: see above.
            Q(unsafe { vrndnq_f32(self.0) })
        }
        #[inline(always)]
        unsafe fn pow2(self) -> Self {
            // SAFETY: see above.
            Q(unsafe {
                let e = vaddq_s32(vcvtq_s32_f32(self.0), vdupq_n_s32(127));
                vreinterpretq_f32_s32(vshlq_n_s32::<23>(e))
            })
        }
        #[inline(always)]
        unsafe fn zero_where_below(self, x: Self, bar: f32) -> Self {
            // SAFETY: see above.
            Q(unsafe {
                let below = vcltq_f32(x.0, vdupq_n_f32(bar));
                vbslq_f32(below, vdupq_n_f32(0.0), self.0)
            })
        }
        #[inline(always)]
        unsafe fn above(self, bar: f32) -> u32 {
            // SAFETY: see above.
            let not_le = unsafe { vmvnq_u32(vcleq_f32(self.0, vdupq_n_f32(bar))) };
            let weights: [u32; 4] = [1, 2, 4, 8];
            // SAFETY: see above.
            unsafe { vaddvq_u32(vandq_u32(not_le, vld1q_u32(weights.as_ptr()))) }
        }
    }
}
