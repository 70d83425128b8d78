//! AMX tiles for the bf16 matrix products of [`crate::kernels`] on [`crate::cpu::Isa::Amx`].
//!
//! Intel's Advanced Matrix Extensions (Xeon from Sapphire Rapids on) add eight tile
//! registers of up to 16 rows × 64 bytes and `tdpbf16ps`, which adds the product of a
//! 16 × 32 bf16 tile of inputs and a 32 × 16 bf16 tile of weights (stored as 16 rows of 16
//! pairs of consecutive features) to a 16 × 16 f32 tile: 16 384 flops per instruction, an
//! order of magnitude more per core than AVX512-BF16's `vdpbf16ps` (`cpu_peak` on two cores of
//! a Xeon family 6 model 207: 2.6–4.4 TFLOP/s against 0.11–0.16). The packed weight of an
//! [`Isa::Amx`](crate::cpu::Isa::Amx) bf16 matrix is a row of [`NR`]-column panels; each
//! panel holds, for every 32 input features, the two 16-column weight tiles side by side
//! (2 KiB), so that a panel is one sequential stream. A block of up to 32 input rows times
//! one panel keeps its 32 × 32 sums in four tiles over all the input features and stores
//! them once.
//!
//! Linux hands the tile registers to a process only once it asks (`arch_prctl`), which
//! [`tiles_enabled`] does, once. The instructions are written as inline assembly: Rust has
//! no stable AMX intrinsics.

/// Output columns per packed panel: two 16-column weight tiles.
pub(crate) const NR: usize = 32;

/// Input features per tile step: one 64-byte row of bf16 inputs.
pub(crate) const STEP: usize = 32;

/// Input rows per tile.
pub(crate) const TILE_ROWS: usize = 16;

/// Where column `c` (`0..NR`), input feature `kk` of a panel sits in it: step `kk / 32`
/// holds the tile of columns 0–15, then that of columns 16–31, each 16 rows of 16
/// (feature `2i`, feature `2i + 1`) pairs.
pub(crate) fn index(c: usize, kk: usize) -> usize {
    let (step, f) = (kk / STEP, kk % STEP);
    ((step * 2 + c / TILE_ROWS) * TILE_ROWS + f / 2) * NR + (c % TILE_ROWS) * 2 + f % 2
}

/// One block's operands: input rows (bf16, `x_stride` bytes apart; 32 rows if
/// `two_row_tiles`, else 16, always readable), one panel (`steps` × 2 KiB), and where each
/// row's 32 f32 sums go (`out_stride` bytes apart).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Block {
    pub(crate) x: *const u8,
    pub(crate) x_stride: usize,
    pub(crate) two_row_tiles: bool,
    pub(crate) w: *const u8,
    pub(crate) steps: usize,
    pub(crate) out: *mut u8,
    pub(crate) out_stride: usize,
}

/// The f32 sums of one block: up to 32 rows × one panel's 32 columns.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(crate) struct Sums(pub(crate) [[f32; NR]; 2 * TILE_ROWS]);

#[cfg(target_arch = "x86_64")]
impl Default for Sums {
    fn default() -> Self {
        Sums([[0.0; NR]; 2 * TILE_ROWS])
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{tiles_enabled, Tiles};

/// Runs `iters` × four independent `tdpbf16ps` on this thread (no memory traffic), for
/// measuring the CPU's AMX peak: 65 536 flops per iteration. An error where the CPU or
/// the OS gives no AMX tiles.
pub fn dot_product_loop(iters: u64) -> anyhow::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if tiles_enabled() {
        // SAFETY: the tiles are enabled.
        unsafe { Tiles::configure().dot_products(iters) };
        return Ok(());
    }
    let _ = iters;
    anyhow::bail!("this CPU or OS gives no AMX tiles")
}

/// The 32 `prefetcht0` of the cache lines 4 KiB past `{w}`: the weights two steps ahead
/// (without them, a panel streams from memory at two thirds of the speed; a prefetch never
/// faults, also past the end of the weights).
#[cfg(target_arch = "x86_64")]
macro_rules! prefetch_ahead {
    () => {
        concat!(
            "prefetcht0 [{w} + 4096]\n",
            "prefetcht0 [{w} + 4160]\n",
            "prefetcht0 [{w} + 4224]\n",
            "prefetcht0 [{w} + 4288]\n",
            "prefetcht0 [{w} + 4352]\n",
            "prefetcht0 [{w} + 4416]\n",
            "prefetcht0 [{w} + 4480]\n",
            "prefetcht0 [{w} + 4544]\n",
            "prefetcht0 [{w} + 4608]\n",
            "prefetcht0 [{w} + 4672]\n",
            "prefetcht0 [{w} + 4736]\n",
            "prefetcht0 [{w} + 4800]\n",
            "prefetcht0 [{w} + 4864]\n",
            "prefetcht0 [{w} + 4928]\n",
            "prefetcht0 [{w} + 4992]\n",
            "prefetcht0 [{w} + 5056]\n",
            "prefetcht0 [{w} + 5120]\n",
            "prefetcht0 [{w} + 5184]\n",
            "prefetcht0 [{w} + 5248]\n",
            "prefetcht0 [{w} + 5312]\n",
            "prefetcht0 [{w} + 5376]\n",
            "prefetcht0 [{w} + 5440]\n",
            "prefetcht0 [{w} + 5504]\n",
            "prefetcht0 [{w} + 5568]\n",
            "prefetcht0 [{w} + 5632]\n",
            "prefetcht0 [{w} + 5696]\n",
            "prefetcht0 [{w} + 5760]\n",
            "prefetcht0 [{w} + 5824]\n",
            "prefetcht0 [{w} + 5888]\n",
            "prefetcht0 [{w} + 5952]\n",
            "prefetcht0 [{w} + 6016]\n",
            "prefetcht0 [{w} + 6080]\n",
        )
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::sync::OnceLock;

    use super::{Block, NR, STEP, TILE_ROWS};

    /// Whether this CPU has AMX-TILE and AMX-BF16 and this process may use the tiles
    /// (on Linux, asked for once per process); elsewhere false.
    pub(crate) fn tiles_enabled() -> bool {
        static ENABLED: OnceLock<bool> = OnceLock::new();
        *ENABLED.get_or_init(|| cpu_has_amx_bf16() && request_tile_data())
    }

    /// CPUID leaf 7: EDX bit 22 (AMX-BF16) and bit 24 (AMX-TILE).
    fn cpu_has_amx_bf16() -> bool {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        if __cpuid(0).eax < 7 {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        edx & (1 << 22) != 0 && edx & (1 << 24) != 0
    }

    /// Asks Linux for the tile data state (`ARCH_REQ_XCOMP_PERM`, `XFEATURE_XTILEDATA`); it
    /// holds for every thread of the process, from then on.
    #[cfg(target_os = "linux")]
    fn request_tile_data() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: this request only widens the register state the process may use; it
        // touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    /// Other systems: not used (their tile permissions are not handled here).
    #[cfg(not(target_os = "linux"))]
    fn request_tile_data() -> bool {
        false
    }

    /// The tile configuration `ldtilecfg` reads (palette 1).
    #[repr(C, align(64))]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// The tiles configured on this thread (all eight: 16 rows of 64 bytes), released when
    /// dropped so that the OS need not save them on a switch.
    pub(crate) struct Tiles(());

    impl Tiles {
        /// Configures the tiles of the calling thread.
        ///
        /// # Safety
        /// [`tiles_enabled`] returned true.
        pub(crate) unsafe fn configure() -> Tiles {
            let mut config = Config {
                palette: 1,
                start_row: 0,
                reserved: [0; 14],
                bytes_per_row: [0; 16],
                rows: [0; 16],
            };
            config.bytes_per_row[..8].fill(64);
            config.rows[..8].fill(TILE_ROWS as u8);
            // SAFETY: the caller's contract; the configuration is a valid palette-1 one.
            unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
            Tiles(())
        }

        /// Sums the rows of `b` times its panel over all its input steps and stores them.
        ///
        /// # Safety
        /// `b.x` is valid for the rows' `b.steps × 64` bytes, `b.w` for `b.steps × 2048`
        /// bytes, `b.out` for the rows' 128 bytes, `b.steps ≥ 1`.
        pub(crate) unsafe fn block(&self, b: &Block) {
            let Block {
                x,
                x_stride: ldx,
                two_row_tiles,
                w,
                steps,
                out,
                out_stride: ldo,
            } = *b;
            const { assert!(NR == 32 && STEP == 32 && TILE_ROWS == 16) };
            // SAFETY: the caller's contract; tiles 0–3 hold the sums, 4–5 inputs, 6–7
            // weights.
            unsafe {
                if two_row_tiles {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        "2:",
                        "tileloadd tmm4, [{x} + {ldx}*1]",
                        "tileloadd tmm5, [{x1} + {ldx}*1]",
                        "tileloadd tmm6, [{w} + {ldw}*1]",
                        "tileloadd tmm7, [{w} + {ldw}*1 + 1024]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        prefetch_ahead!(),
                        "add {x}, 64",
                        "add {x1}, 64",
                        "add {w}, 2048",
                        "dec {n}",
                        "jnz 2b",
                        "tilestored [{o} + {ldo}*1], tmm0",
                        "tilestored [{o} + {ldo}*1 + 64], tmm1",
                        "tilestored [{o1} + {ldo}*1], tmm2",
                        "tilestored [{o1} + {ldo}*1 + 64], tmm3",
                        x = inout(reg) x => _,
                        x1 = inout(reg) x.add(TILE_ROWS * ldx) => _,
                        w = inout(reg) w => _,
                        n = inout(reg) steps => _,
                        ldx = in(reg) ldx,
                        ldw = in(reg) 64usize,
                        o = in(reg) out,
                        o1 = in(reg) out.add(TILE_ROWS * ldo),
                        ldo = in(reg) ldo,
                        options(nostack),
                    );
                } else {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "2:",
                        "tileloadd tmm4, [{x} + {ldx}*1]",
                        "tileloadd tmm6, [{w} + {ldw}*1]",
                        "tileloadd tmm7, [{w} + {ldw}*1 + 1024]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        prefetch_ahead!(),
                        "add {x}, 64",
                        "add {w}, 2048",
                        "dec {n}",
                        "jnz 2b",
                        "tilestored [{o} + {ldo}*1], tmm0",
                        "tilestored [{o} + {ldo}*1 + 64], tmm1",
                        x = inout(reg) x => _,
                        w = inout(reg) w => _,
                        n = inout(reg) steps => _,
                        ldx = in(reg) ldx,
                        ldw = in(reg) 64usize,
                        o = in(reg) out,
                        ldo = in(reg) ldo,
                        options(nostack),
                    );
                }
            }
        }
    }

    impl Tiles {
        /// `iters` × `tdpbf16ps` into tiles 0–3 from zeroed tiles 4–7.
        pub(crate) fn dot_products(&self, iters: u64) {
            // SAFETY: the tiles are configured (`self`); the loop touches no memory.
            unsafe {
                asm!(
                    "tilezero tmm4",
                    "tilezero tmm5",
                    "tilezero tmm6",
                    "tilezero tmm7",
                    "2:",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "dec {n}",
                    "jnz 2b",
                    n = inout(reg) iters => _,
                    options(nostack, nomem),
                );
            }
        }
    }

    impl Drop for Tiles {
        fn drop(&mut self) {
            // SAFETY: the tiles were configured (`configure`); releasing them is always
            // valid then.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
        }
    }
}
