//! N-gram counting by sorting packed keys: exact (no hashing of n-grams), allocation-light
//! and fast for sentence-sized inputs.
//!
//! Items are small integer ids (characters as code points, words as per-segment ids from
//! [`intern`]); an n-gram of ids of at most `bits` bits each is packed into one `u128`
//! when `n · bits ≤ 128`, so equal n-grams have equal keys and sorting groups them.
//! Longer n-grams fall back to sorted id slices.

use std::hash::{BuildHasherDefault, Hasher};

/// Sorted n-grams of one order, as packed keys or (when they do not fit) id slices.
#[derive(Debug)]
pub(crate) enum Ngrams<'a> {
    /// Packed `u128` keys.
    Packed(Vec<u128>),
    /// Slices of the id sequence.
    Slices(Vec<&'a [u32]>),
}

impl Ngrams<'_> {
    /// Number of n-grams (with repetitions).
    pub(crate) fn len(&self) -> usize {
        match self {
            Ngrams::Packed(v) => v.len(),
            Ngrams::Slices(v) => v.len(),
        }
    }
}

/// Bits needed for ids up to `max_id`.
pub(crate) fn id_bits(max_id: u32) -> u32 {
    (u32::BITS - max_id.leading_zeros()).max(1)
}

/// Bits of any Unicode scalar value (U+10FFFF), so six characters pack into a `u128`.
pub(crate) const CHAR_BITS: u32 = 21;

/// All n-grams of order `n` of `ids`, sorted. `bits` bounds every id's bit width.
pub(crate) fn sorted_ngrams(ids: &[u32], n: usize, bits: u32) -> Ngrams<'_> {
    if n == 0 || ids.len() < n {
        return Ngrams::Packed(Vec::new());
    }
    if n as u32 * bits <= 128 {
        let mut keys: Vec<u128> = ids
            .windows(n)
            .map(|w| w.iter().fold(0u128, |k, &id| (k << bits) | u128::from(id)))
            .collect();
        keys.sort_unstable();
        Ngrams::Packed(keys)
    } else {
        let mut v: Vec<&[u32]> = ids.windows(n).collect();
        v.sort_unstable();
        Ngrams::Slices(v)
    }
}

/// How many times `g` occurs in the sorted list `list`.
fn count_in<K: Ord>(list: &[K], g: &K) -> usize {
    let lo = list.partition_point(|x| x < g);
    lo.abs_diff(lo + list[lo..].partition_point(|x| x <= g))
}

/// Clipped matches `Σ_g min(count_hyp(g), max_k count_ref_k(g))` over sorted lists.
fn clipped<K: Ord>(hyp: &[K], refs: &[&[K]]) -> usize {
    let mut matches = 0;
    let mut i = 0;
    while i < hyp.len() {
        let g = &hyp[i];
        let run = hyp[i..].partition_point(|x| x <= g);
        let best = refs.iter().map(|r| count_in(r, g)).max().unwrap_or(0);
        matches += run.min(best);
        i += run;
    }
    matches
}

/// Clipped matches of `hyp` against references of the same order and id space.
pub(crate) fn clipped_matches(hyp: &Ngrams, refs: &[&Ngrams]) -> usize {
    match hyp {
        Ngrams::Packed(h) => {
            let r: Vec<&[u128]> = refs
                .iter()
                .map(|r| match r {
                    Ngrams::Packed(v) => v.as_slice(),
                    Ngrams::Slices(_) => unreachable!("same order and bits pack alike"),
                })
                .collect();
            clipped(h, &r)
        }
        Ngrams::Slices(h) => {
            let r: Vec<&[&[u32]]> = refs
                .iter()
                .map(|r| match r {
                    Ngrams::Slices(v) => v.as_slice(),
                    Ngrams::Packed(_) => unreachable!("same order and bits pack alike"),
                })
                .collect();
            clipped(h, &r)
        }
    }
}

/// FxHash (rustc's hasher): fast and good enough for interning a sentence's tokens.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A token → id map for one segment.
pub(crate) type Vocab<'a> = std::collections::HashMap<&'a str, u32, BuildHasherDefault<FxHasher>>;

/// Ids of `tokens` in `vocab`, adding new tokens.
pub(crate) fn intern<'a>(vocab: &mut Vocab<'a>, tokens: impl Iterator<Item = &'a str>) -> Vec<u32> {
    tokens
        .map(|t| {
            let next = vocab.len() as u32;
            *vocab.entry(t).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_uses_max_over_references() {
        let mut vocab = Vocab::default();
        let hyp = intern(&mut vocab, ["a", "a", "a", "b", "c"].into_iter());
        let r1 = intern(&mut vocab, ["a", "b", "b"].into_iter());
        let r2 = intern(&mut vocab, ["a", "a", "x"].into_iter());
        for bits in [id_bits(vocab.len() as u32 - 1), 100] {
            let h = sorted_ngrams(&hyp, 1, bits);
            let (s1, s2) = (sorted_ngrams(&r1, 1, bits), sorted_ngrams(&r2, 1, bits));
            assert_eq!(clipped_matches(&h, &[&s1, &s2]), 3); // a:min(3,2) + b:1
            assert_eq!(sorted_ngrams(&hyp, 2, bits).len(), 4);
            assert_eq!(sorted_ngrams(&hyp, 6, bits).len(), 0);
        }
        assert_eq!(id_bits(3), 2);
        assert_eq!(id_bits(0), 1);
    }
}
