//! HF `tokenizer.json` as `Tokenizer::from_hf_dir` loads it (HF tokenizers' parser, then
//! datm's wrapper), then an encode/decode round.
#![no_main]

use datm_model::tokenizer::{SpecialIds, Tokenizer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(inner) = tokenizers::Tokenizer::from_bytes(data) else {
        return;
    };
    let Ok(t) = Tokenizer::new(inner, SpecialIds::default()) else {
        return;
    };
    if let Ok(ids) = t.encode("Hello wörld, 世界 42", true) {
        let _ = t.decode(&ids, true);
    }
});
