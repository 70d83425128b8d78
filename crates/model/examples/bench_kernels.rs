//! GFLOP/s of the packed inference matmuls on the active kernel path (`DATM_CPU` forces one):
//! Gemma-3-270M's decode shapes (40 rows = 8 prompts × 5 beams) by default, or XLM-R
//! large's (COMET's encoder, 512 rows = a batch of 16 sentences of 32 tokens) with `xlmr`:
//! `DATM_CPU=avx2 cargo run --release -p datm-model --example bench_kernels [xlmr]`.

use std::time::Instant;

use datm_model::cpu;
use datm_model::kernels::{PackedMatrix, Precision};

fn main() -> anyhow::Result<()> {
    let xlmr = std::env::args().nth(1).as_deref() == Some("xlmr");
    let m = if xlmr { 512 } else { 40 };
    let isa = cpu::active()?;
    let bf16 = if isa.bf16_dot() {
        "vdpbf16ps"
    } else {
        "widened"
    };
    println!("kernel path: {isa} (bf16: {bf16})");
    let gemma = [
        ("q_proj", 1024, 640),
        ("k_proj", 256, 640),
        ("o_proj", 640, 1024),
        ("gate_proj", 2048, 640),
        ("down_proj", 640, 2048),
        ("lm_head", 262_144, 640),
    ];
    let encoder = [
        ("qkv", 3072, 1024),
        ("attn_out", 1024, 1024),
        ("up", 4096, 1024),
        ("down", 1024, 4096),
    ];
    let shapes: &[(&str, usize, usize)] = if xlmr { &encoder } else { &gemma };
    for precision in [Precision::F32, Precision::Bf16] {
        for &(name, n, k) in shapes {
            let w: Vec<f32> = (0..n * k).map(|i| (i % 97) as f32 / 97.0 - 0.5).collect();
            let x: Vec<f32> = (0..m * k).map(|i| (i % 89) as f32 / 89.0 - 0.5).collect();
            let packed = PackedMatrix::pack(&w, n, k, precision)?;
            let flop = 2.0 * (m * n * k) as f64;
            let mut out = vec![0f32; m * n];
            packed.matmul_t_into(&x, m, &mut out)?;
            // Calls for about 0.3 s (at least one).
            let (t, mut reps) = (Instant::now(), 0);
            while reps == 0 || (t.elapsed().as_secs_f64() < 0.3 && reps < 2000) {
                packed.matmul_t_into(&x, m, &mut out)?;
                std::hint::black_box(&out);
                reps += 1;
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{precision:?} {name:10} {m}×{n}×{k}: {:8.1} µs/call, {:6.1} GFLOP/s",
                s * 1e6,
                flop / s / 1e9
            );
        }
    }
    Ok(())
}
