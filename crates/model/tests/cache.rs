//! The KV cache: decoding token by token (buffers growing past their chunk, rows reordered
//! and padded) gives the logits of a full forward pass.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use datm_model::{KvCache, LoadOptions, Model};

fn model(name: &str) -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model")
        .join(name);
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    Model::load(&dir, &opts).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn incremental_decoding_matches_full_forward() {
    for name in ["tiny-llama", "tiny-gemma3"] {
        let m = model(name);
        let seq: Vec<u32> = (0..150u32).map(|i| (i * 7 + 3) % 400 + 10).collect();
        let full = m.logits(&seq, None).unwrap();
        // Two rows of different prompt lengths, stacked (left padding), then one token per step.
        let mut a = m.new_cache(1);
        m.step(&[seq[..5].to_vec()], &mut a, None).unwrap();
        let mut b = m.new_cache(1);
        m.step(&[seq[..9].to_vec()], &mut b, None).unwrap();
        let mut cache = KvCache::stack(&[a, b]).unwrap();
        // Swap the rows at every step to exercise reordering (and the reused buffers).
        let mut pos = [5usize, 9];
        while pos.iter().any(|&p| p < seq.len()) {
            cache.select_rows(&[1, 0]).unwrap();
            pos.swap(0, 1);
            let ids: Vec<Vec<u32>> = pos
                .iter()
                .map(|&p| vec![seq[p.min(seq.len() - 1)]])
                .collect();
            let logits = m.step(&ids, &mut cache, None).unwrap();
            for (r, &p) in pos.iter().enumerate().filter(|(_, &p)| p < seq.len()) {
                let (row, want) = (logits.get(r).unwrap(), full.get(p).unwrap());
                assert!(max_diff(&row, &want) < 1e-4, "{name} row {r} position {p}");
            }
            pos = pos.map(|p| p + 1);
        }
    }
}
