//! Fixture helpers shared by the COMET test binaries: the fixtures written by
//! `tools/make_comet_fixtures.py` with unbabel-comet itself.

use datm_comet::{Comet, LoadOptions};
use std::path::{Path, PathBuf};

/// `tests/fixtures/comet`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/comet")
}

/// The lines of fixture file `name`.
pub fn lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    text.lines().map(str::to_string).collect()
}

/// The fixture model `variant` (`sparsemax`, `softmax`, `qe`, ...).
pub fn load(variant: &str) -> Comet {
    // The encoder `datm/xlmr-tiny` is found in the fixture's hub cache, as a user's
    // `xlm-roberta-large` is found in theirs (every test sets the same value).
    std::env::set_var("HF_HUB_CACHE", fixtures().join("hub"));
    Comet::load(&fixtures().join(variant), &LoadOptions::default()).unwrap()
}
