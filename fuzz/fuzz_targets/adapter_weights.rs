//! PEFT `adapter_model.safetensors` under a fixed config (the tiny-llama fixture's): tensor
//! names, factor pairing, ranks, and the check against a base model
//! (`datm_adapter::Adapter::from_safetensors`, `check_against`).
#![no_main]

use datm_adapter::{Adapter, LoraConfig};

const CONFIG: &str = include_str!("../../tests/fixtures/model/tiny-llama-lora/adapter_config.json");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let config = LoraConfig::from_json(CONFIG, "fixture").expect("the fixture config is valid");
    let Ok(adapter) = Adapter::from_safetensors(config, data, "fuzz.safetensors") else {
        return;
    };
    let base: Vec<(&str, (usize, usize))> = adapter
        .modules
        .iter()
        .map(|(name, pair)| (name.as_str(), pair.base_shape()))
        .collect();
    let _ = adapter.check_against(base);
    for (name, pair) in &adapter.modules {
        let (out, inp) = pair.base_shape();
        // ΔW is as large as the base weight; only small ones are worth computing here.
        if out.saturating_mul(inp) <= 1 << 16 {
            let _ = adapter.delta_weight(name);
        }
    }
});
