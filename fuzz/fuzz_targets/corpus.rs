//! Corpus readers (`datm_data::formats`): ALMA JSON, JSONL, TSV and aligned text (the
//! Flores reader), chosen by the first byte; aligned texts are split at the first NUL.
#![no_main]

use std::path::Path;

use datm_data::formats::{parse_aligned, parse_alma_json, parse_jsonl, parse_tsv};
use datm_lang::Direction;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let d: Direction = "de-en".parse().expect("a valid direction");
    let p = Path::new("fuzz");
    let _ = match which % 4 {
        0 => parse_alma_json(text, d, p),
        1 => parse_jsonl(text, d, p),
        2 => parse_tsv(text, d, p),
        _ => {
            let (src, tgt) = text.split_once('\0').unwrap_or((text, ""));
            parse_aligned([src, tgt], d, [p, p])
        }
    };
});
