//! This CPU's arithmetic peak on each SIMD kernel path it runs, measured: independent f32
//! FMAs (AVX-512 `vfmadd231ps zmm`, AVX2 `vfmadd231ps ymm`, NEON `fmla .4s`), AVX-512
//! bf16 dot products (`vdpbf16ps`), int8 products (AVX512-VNNI `vpdpbusd`, on the
//! `avx2vnni` path `vpdpbusd ymm`, else AVX2 `vpmaddubsw`) and AMX tile
//! products (`tdpbf16ps`) on every thread, no memory traffic. Prints one JSON line
//! `{"threads", "paths": {PATH: {"f32_gflops", "bf16_gflops", "int8_gops", "default_bf16",
//! "default_int8"}}}` (bf16 and int8 null without the instruction; `default_bf16` and
//! `default_int8`: whether the path packs a quantized model so by default,
//! [`Isa::packs_bf16_by_default`], [`Isa::packs_int8_by_default`]) for the benchmarks'
//! utilisation figures;
//! `DATM_CPU` limits it to one path: `cargo run --release -p datm-model --example cpu_peak [THREADS]`.

use std::time::Instant;

use datm_model::cpu::{self, Isa};
use serde_json::{json, Map, Value};

/// Loop iterations per thread.
const ITERS: u64 = 20_000_000;

fn main() -> anyhow::Result<()> {
    let threads: usize = match std::env::args().nth(1) {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism()?.get(),
    };
    let forced = std::env::var(cpu::ENV).is_ok_and(|v| !v.trim().is_empty());
    let paths = if forced {
        vec![cpu::active()?]
    } else {
        cpu::available()
    };
    let mut out = Map::new();
    for isa in paths {
        if let Some(mut rates) = peak(isa, threads) {
            rates["default_bf16"] = isa.packs_bf16_by_default().into();
            rates["default_int8"] = isa.packs_int8_by_default().into();
            out.insert(isa.name().into(), rates);
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no SIMD kernel path to measure on this CPU"
    );
    println!("{}", json!({"threads": threads, "paths": out}));
    Ok(())
}

/// The f32 (and bf16) GFLOP/s of path `isa`; `None` for the scalar path.
fn peak(isa: Isa, threads: usize) -> Option<Value> {
    // SAFETY (each loop below): `cpu::available` / `cpu::active` only hand out paths the
    // CPU runs, and each loop uses only its path's instructions.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // f32 FMA: 16 lanes × 2 flops; bf16 dot: 16 lanes × 2 products × 2 flops; int8
            // dot: 16 lanes × 4 products × 2 operations.
            let f32_gflops = rate(threads, 12.0 * 32.0, || unsafe { x86::fma512(ITERS) });
            let bf16 = isa
                .bf16_dot()
                .then(|| rate(threads, 12.0 * 64.0, || unsafe { x86::dpbf16(ITERS) }));
            let int8 = if isa.int8_dot() {
                Some(rate(threads, 12.0 * 128.0, || unsafe {
                    x86::dpbusd(ITERS)
                }))
            } else {
                isa.int8_products().then(|| maddubs_rate(threads))
            };
            Some(json!({"f32_gflops": f32_gflops, "bf16_gflops": bf16, "int8_gops": int8}))
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Amx => {
            // f32 as on the AVX-512 path; bf16: four 16×16×32 tile products per iteration.
            let f32_gflops = rate(threads, 12.0 * 32.0, || unsafe { x86::fma512(ITERS) });
            let amx = rate(threads, 4.0 * 16.0 * 16.0 * 32.0 * 2.0, || {
                datm_model::amx::dot_product_loop(ITERS).expect("the AMX path runs here")
            });
            Some(json!({"f32_gflops": f32_gflops, "bf16_gflops": amx}))
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // 8 lanes × 2 flops.
            let f32_gflops = rate(threads, 12.0 * 16.0, || unsafe { x86::fma256(ITERS) });
            let int8 = isa.int8_products().then(|| maddubs_rate(threads));
            Some(json!({"f32_gflops": f32_gflops, "bf16_gflops": null, "int8_gops": int8}))
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Vnni => {
            // f32 as on the AVX2 path; int8 dot: 8 lanes × 4 products × 2 operations, in the
            // encoding the path's kernel uses.
            let f32_gflops = rate(threads, 12.0 * 16.0, || unsafe { x86::fma256(ITERS) });
            let dot: unsafe fn(u64) = if std::is_x86_feature_detected!("avxvnni") {
                x86::dpbusd256_vex
            } else {
                x86::dpbusd256_evex
            };
            let int8 = rate(threads, 12.0 * 64.0, || unsafe { dot(ITERS) });
            Some(json!({"f32_gflops": f32_gflops, "bf16_gflops": null, "int8_gops": int8}))
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // 4 lanes × 2 flops, 16 instructions per iteration.
            let f32_gflops = rate(threads, 16.0 * 8.0, || unsafe { neon::fmla(ITERS) });
            Some(json!({"f32_gflops": f32_gflops, "bf16_gflops": null}))
        }
        _ => None,
    }
}

/// GFLOP/s of `body` (`ITERS` iterations of `flops_per_iter`) run on `threads` threads at
/// once, the best of ten runs of ~30 ms: the clock of a shared machine varies, and the best
/// of three read the first path measured up to 25% low on a 2-core VM.
fn rate(threads: usize, flops_per_iter: f64, body: impl Fn() + Sync) -> f64 {
    let once = || {
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(&body);
            }
        });
        threads as f64 * ITERS as f64 * flops_per_iter / t.elapsed().as_secs_f64() / 1e9
    };
    (0..10).map(|_| once()).fold(0.0, f64::max)
}

/// The int8 products' rate on AVX2 (`vpmaddubsw ymm`: 16 lanes × 2 products × 2 operations),
/// on a path whose CPU has AVX2 ([`Isa::int8_products`]).
#[cfg(target_arch = "x86_64")]
fn maddubs_rate(threads: usize) -> f64 {
    // SAFETY: called only for paths with the int8 products, whose CPUs have AVX2.
    rate(threads, 12.0 * 64.0, || unsafe { x86::maddubs(ITERS) })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// An unsafe fn running `iters` times twelve independent `INSTR R0..R11, R14, R15`
    /// (accumulator chains: enough to cover the latency on two pipes).
    macro_rules! peak_loop {
        ($(#[$doc:meta])* $name:ident, $instr:literal, $r:literal, $features:literal) => {
            $(#[$doc])*
            ///
            /// # Safety
            /// The CPU has the instructions the function enables.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(iters: u64) {
                // SAFETY: the caller's contract; the loop touches no memory and declares
                // every register it writes.
                unsafe {
                    std::arch::asm!(
                        concat!("vxorps ", $r, "14, ", $r, "14, ", $r, "14"),
                        concat!("vxorps ", $r, "15, ", $r, "15, ", $r, "15"),
                        "2:",
                        concat!($instr, " ", $r, "0, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "1, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "2, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "3, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "4, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "5, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "6, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "7, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "8, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "9, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "10, ", $r, "14, ", $r, "15"),
                        concat!($instr, " ", $r, "11, ", $r, "14, ", $r, "15"),
                        "dec {n}",
                        "jnz 2b",
                        n = inout(reg) iters => _,
                        out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                        out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                        out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                        out("xmm14") _, out("xmm15") _,
                        options(nostack, nomem),
                    );
                }
            }
        };
    }

    peak_loop!(
        /// AVX-512 f32 FMAs.
        fma512,
        "vfmadd231ps",
        "zmm",
        "avx512f"
    );
    peak_loop!(
        /// AVX-512 bf16 dot products.
        dpbf16,
        "vdpbf16ps",
        "zmm",
        "avx512f,avx512bf16"
    );
    peak_loop!(
        /// AVX512-VNNI int8 dot products.
        dpbusd,
        "vpdpbusd",
        "zmm",
        "avx512f,avx512vnni"
    );
    peak_loop!(
        /// AVX-VNNI int8 dot products on 256-bit registers.
        dpbusd256_vex,
        "{{vex}} vpdpbusd",
        "ymm",
        "avx2,avxvnni"
    );
    peak_loop!(
        /// AVX512-VNNI int8 dot products on 256-bit registers.
        dpbusd256_evex,
        "vpdpbusd",
        "ymm",
        "avx2,avx512vl,avx512vnni"
    );
    peak_loop!(
        /// AVX2 int8 products (unsigned times signed bytes, pairs summed into int16).
        maddubs,
        "vpmaddubsw",
        "ymm",
        "avx2"
    );
    peak_loop!(
        /// AVX2 f32 FMAs.
        fma256,
        "vfmadd231ps",
        "ymm",
        "avx2,fma"
    );
}

#[cfg(target_arch = "aarch64")]
mod neon {
    /// `iters` times sixteen independent `fmla vN.4s, v30.4s, v31.4s` (four FMA pipes of
    /// latency four on the widest cores).
    ///
    /// # Safety
    /// The CPU has NEON.
    pub(super) unsafe fn fmla(iters: u64) {
        // SAFETY: the caller's contract; the loop touches no memory and declares every
        // register it writes.
        unsafe {
            std::arch::asm!(
                "movi v30.4s, #0",
                "movi v31.4s, #0",
                "2:",
                "fmla v0.4s, v30.4s, v31.4s", "fmla v1.4s, v30.4s, v31.4s",
                "fmla v2.4s, v30.4s, v31.4s", "fmla v3.4s, v30.4s, v31.4s",
                "fmla v4.4s, v30.4s, v31.4s", "fmla v5.4s, v30.4s, v31.4s",
                "fmla v6.4s, v30.4s, v31.4s", "fmla v7.4s, v30.4s, v31.4s",
                "fmla v16.4s, v30.4s, v31.4s", "fmla v17.4s, v30.4s, v31.4s",
                "fmla v18.4s, v30.4s, v31.4s", "fmla v19.4s, v30.4s, v31.4s",
                "fmla v20.4s, v30.4s, v31.4s", "fmla v21.4s, v30.4s, v31.4s",
                "fmla v22.4s, v30.4s, v31.4s", "fmla v23.4s, v30.4s, v31.4s",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                n = inout(reg) iters => _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _,
                out("v5") _, out("v6") _, out("v7") _, out("v16") _, out("v17") _,
                out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _,
                out("v23") _, out("v30") _, out("v31") _,
                options(nostack, nomem),
            );
        }
    }
}
