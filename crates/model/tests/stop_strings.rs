//! Stop strings against HF transformers' `generate(stop_strings=...)` on the tiny LLaMA
//! (fixture recorded by `tools/make_stop_fixtures.py`): greedy and 5-beam, with and without
//! the adapter, unbatched and all prompts of a setting in one batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use datm_adapter::Adapter;
use datm_model::generate::{StopCriterion, StopString};
use datm_model::{generate, GenerationConfig, LoadOptions, Model};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/model")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn model() -> Model {
    let opts = LoadOptions {
        dtype: Some(DType::F32),
        device: Device::Cpu,
        quantized: false,
        keep_int_blocks: false,
    };
    let mut m = Model::load(&fixtures().join("tiny-llama"), &opts).unwrap();
    let adapter = Adapter::load(&fixtures().join("tiny-llama-lora")).unwrap();
    m.attach_adapter("lora", &adapter).unwrap();
    m.pack_for_inference().unwrap();
    m
}

fn config(case: &Value, max_new_tokens: usize) -> GenerationConfig {
    let stops = case["stop_strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Arc::new(StopString(s.as_str().unwrap().into())) as Arc<dyn StopCriterion>)
        .collect();
    GenerationConfig {
        max_new_tokens,
        num_beams: case["num_beams"].as_u64().unwrap() as usize,
        adapter: case["adapter"]
            .as_bool()
            .unwrap()
            .then(|| "lora".to_string()),
        stops,
        ..GenerationConfig::default()
    }
}

#[test]
fn stop_strings_match_hf() {
    let path = fixtures().join("tiny-llama-stop.json");
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let max_new = exp["max_new_tokens"].as_u64().unwrap() as usize;
    let m = model();
    let cases = exp["cases"].as_array().unwrap();
    let mut stopped_early = 0;
    for case in cases {
        let cfg = config(case, max_new);
        let got = generate(&m, &[ids(&case["prompt_ids"])], &cfg, &mut |_| {}).unwrap();
        let want = ids(&case["token_ids"]);
        assert_eq!(got[0].token_ids, want, "{case}");
        stopped_early += usize::from(want.len() < max_new);
    }
    // The fixture exercises stops that fire, in greedy and beam search.
    assert!(stopped_early >= cases.len() / 3, "{stopped_early}");
    // Batched: every prompt of a setting decoded together gives the same rows.
    for case in cases
        .iter()
        .filter(|c| c["prompt_ids"] == cases[0]["prompt_ids"])
    {
        let same: Vec<&Value> = cases
            .iter()
            .filter(|c| {
                ["adapter", "stop_strings", "num_beams"]
                    .iter()
                    .all(|k| c[k] == case[k])
            })
            .collect();
        let prompts: Vec<Vec<u32>> = same.iter().map(|c| ids(&c["prompt_ids"])).collect();
        let got = generate(&m, &prompts, &config(case, max_new), &mut |_| {}).unwrap();
        for (g, c) in got.iter().zip(&same) {
            assert_eq!(g.token_ids, ids(&c["token_ids"]), "batched {c}");
        }
    }
}

#[test]
fn stop_string_must_overlap_the_newest_token() {
    let stop = StopString("stop".into());
    assert!(stop.is_stop("the st", "the stop"));
    assert!(stop.is_stop("las", "lastopper"));
    assert!(stop.is_stop("", "stop"));
    assert!(!stop.is_stop("stop", "stop at"));
    assert!(!stop.is_stop("st", "sta"));
    assert!(!StopString(String::new()).is_stop("a", "ab"));
    // Multi-byte text: the search starts on a character boundary.
    assert!(StopString("é\n".into()).is_stop("aé", "aé\n"));
    assert!(!StopString("\n".into()).is_stop("é\n", "é\nö"));
}
