//! Microseconds per call of the fused decoding attention (`attend`) on the active kernel path
//! (`DATM_CPU` forces one) at Gemma-3-270M's decode shape: 40 rows (8 prompts × 5 beams), one
//! kv head of 4 query heads, 256 values per head, the cached keys (the first argument, 60 by
//! default) in a buffer with room for more (the KV cache's layout):
//! `DATM_CPU=avx2 cargo run --release -p datm-model --example bench_attend [KEYS]`.

use std::time::Instant;

use candle_core::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    let (rows, rep, d) = (40, 4, 256);
    let keys: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let dev = Device::Cpu;
    let q = Tensor::randn(0f32, 1.0, (rows, 1, rep, d), &dev)?;
    let k = Tensor::randn(0f32, 1.0, (rows, 1, keys + 64, d), &dev)?.narrow(2, 0, keys)?;
    let v = Tensor::randn(0f32, 1.0, (rows, 1, keys + 64, d), &dev)?.narrow(2, 0, keys)?;
    let mask = Tensor::zeros((rows, 1, 1, 1, keys), candle_core::DType::F32, &dev)?;
    println!("kernel path: {}", datm_model::cpu::active()?);
    for _ in 0..3 {
        let calls = 2000;
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(datm_model::attend::attend(&q, &k, &v, &mask, 0.0625, None)?);
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / calls as f64;
        println!("attend {rows} rows × {rep} heads × {keys} keys × {d}: {us:.1} µs/call");
    }
    Ok(())
}
