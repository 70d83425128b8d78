//! Helpers shared by the fuzz targets in `fuzz_targets/`.

/// Splits a fuzz input into `n` sections: each of the first `n - 1` is a little-endian `u16`
/// length followed by that many bytes (cut short at the end of the input); the last section
/// is whatever remains. Lets one input carry several files.
pub fn sections(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        let len = match data {
            [a, b, rest @ ..] => {
                data = rest;
                usize::from(u16::from_le_bytes([*a, *b]))
            }
            _ => std::mem::take(&mut data).len(),
        };
        let (head, tail) = data.split_at(len.min(data.len()));
        out.push(head);
        data = tail;
    }
    out.push(data);
    out
}

/// The inverse of [`sections`], for building seeds: each part but the last gets its length.
pub fn join_sections(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 < parts.len() {
            let len = u16::try_from(p.len()).expect("a section under 64 KiB");
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(p);
    }
    out
}
