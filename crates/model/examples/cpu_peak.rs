//! This CPU's arithmetic peak, measured: independent AVX-512 f32 FMAs (`vfmadd231ps`) and
//! bf16 dot products (`vdpbf16ps`) on every thread, no memory traffic. Prints one JSON line
//! `{"threads", "f32_gflops", "bf16_gflops"}` (bf16 null without AVX512-BF16) for the
//! benchmarks' utilisation figures:
//! `cargo run --release -p datm-model --example cpu_peak [THREADS]`.

use std::time::Instant;

/// Loop iterations per thread; each runs 12 independent 512-bit instructions.
const ITERS: u64 = 20_000_000;

fn main() -> anyhow::Result<()> {
    let threads: usize = match std::env::args().nth(1) {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism()?.get(),
    };
    #[cfg(target_arch = "x86_64")]
    {
        anyhow::ensure!(
            std::is_x86_feature_detected!("avx512f"),
            "this CPU has no AVX-512"
        );
        let bf16 = std::is_x86_feature_detected!("avx512bf16");
        // f32 FMA: 16 lanes × 2 flops; bf16 dot: 16 lanes × 2 products × 2 flops.
        let f32_gflops = rate(threads, 32.0, || unsafe { fma_loop(ITERS) });
        let bf16_gflops = bf16.then(|| rate(threads, 64.0, || unsafe { dpbf16_loop(ITERS) }));
        println!(
            "{}",
            serde_json::json!({"threads": threads, "f32_gflops": f32_gflops, "bf16_gflops": bf16_gflops})
        );
        Ok(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    anyhow::bail!("only x86-64 is measured (threads: {threads})")
}

/// GFLOP/s of `body` run on `threads` threads at once, the best of three runs (the clock
/// of a shared machine varies).
fn rate(threads: usize, flops_per_instr: f64, body: impl Fn() + Sync) -> f64 {
    let once = || {
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(&body);
            }
        });
        threads as f64 * ITERS as f64 * 12.0 * flops_per_instr / t.elapsed().as_secs_f64() / 1e9
    };
    (0..3).map(|_| once()).fold(0.0, f64::max)
}

/// An unsafe fn running `iters` times twelve independent `INSTR zmmN, zmm30, zmm31`
/// (accumulator chains: enough to cover the latency on two pipes).
macro_rules! peak_loop {
    ($(#[$doc:meta])* $name:ident, $instr:literal, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(iters: u64) {
            std::arch::asm!(
                "vxorps xmm30, xmm30, xmm30",
                "vxorps xmm31, xmm31, xmm31",
                "2:",
                concat!($instr, " zmm0, zmm30, zmm31"), concat!($instr, " zmm1, zmm30, zmm31"),
                concat!($instr, " zmm2, zmm30, zmm31"), concat!($instr, " zmm3, zmm30, zmm31"),
                concat!($instr, " zmm4, zmm30, zmm31"), concat!($instr, " zmm5, zmm30, zmm31"),
                concat!($instr, " zmm6, zmm30, zmm31"), concat!($instr, " zmm7, zmm30, zmm31"),
                concat!($instr, " zmm8, zmm30, zmm31"), concat!($instr, " zmm9, zmm30, zmm31"),
                concat!($instr, " zmm10, zmm30, zmm31"), concat!($instr, " zmm11, zmm30, zmm31"),
                "dec {n}",
                "jnz 2b",
                n = inout(reg) iters => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
                out("zmm10") _, out("zmm11") _, out("zmm30") _, out("zmm31") _,
                options(nostack),
            );
        }
    };
}

peak_loop!(
    /// f32 FMAs.
    fma_loop,
    "vfmadd231ps",
    "avx512f"
);
peak_loop!(
    /// bf16 dot products.
    dpbf16_loop,
    "vdpbf16ps",
    "avx512f,avx512bf16"
);
