//! SentencePiece `.model` protobufs (`datm_metrics::spm::SentencePiece::from_bytes`: vocab,
//! charsmap normaliser, unigram/BPE), then tokenizing a line.
#![no_main]

use datm_metrics::spm::SentencePiece;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sp) = SentencePiece::from_bytes(data) {
        let _ = sp.tokenize("Hello wörld, 世界! ½ ﬁ");
    }
});
