//! SentencePiece's precompiled normalization rules (`precompiled_charsmap`): a
//! darts-clone double-array trie from UTF-8 input sequences to offsets in a blob of
//! NUL-terminated replacement strings.
//!
//! Layout: a little-endian `u32` with the trie's size in bytes, the trie's 32-bit units,
//! then the replacement strings.

use anyhow::{anyhow, Result};

/// The compiled rules, ready for longest-prefix lookups.
#[derive(Debug, Clone)]
pub(crate) struct CharsMap {
    units: Vec<u32>,
    replacements: String,
}

impl CharsMap {
    /// Splits and checks a `precompiled_charsmap` blob as SentencePiece 0.2.3 does
    /// (sizes, NUL-terminated replacements, darts-clone's `validate`), and also
    /// requires the replacements to be UTF-8.
    pub(crate) fn parse(blob: &[u8]) -> Result<Self> {
        let broken = |why: String| {
            anyhow!("the normalization rules (precompiled_charsmap) are broken: {why}")
        };
        let Some((size, rest)) = blob.split_first_chunk::<4>() else {
            return Err(broken(format!("{} bytes is too short", blob.len())));
        };
        let trie_size = u32::from_le_bytes(*size) as usize;
        if trie_size >= rest.len() {
            return Err(broken(format!(
                "a trie of {trie_size} bytes in a blob of {} bytes",
                blob.len()
            )));
        }
        if trie_size < 1024 || trie_size & 0x3FF != 0 {
            return Err(broken(format!(
                "the trie size {trie_size} is not a positive multiple of 1024"
            )));
        }
        let (trie, strings) = rest.split_at(trie_size);
        if strings.last() != Some(&0) {
            return Err(broken("the replacement strings do not end with NUL".into()));
        }
        let units: Vec<u32> = trie
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if !valid_double_array(&units, strings.len()) {
            return Err(broken("the double-array trie is invalid".into()));
        }
        let replacements = String::from_utf8(strings.to_vec())
            .map_err(|_| broken("the replacement strings are not UTF-8".into()))?;
        Ok(Self {
            units,
            replacements,
        })
    }

    /// The longest rule matching a prefix of `input`: the number of input bytes it
    /// consumes and its replacement (possibly empty). Rules whose data is out of range
    /// are ignored rather than trusted.
    pub(crate) fn longest_match(&self, input: &[u8]) -> Option<(usize, &str)> {
        let mut best = None;
        self.common_prefix_search(input, |len, value| best = Some((len, value)));
        let (len, value) = best?;
        let start = usize::try_from(value).ok()?;
        let tail = self.replacements.get(start..)?;
        let end = tail.find('\0').unwrap_or(tail.len());
        Some((len, &tail[..end]))
    }

    /// darts-clone's `commonPrefixSearch`: calls `found(length, value)` for each key that
    /// is a prefix of `input`, shortest first. Stops quietly at out-of-range units.
    fn common_prefix_search(&self, input: &[u8], mut found: impl FnMut(usize, u32)) {
        let unit = |pos: usize| self.units.get(pos).copied();
        let Some(root) = unit(0) else { return };
        let mut pos = offset(root);
        for (i, &byte) in input.iter().enumerate() {
            pos ^= usize::from(byte);
            let Some(u) = unit(pos) else { return };
            if label(u) != u32::from(byte) {
                return;
            }
            pos ^= offset(u);
            if has_leaf(u) {
                let Some(leaf) = unit(pos) else { return };
                found(i + 1, leaf & 0x7FFF_FFFF);
            }
        }
    }
}

/// darts-clone's `DoubleArray::validate(max_value)`: every child offset stays inside
/// the array, leaf links point at value units and values index the replacements.
fn valid_double_array(units: &[u32], max_value: usize) -> bool {
    let size = units.len();
    let Some(&root) = units.first() else {
        return false;
    };
    if label(root) != 0 || has_leaf(root) || offset(root) == 0 || (offset(root) | 0xFF) >= size {
        return false;
    }
    units.iter().enumerate().skip(1).all(|(i, &u)| {
        if label(u) <= 0xFF {
            let child = i ^ offset(u);
            (child | 0xFF) < size && !(has_leaf(u) && label(units[child]) <= 0xFF)
        } else {
            ((u & 0x7FFF_FFFF) as usize) < max_value
        }
    })
}

/// Whether a unit has a value-holding child.
fn has_leaf(unit: u32) -> bool {
    (unit >> 8) & 1 == 1
}

/// A unit's label (the high bit marks leaf units, which never match a byte).
fn label(unit: u32) -> u32 {
    unit & ((1 << 31) | 0xFF)
}

/// The XOR offset from a unit to its children.
fn offset(unit: u32) -> usize {
    ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize
}
