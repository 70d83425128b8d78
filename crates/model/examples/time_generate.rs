//! Times loading, prefill and decoding of `datm_model::generate` on a model and JSONL prompts:
//! `cargo run --release -p datm-model --example time_generate -- MODEL PROMPTS.jsonl BEAMS MAX_NEW [f32]`.

use std::time::Instant;

use datm_model::{generate, GenerationConfig, LoadOptions, Model};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 5,
        "usage: MODEL PROMPTS.jsonl BEAMS MAX_NEW [f32|bf16]"
    );
    let dtype = match args.get(5).map(String::as_str) {
        Some("f32") => Some(datm_model::candle_core::DType::F32),
        Some("bf16") => Some(datm_model::candle_core::DType::BF16),
        _ => None,
    };
    let t = Instant::now();
    let opts = LoadOptions {
        dtype,
        quantized: dtype.is_none(),
        keep_int_blocks: false,
        ..LoadOptions::default()
    };
    let model = Model::load_for_inference(std::path::Path::new(&args[1]), &opts)?;
    eprintln!("load: {:.2}s", t.elapsed().as_secs_f64());
    let tok = model.tokenizer()?;
    let prompts: Vec<Vec<u32>> = std::fs::read_to_string(&args[2])?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            tok.encode(v["prompt"].as_str().unwrap_or_default(), true)
        })
        .collect::<anyhow::Result<_>>()?;
    let cfg = GenerationConfig {
        num_beams: args[3].parse()?,
        max_new_tokens: args[4].parse()?,
        batch_size: prompts.len(),
        ..GenerationConfig::default()
    };
    let t = Instant::now();
    for p in &prompts {
        model.logits(p, None)?;
    }
    eprintln!(
        "prefill (all positions, sequential): {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let out = generate(&model, &prompts, &cfg, &mut |_| {})?;
    let secs = t.elapsed().as_secs_f64();
    let new: usize = out.iter().map(|g| g.token_ids.len()).sum();
    eprintln!(
        "generate: {secs:.2}s, {new} new tokens, {:.1} tok/s",
        new as f64 / secs
    );
    for g in &out {
        println!("{:?}", tok.decode(&g.token_ids, true)?);
    }
    Ok(())
}
