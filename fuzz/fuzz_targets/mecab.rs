//! MeCab dictionary folders (`datm_metrics::mecab::MeCab::from_bytes`: `dicrc`, `sys.dic`,
//! `unk.dic`, `char.bin`, `matrix.bin` and the checks that tie them together), then
//! segmenting a line on the lattice.
//!
//! Input: [`datm_fuzz::sections`] `line, dicrc, sys.dic, unk.dic, matrix.bin, char.bin head`.
//! A real `char.bin` is 256 KiB (a 4-byte count, 32-byte names, then 65,535 entries); the
//! input gives its count and names, and the entries are the input's remaining bytes repeated
//! (zeros if none), so small inputs reach the whole loader.
#![no_main]

use datm_fuzz::sections;
use datm_metrics::mecab::{DictionaryBytes, Flavor, MeCab};

/// Code points `char.bin` maps (MeCab's `0xffff` entries).
const MAP_ENTRIES: usize = 0xffff;

/// A `char.bin` of the right size for the count the head declares.
fn char_bin(head: &[u8]) -> Vec<u8> {
    let n = head
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let names_end = 4 + 32 * n.min(256);
    let mut out = head[..names_end.min(head.len())].to_vec();
    out.resize(names_end, 0);
    let entries = head.get(names_end..).unwrap_or(&[]);
    if entries.is_empty() {
        out.resize(names_end + 4 * MAP_ENTRIES, 0);
    } else {
        // Whole copies, not a byte-by-byte cycle: that loop, instrumented for coverage, took
        // nine tenths of each run.
        let copies = (4 * MAP_ENTRIES).div_ceil(entries.len());
        out.extend_from_slice(&entries.repeat(copies)[..4 * MAP_ENTRIES]);
    }
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = sections(data, 6);
    let char_bin = char_bin(s[5]);
    let files = DictionaryBytes {
        dicrc: s[1],
        sys: s[2],
        unk: s[3],
        char_bin: &char_bin,
        matrix: s[4],
    };
    let flavor = if s[0].len() % 2 == 0 {
        Flavor::Ja
    } else {
        Flavor::Ko
    };
    if let Ok(m) = MeCab::from_bytes(&files, flavor) {
        let _ = m.wakati(&String::from_utf8_lossy(s[0]));
    }
});
