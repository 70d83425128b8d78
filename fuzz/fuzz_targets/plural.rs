//! `Plural-Forms` headers (`datm_data::gettext::plural::PluralForms`): parsing with its
//! nesting cap, and evaluation.
#![no_main]

use datm_data::gettext::plural::PluralForms;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = PluralForms::parse(text) {
        for n in [0, 1, 2, 5, 11, 21, 101, 1_000_000, u64::MAX] {
            let _ = p.index(n);
        }
    }
});
