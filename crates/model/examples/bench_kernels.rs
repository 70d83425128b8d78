//! GFLOP/s of the packed inference matmuls on the active kernel path (`DATM_CPU` forces one):
//! Gemma-3-270M's decode shapes (40 rows = 8 prompts × 5 beams) by default, or XLM-R
//! large's (COMET's encoder, 512 rows = a batch of 16 sentences of 32 tokens) with `xlmr`:
//! `DATM_CPU=avx2 cargo run --release -p datm-model --example bench_kernels [xlmr]`; a number
//! instead sets the decode rows (`20`: the last batch of 4 prompts of 12 at batch size 8).
//! Gemma's shapes run as int8 products of GGUF blocks (where the path has them), from f32 and
//! bf16 panels, and from the GGUF blocks widened in cache (as `--dtype f32` decodes).
//! With `train`, Gemma-3-270M's frozen projections at a training micro-batch (256 rows) and
//! its LM head at 100 labelled rows, forward (`x·Wᵀ`) and backward (`∂y·W`), on the packed
//! kernels (f32 and bf16; the head also from Q8_0 blocks, as training packs it) against
//! candle's matmul.

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use datm_model::cpu;
use datm_model::kernels::{PackedMatrix, Precision};

const GEMMA: [(&str, usize, usize); 6] = [
    ("q_proj", 1024, 640),
    ("k_proj", 256, 640),
    ("o_proj", 640, 1024),
    ("gate_proj", 2048, 640),
    ("down_proj", 640, 2048),
    ("lm_head", 262_144, 640),
];

fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let isa = cpu::active()?;
    let bf16 = match isa {
        cpu::Isa::Amx => "AMX tiles",
        _ if isa.bf16_dot() => "vdpbf16ps",
        _ => "widened",
    };
    println!("kernel path: {isa} (bf16: {bf16})");
    if mode == "train" {
        return training_shapes();
    }
    let encoder = [
        ("qkv", 3072, 1024),
        ("attn_out", 1024, 1024),
        ("up", 4096, 1024),
        ("down", 1024, 4096),
    ];
    let (m, shapes): (usize, &[(&str, usize, usize)]) = match mode.as_str() {
        "xlmr" => (512, &encoder),
        rows => (rows.parse().unwrap_or(40), &GEMMA),
    };
    if isa.int8_products() {
        // The int8 products take GGUF int8 blocks: each shape as Gemma-3-270M's Q4_K_M file
        // stores it (the head Q8_0, q/k/gate/up Q5_0, o and down Q4_K), as Q8_0, and the
        // down projection as Q6_K, as the file stores half of them (Q6_K's blocks of 256
        // inputs do not divide the other shapes' 640).
        for &(name, n, k) in shapes {
            let w = values(n * k, 97);
            let gemma = gemma_dtype(name);
            let q8_0 = (gemma != GgmlDType::Q8_0).then_some(GgmlDType::Q8_0);
            let q6_k = (name == "down_proj").then_some(GgmlDType::Q6K);
            for dtype in std::iter::once(gemma).chain(q8_0).chain(q6_k) {
                let blocks =
                    QTensor::quantize(&Tensor::from_slice(&w, (n, k), &Device::Cpu)?, dtype)?;
                let packed =
                    PackedMatrix::pack_int_blocks(dtype, &blocks.data()?, n, k, Precision::Int8)?;
                let s = packed_seconds(&packed, &values(m * k, 89), m)?;
                report(&format!("{dtype:?} Int8 {name}"), m, n, k, s);
            }
        }
    }
    for precision in [Precision::F32, Precision::Bf16] {
        for &(name, n, k) in shapes {
            let packed = PackedMatrix::pack(&values(n * k, 97), n, k, precision)?;
            let s = packed_seconds(&packed, &values(m * k, 89), m)?;
            report(&format!("{precision:?} {name}"), m, n, k, s);
            if name == "lm_head" {
                // Gemma-3's tied head as its GGUF stores it (Q8_0), packed as decoding does.
                let blocks = q8_0_blocks(&values(n * k, 97));
                let packed = PackedMatrix::pack_q8_0(&blocks, n, k, precision)?;
                let s = packed_seconds(&packed, &values(m * k, 89), m)?;
                report(&format!("Q8_0 {precision:?} {name}"), m, n, k, s);
            } else if shapes == GEMMA {
                // The projection as Gemma-3-270M's GGUF stores it, its blocks widened to
                // `precision` in cache (as `--dtype f32` decodes it).
                let dtype = gemma_dtype(name);
                let blocks = QTensor::quantize(
                    &Tensor::from_slice(&values(n * k, 97), (n, k), &Device::Cpu)?,
                    dtype,
                )?;
                let packed =
                    PackedMatrix::pack_int_blocks(dtype, &blocks.data()?, n, k, precision)?;
                let s = packed_seconds(&packed, &values(m * k, 89), m)?;
                report(&format!("{dtype:?} {precision:?} {name}"), m, n, k, s);
            }
        }
    }
    Ok(())
}

/// The type Gemma-3-270M's Q4_K_M GGUF stores projection `name` in (most layers'; some
/// keep Q6_K or Q8_0).
fn gemma_dtype(name: &str) -> GgmlDType {
    match name {
        "lm_head" => GgmlDType::Q8_0,
        "o_proj" | "down_proj" => GgmlDType::Q4K,
        _ => GgmlDType::Q5_0,
    }
}

/// Forward and backward shapes of the frozen projections at a micro-batch of 256 rows, and
/// of the LM head at the 100 labelled rows the loss needs: packed in f32 and bf16 (the
/// backward pass through the head sums 262,144 input features), against candle's f32 matmul
/// (the projections).
fn training_shapes() -> anyhow::Result<()> {
    for &(name, n, k) in &GEMMA {
        let m = if name == "lm_head" { 100 } else { 256 };
        let w = values(n * k, 97);
        // The tied head as Gemma-3's GGUF stores it (Q8_0), packed as training does.
        let q8_0 = (name == "lm_head").then(|| q8_0_blocks(&w));
        for (pass, n, k, w) in [("fwd", n, k, w.clone()), ("bwd", k, n, transpose(&w, n, k))] {
            let x = values(m * k, 89);
            for precision in [Precision::F32, Precision::Bf16] {
                let packed = PackedMatrix::pack(&w, n, k, precision)?;
                let s = packed_seconds(&packed, &x, m)?;
                report(&format!("{precision:?} {pass} {name}"), m, n, k, s);
            }
            if let Some(blocks) = &q8_0 {
                let packed = if pass == "fwd" {
                    PackedMatrix::pack_q8_0(blocks, n, k, Precision::F32)?
                } else {
                    PackedMatrix::pack_q8_0_transposed(blocks, k, n, Precision::F32)?
                };
                let s = packed_seconds(&packed, &x, m)?;
                report(&format!("Q8_0 F32 {pass} {name}"), m, n, k, s);
                continue;
            }
            let (xt, wt) = (
                Tensor::from_vec(x, (m, k), &Device::Cpu)?,
                Tensor::from_vec(w, (n, k), &Device::Cpu)?,
            );
            let s = seconds(|| {
                std::hint::black_box(xt.matmul(&wt.t()?)?);
                Ok(())
            })?;
            report(&format!("candle {pass} {name}"), m, n, k, s);
        }
    }
    Ok(())
}

/// Seconds per call of `x · packedᵀ` over `m` rows.
fn packed_seconds(packed: &PackedMatrix, x: &[f32], m: usize) -> anyhow::Result<f64> {
    let mut out = vec![0f32; m * packed.n()];
    seconds(|| {
        packed.matmul_t_into(x, m, &mut out)?;
        std::hint::black_box(&out);
        Ok(())
    })
}

/// Seconds per call of `f`: the best of five windows of about 0.3 s of calls each (at
/// least one call per window, after one warm-up), so that a moment of noise on a shared
/// machine does not decide the figure.
fn seconds(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let (t, mut reps) = (Instant::now(), 0);
        while reps == 0 || (t.elapsed().as_secs_f64() < 0.3 && reps < 2000) {
            f()?;
            reps += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(best)
}

fn report(label: &str, m: usize, n: usize, k: usize, s: f64) {
    let flop = 2.0 * (m * n * k) as f64;
    println!(
        "{label:20} {m}×{n}×{k}: {:8.1} µs/call, {:6.1} GFLOP/s",
        s * 1e6,
        flop / s / 1e9
    );
}

/// `len` deterministic values in [-0.5, 0.5) with period `period`.
fn values(len: usize, period: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (i % period) as f32 / period as f32 - 0.5)
        .collect()
}

/// GGUF Q8_0 blocks (an f16 scale, then 32 int8 values) of a row-major matrix whose rows
/// are whole blocks.
fn q8_0_blocks(w: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(w.len() / 32 * 34);
    for block in w.chunks_exact(32) {
        let scale = block.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(scale).to_le_bytes());
        out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
    }
    out
}

/// The `[n, k]` row-major matrix `w` as `[k, n]`.
fn transpose(w: &[f32], n: usize, k: usize) -> Vec<f32> {
    (0..k)
        .flat_map(|j| (0..n).map(move |i| w[i * k + j]))
        .collect()
}
