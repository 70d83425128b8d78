//! `datm serve`'s request bodies (`datm_serve::request`): every input is parsed as each of
//! the four JSON bodies as the handlers' extractor parses them, and the bodies that parse
//! get the checks the handlers run before a request reaches the decode worker (limits,
//! formats, the language pair against the routing of a server without a pool).
#![no_main]

use std::sync::LazyLock;

use datm_serve::request::{
    parse, CompletionRequest, Limits, LoadRequest, TranslateRequest, UnloadRequest,
};
use datm_serve::Routing;

/// `datm serve`'s default limits.
const LIMITS: Limits = Limits {
    max_input_chars: 2000,
    max_new_tokens: 256,
};

static ROUTING: LazyLock<Routing> =
    LazyLock::new(|| Routing::open(None).expect("the routing without a pool"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse::<TranslateRequest>(data) {
        let _ = r.check(&LIMITS, &ROUTING);
    }
    if let Ok(r) = parse::<CompletionRequest>(data) {
        let _ = r.check(&LIMITS);
    }
    let _ = parse::<LoadRequest>(data);
    let _ = parse::<UnloadRequest>(data);
});
