//! PEFT `adapter_config.json`: parsing, validation (regexes, patterns), PEFT's target
//! matching, scaling and the "targets nothing" check (`datm_adapter::LoraConfig`).
#![no_main]

use datm_adapter::LoraConfig;

const MODULES: [&str; 4] = [
    "model.layers.0.self_attn.q_proj",
    "model.layers.11.mlp.down_proj",
    "model.layers.3.self_attn.o_proj",
    "lm_head",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = LoraConfig::from_json(text, "fuzz.json") else {
        return;
    };
    for m in MODULES {
        let _ = (c.target_matches(m), c.scaling_for(m));
    }
    let _ = c.check_targets(MODULES);
    let _ = c.to_json();
});
