//! `.po` catalogs (`datm_data::gettext::po::parse`: charsets, escapes, entry order), their `Plural-Forms` and the
//! import's extraction of pairs.
#![no_main]

use std::path::Path;

use datm_data::gettext::import::{extract, Filters};
use datm_data::gettext::po;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cat) = po::parse(data, Path::new("fuzz.po")) {
        let filters = Filters {
            min_words: 1,
            max_chars: 400,
        };
        let _ = extract(&cat, filters);
    }
});
