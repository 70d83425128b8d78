//! safetensors header and extents as HF model loading reads them
//! (`datm_model::hf::read_safetensors`).
#![no_main]

use candle_core::Device;
use datm_model::{hf::read_safetensors, WeightMap};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut map = WeightMap::new("fuzz");
    let _ = read_safetensors(data, &Device::Cpu, "fuzz.safetensors", &mut map);
});
