//! HF `tokenizer.json` as `Tokenizer::from_hf_dir` loads it (`parse_tokenizer_json`: HF
//! tokenizers' loader, whose panics datm catches; then datm's wrapper), then an
//! encode/decode round.
//!
//! libfuzzer-sys's panic hook aborts on every panic, even a caught one. This target's hook
//! lets panics raised inside the tokenizers crate unwind to datm's `catch_unwind` (an
//! upstream bug datm contains) and still aborts on any other panic.
#![no_main]

use std::sync::Once;

use datm_model::tokenizer::{parse_tokenizer_json, SpecialIds, Tokenizer};

static HOOK: Once = Once::new();

fn contain_tokenizers_panics() {
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let upstream = info
                .location()
                .is_some_and(|l| l.file().contains("/tokenizers-"));
            if !upstream {
                fuzzer_hook(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contain_tokenizers_panics();
    let Ok(inner) = parse_tokenizer_json(data, "fuzz.json") else {
        return;
    };
    let Ok(t) = Tokenizer::new(inner, SpecialIds::default()) else {
        return;
    };
    if let Ok(ids) = t.encode("Hello wörld, 世界 42", true) {
        let _ = t.decode(&ids, true);
    }
});
