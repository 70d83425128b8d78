//! Continuous batching with mixed adapters: prompts on different adapters (and the base
//! model), with different settings, joining a running batch at step boundaries, decode
//! exactly as each would alone with `generate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use datm_adapter::{Adapter, LoraPair};
use datm_model::generate::{DecodeRequest, Decoder};
use datm_model::{generate, Generation, GenerationConfig, LoadOptions, Model};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

/// The fixture model packed for inference (as the engine serves it), with the fixture
/// adapter as `a` and a second, different adapter `b` (the fixture's factors scaled).
fn model_with_two_adapters(name: &str) -> Model {
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    let mut m = Model::load(&fixtures().join(name), &opts).unwrap();
    m.pack_for_inference().unwrap();
    let a = Adapter::load(&fixtures().join(format!("{name}-lora"))).unwrap();
    let modules = a
        .modules
        .iter()
        .map(|(k, p)| {
            let pair = LoraPair {
                a: (&p.a * -1.5).unwrap(),
                b: (&p.b * 2.0).unwrap(),
            };
            (k.clone(), pair)
        })
        .collect();
    let b = Adapter::new(a.config.clone(), modules).unwrap();
    m.attach_adapter("a", &a).unwrap();
    m.attach_adapter("b", &b).unwrap();
    m
}

fn cfg(adapter: Option<&str>, beams: usize, max_new_tokens: usize) -> GenerationConfig {
    GenerationConfig {
        adapter: adapter.map(str::to_string),
        num_beams: beams,
        max_new_tokens,
        batch_size: 1,
        ..GenerationConfig::default()
    }
}

/// What `generate` gives one prompt alone.
fn alone(m: &Model, prompt: &[u32], c: &GenerationConfig) -> Generation {
    generate(m, &[prompt.to_vec()], c, &mut |_| {})
        .unwrap()
        .remove(0)
}

fn mixed_batch_equals_alone(name: &str) {
    let m = model_with_two_adapters(name);
    let prompts: [&[u32]; 6] = [
        &[5, 17, 33, 48],
        &[90, 7, 12],
        &[64, 3, 250, 11, 19, 27, 8],
        &[40, 41],
        &[99, 98, 97, 96, 95],
        &[7, 7, 7],
    ];
    let adapters = [Some("a"), Some("b"), None, Some("b"), Some("a"), None];
    // Greedy and beam rows, with different limits so they finish at different steps.
    let settings: Vec<GenerationConfig> = (0..prompts.len())
        .map(|i| cfg(adapters[i], if i % 2 == 0 { 3 } else { 1 }, 4 + 3 * i))
        .collect();
    let expected: Vec<Generation> = (0..prompts.len())
        .map(|i| alone(&m, prompts[i], &settings[i]))
        .collect();
    // The adapters change the outputs, so the test tells adapters apart.
    let base = alone(&m, prompts[0], &cfg(None, 3, 4));
    assert_ne!(
        expected[0].token_ids, base.token_ids,
        "{name}: adapter a is a no-op"
    );

    let mut decoder = Decoder::new(&m, 0);
    let request = |i: usize| DecodeRequest {
        id: i as u64,
        prompt: prompts[i].to_vec(),
        cfg: Arc::new(settings[i].clone()),
    };
    // Three join at once, the others one by one at later steps.
    decoder.add((0..3).map(request).collect()).unwrap();
    let mut got: Vec<Option<Generation>> = vec![None; prompts.len()];
    let mut next = 3;
    let mut steps = 0;
    while !decoder.is_empty() || next < prompts.len() {
        if next < prompts.len() && steps % 2 == 1 {
            decoder.add(vec![request(next)]).unwrap();
            next += 1;
        }
        for (id, g) in decoder.step().unwrap() {
            got[id as usize] = Some(g);
        }
        steps += 1;
        assert!(steps < 200, "{name}: decoding does not end");
    }
    for (i, (g, e)) in got.into_iter().zip(&expected).enumerate() {
        assert_eq!(
            g.as_ref(),
            Some(e),
            "{name}: prompt {i} ({:?})",
            adapters[i]
        );
    }
}

#[test]
fn mixed_adapters_decode_as_alone_llama() {
    mixed_batch_equals_alone("tiny-llama");
}

#[test]
fn mixed_adapters_decode_as_alone_gemma3() {
    mixed_batch_equals_alone("tiny-gemma3");
}

#[test]
fn retained_prompts_are_unaffected_by_dropped_ones() {
    let m = model_with_two_adapters("tiny-llama");
    let c = Arc::new(cfg(Some("a"), 2, 8));
    let expected = alone(&m, &[5, 6, 7], &c);
    let mut decoder = Decoder::new(&m, 0);
    decoder
        .add(vec![
            DecodeRequest {
                id: 1,
                prompt: vec![9, 10, 11, 12, 13],
                cfg: Arc::new(cfg(Some("b"), 1, 8)),
            },
            DecodeRequest {
                id: 2,
                prompt: vec![5, 6, 7],
                cfg: c.clone(),
            },
        ])
        .unwrap();
    decoder.step().unwrap();
    decoder.retain(|id| id != 1).unwrap();
    assert_eq!(decoder.len(), 1);
    let mut out = Vec::new();
    while !decoder.is_empty() {
        out.extend(decoder.step().unwrap());
    }
    assert_eq!(out, vec![(2, expected)]);
    assert_eq!(decoder.rows(), 0, "a finished batch frees its cache");
}

#[test]
fn an_unknown_adapter_is_refused_when_added() {
    let m = model_with_two_adapters("tiny-llama");
    let mut decoder = Decoder::new(&m, 0);
    let err = decoder
        .add(vec![DecodeRequest {
            id: 0,
            prompt: vec![1, 2],
            cfg: Arc::new(cfg(Some("zz"), 1, 4)),
        }])
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("no adapter named `zz`"),
        "{err:#}"
    );
}

/// A prompt decodes to the same bits alone and batched beside longer and shorter prompts
/// (which pad it), on an adapter: neither the attention's sums nor the adapter's products
/// may depend on the batch around a row.
fn padding_does_not_change_decoding(name: &str) {
    let m = model_with_two_adapters(name);
    let prompt: Vec<u32> = vec![7, 7, 7];
    for beams in [1, 3] {
        let c = cfg(Some("b"), beams, 19);
        let expected = alone(&m, &prompt, &c);
        // Longer prompts pad it on the left by 1 to 9 positions, a shorter one not at all.
        let longer = [64, 3, 250, 11, 19, 27, 8, 5, 17, 33, 48, 90];
        for other in (4..=longer.len())
            .map(|n| longer[..n].to_vec())
            .chain([vec![1, 2]])
        {
            let batched = GenerationConfig {
                batch_size: 2,
                ..c.clone()
            };
            let got = generate(&m, &[prompt.clone(), other.clone()], &batched, &mut |_| {})
                .unwrap()
                .remove(0);
            assert_eq!(got, expected, "{name}, {beams} beams, beside {other:?}");
        }
    }
}

#[test]
fn padding_does_not_change_decoding_llama() {
    padding_does_not_change_decoding("tiny-llama");
}

#[test]
fn padding_does_not_change_decoding_gemma3() {
    padding_does_not_change_decoding("tiny-gemma3");
}
