//! Exact n-gram matching without hashing n-grams.
//!
//! Items are small integer ids (characters as code points, words as per-segment ids from
//! [`intern`]). Every window of `max_order` items is packed, item by item, into one `u128`
//! (each item stored as id + 1 in `bits` bits, 0 padding the windows that run past the
//! end), and the windows are sorted once. The n-grams of any order `k ≤ max_order` are then
//! the top `k` items of the keys: sorting by the whole key also sorts by every prefix, so
//! equal n-grams of every order are adjacent and hypothesis and reference lists can be
//! merged in one pass per order. When the windows do not fit in 128 bits, n-grams fall
//! back to sorted id slices.

use std::hash::{BuildHasherDefault, Hasher};

/// A segment's n-grams of orders `1..=max_order`, ready for matching.
#[derive(Debug)]
pub(crate) enum Grams<'a> {
    /// Sorted packed windows.
    Packed {
        /// Sorted keys, one per start position.
        keys: Vec<u128>,
        /// Bits per item.
        bits: u32,
        /// Items per key.
        max_order: usize,
    },
    /// The id sequence itself (n-grams are sorted per order on demand).
    Slices(&'a [u32]),
}

/// Bits needed for values up to `max_value`.
pub(crate) fn id_bits(max_value: u32) -> u32 {
    (u32::BITS - max_value.leading_zeros()).max(1)
}

/// Bits of a Unicode scalar value plus one (≤ 0x110000), so six characters pack into a `u128`.
pub(crate) const CHAR_BITS: u32 = 21;

/// Number of n-grams of order `k` in a sequence of `len` items.
pub(crate) fn count(len: usize, k: usize) -> usize {
    (len + 1).saturating_sub(k)
}

impl<'a> Grams<'a> {
    /// Prepares the n-grams of `ids` up to `max_order`; `bits` must hold every id + 1.
    pub(crate) fn new(ids: &'a [u32], max_order: usize, bits: u32) -> Self {
        if max_order == 0 || max_order as u32 * bits > 128 {
            return Grams::Slices(ids);
        }
        let mut keys: Vec<u128> = (0..ids.len())
            .map(|i| {
                (0..max_order).fold(0u128, |k, j| {
                    let v = ids.get(i + j).map_or(0, |&id| u128::from(id) + 1);
                    (k << bits) | v
                })
            })
            .collect();
        keys.sort_unstable();
        Grams::Packed {
            keys,
            bits,
            max_order,
        }
    }
}

/// The order-`k` n-gram of a packed key, or `None` if the window is too short.
fn prefix(key: u128, k: usize, bits: u32, max_order: usize) -> Option<u128> {
    let p = key >> ((max_order - k) as u32 * bits);
    (p & ((1u128 << bits) - 1) != 0).then_some(p)
}

/// Clipped matches of order `k`: `Σ_g min(count_hyp(g), max_r count_r(g))`.
pub(crate) fn clipped_matches(hyp: &Grams, refs: &[&Grams], k: usize) -> usize {
    match hyp {
        Grams::Packed {
            keys,
            bits,
            max_order,
        } => {
            let pre = |key: u128| prefix(key, k, *bits, *max_order);
            let mut cursors: Vec<(&[u128], usize)> = refs
                .iter()
                .map(|r| match r {
                    Grams::Packed { keys, .. } => (keys.as_slice(), 0),
                    Grams::Slices(_) => unreachable!("same order and bits pack alike"),
                })
                .collect();
            let mut matches = 0;
            let mut i = 0;
            while i < keys.len() {
                let Some(g) = pre(keys[i]) else {
                    i += 1;
                    continue;
                };
                let run = keys[i..].iter().take_while(|&&x| pre(x) == Some(g)).count();
                let mut best = 0;
                for (rk, pos) in &mut cursors {
                    while *pos < rk.len() && (rk[*pos] >> ((*max_order - k) as u32 * *bits)) < g {
                        *pos += 1;
                    }
                    let n = rk[*pos..]
                        .iter()
                        .take_while(|&&x| pre(x) == Some(g))
                        .count();
                    best = best.max(n);
                }
                matches += run.min(best);
                i += run;
            }
            matches
        }
        Grams::Slices(ids) => {
            let h = sorted_windows(ids, k);
            let r: Vec<Vec<&[u32]>> = refs
                .iter()
                .map(|r| match r {
                    Grams::Slices(ids) => sorted_windows(ids, k),
                    Grams::Packed { .. } => unreachable!("same order and bits pack alike"),
                })
                .collect();
            clipped_sorted(&h, &r)
        }
    }
}

/// The n-grams of order `k` of `ids`, sorted.
fn sorted_windows(ids: &[u32], k: usize) -> Vec<&[u32]> {
    if k == 0 || ids.len() < k {
        return Vec::new();
    }
    let mut v: Vec<&[u32]> = ids.windows(k).collect();
    v.sort_unstable();
    v
}

/// Clipped matches over sorted n-gram lists.
fn clipped_sorted<K: Ord>(hyp: &[K], refs: &[Vec<K>]) -> usize {
    let count_in = |list: &[K], g: &K| {
        let lo = list.partition_point(|x| x < g);
        list[lo..].partition_point(|x| x <= g)
    };
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
    fn packed_and_slice_paths_agree() {
        let mut vocab = Vocab::default();
        let hyp = intern(&mut vocab, "a a a b c a b".split(' '));
        let r1 = intern(&mut vocab, "a b b c a".split(' '));
        let r2 = intern(&mut vocab, "a a x a b".split(' '));
        let bits = id_bits(vocab.len() as u32);
        // (order, clipped matches): a:min(4,3) + b:min(2,2) + c:1 = 6; aa+ab+bc+ca = 4; bca = 1
        let want = [(1, 6), (2, 4), (3, 1), (5, 0)];
        for max_order in [4, 60] {
            let (h, g1, g2) = (
                Grams::new(&hyp, max_order, bits),
                Grams::new(&r1, max_order, bits),
                Grams::new(&r2, max_order, bits),
            );
            assert_eq!(matches!(h, Grams::Packed { .. }), max_order == 4);
            for (k, m) in want {
                if k <= max_order {
                    assert_eq!(clipped_matches(&h, &[&g1, &g2], k), m, "order {k}");
                }
            }
        }
        assert_eq!(count(3, 4), 0);
        assert_eq!(count(7, 2), 6);
        assert_eq!(id_bits(3), 2);
        assert_eq!(id_bits(0), 1);
    }
}
