//! GGUF header, metadata, tensor table and extents (candle's reader under datm's checks),
//! the config and the tokenizer rebuilt from the metadata, and every tensor materialised:
//! `datm_model::gguf::load_bytes`, dense f32 for odd-length inputs, quantized for even.
#![no_main]

use candle_core::{DType, Device};
use datm_model::gguf::{load_bytes, LoadMode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mode = if data.len() % 2 == 0 {
        LoadMode::Quantized
    } else {
        LoadMode::Dequantize(DType::F32)
    };
    if let Ok(m) = load_bytes(data, "fuzz.gguf", mode, &Device::Cpu) {
        if let Ok(ids) = m.tokenizer.encode("Hello wörld, 世界 42", true) {
            let _ = m.tokenizer.decode(&ids, false);
        }
    }
});
