//! MeCab's character categories (`char.bin`) and its UTF-8 reading.
//!
//! `char.bin`: a `u32` category count `n`, `n` NUL-padded 32-byte category names, then
//! one packed `u32` [`CharInfo`] for each UCS-2 code point 0..0xFFFE (0xFFFF entries).
//! MeCab decodes UTF-8 to UCS-2 its own way ([`decode`]): characters outside the BMP
//! become code 0, so they take code 0's category.

use std::path::Path;

use anyhow::{bail, Context, Result};

const NAME_SIZE: usize = 32;
const MAP_ENTRIES: usize = 0xffff;

/// MeCab's `CharInfo` bitfield: category bits (18), default category (8), unknown-word
/// length (4), group (1), invoke (1), from the low bit up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CharInfo(u32);

impl CharInfo {
    fn categories(self) -> u32 {
        self.0 & 0x3ffff
    }

    /// The category whose unknown-word entries are used for this character.
    pub fn default_type(self) -> usize {
        ((self.0 >> 18) & 0xff) as usize
    }

    /// How many unknown words of 1..=length characters to propose.
    pub fn length(self) -> usize {
        ((self.0 >> 26) & 0xf) as usize
    }

    /// Whether to propose the whole run of same-category characters as one unknown word.
    pub fn group(self) -> bool {
        (self.0 >> 30) & 1 == 1
    }

    /// Whether to propose unknown words even when the dictionary has a match.
    pub fn invoke(self) -> bool {
        self.0 >> 31 == 1
    }

    /// MeCab's `isKindOf`: the two share a category.
    pub fn is_kind_of(self, other: CharInfo) -> bool {
        self.categories() & other.categories() != 0
    }
}

/// Byte `i` of the sentence as MeCab's C string has it: NUL past the end.
fn byte_at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// MeCab's `utf8_to_ucs2` at `begin` with the text ending at `end`: (code, bytes read).
/// Sequences of 4–6 bytes and malformed ones give code 0.
pub(crate) fn decode(s: &[u8], begin: usize, end: usize) -> (u16, usize) {
    let len = end.saturating_sub(begin);
    let b0 = byte_at(s, begin);
    let cont = |k: usize| (byte_at(s, begin + k) & 0x3f) as u16;
    if b0 < 0x80 {
        (b0 as u16, 1)
    } else if len >= 2 && b0 & 0xe0 == 0xc0 {
        ((((b0 & 0x1f) as u16) << 6) | cont(1), 2)
    } else if len >= 3 && b0 & 0xf0 == 0xe0 {
        ((((b0 & 0x0f) as u16) << 12) | (cont(1) << 6) | cont(2), 3)
    } else if len >= 4 && b0 & 0xf8 == 0xf0 {
        (0, 4)
    } else if len >= 5 && b0 & 0xfc == 0xf8 {
        (0, 5)
    } else if len >= 6 && b0 & 0xfe == 0xfc {
        (0, 6)
    } else {
        (0, 1)
    }
}

/// Where [`CharProperty::seek_to_other_type`] stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seek {
    /// First byte not skipped.
    pub pos: usize,
    /// Info of the last character examined (the one that stopped the run, or the last
    /// skipped one at the end of the text); all zero when none was examined.
    pub fail: CharInfo,
    /// Byte length of that character; 0 when none was examined.
    pub mblen: usize,
    /// Characters skipped.
    pub clen: usize,
}

/// The character category table.
pub(crate) struct CharProperty {
    names: Vec<String>,
    map: Vec<CharInfo>,
}

impl CharProperty {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read MeCab character table {}", path.display()))?;
        Self::parse(path, &bytes)
    }

    /// Checks the bytes of a `char.bin` that `path` names in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let p = path.display();
        if bytes.len() < 4 {
            bail!("{p}: {} bytes, too small for a MeCab char.bin", bytes.len());
        }
        let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let want = 4u64 + (NAME_SIZE * n) as u64 + 4 * MAP_ENTRIES as u64;
        if bytes.len() as u64 != want {
            bail!(
                "{p}: {n} categories need {want} bytes (4 + 32 per name + 4 × 0xffff), \
                 the file has {}",
                bytes.len()
            );
        }
        let names: Vec<String> = bytes[4..4 + NAME_SIZE * n]
            .chunks_exact(NAME_SIZE)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(NAME_SIZE);
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect();
        let map: Vec<CharInfo> = bytes[4 + NAME_SIZE * n..]
            .chunks_exact(4)
            .map(|c| CharInfo(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        if let Some(code) = map.iter().position(|c| c.default_type() >= n) {
            bail!(
                "{p}: code point U+{code:04X} has default category {}, but there are only {n}",
                map[code].default_type()
            );
        }
        Ok(CharProperty { names, map })
    }

    /// Category names, indexed by category id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Info of UCS-2 code `code`. MeCab reads U+FFFF one entry past its table, which is
    /// the zero padding of the mapped page: an info with no category bits.
    pub fn info(&self, code: u16) -> CharInfo {
        self.map.get(code as usize).copied().unwrap_or_default()
    }

    /// MeCab's `getCharInfo`: the character at `begin` and its byte length.
    pub fn info_at(&self, s: &[u8], begin: usize, end: usize) -> (CharInfo, usize) {
        let (code, mblen) = decode(s, begin, end);
        (self.info(code), mblen)
    }

    /// MeCab's `seekToOtherType`: skips characters while each shares a category with the
    /// previous one (the first with `kind`), but at most `max_chars` of them (MeCab has no
    /// limit; callers pass one only where a longer run cannot change the outcome).
    pub fn seek_to_other_type(
        &self,
        s: &[u8],
        begin: usize,
        end: usize,
        kind: CharInfo,
        max_chars: usize,
    ) -> Seek {
        let mut seek = Seek {
            pos: begin,
            fail: CharInfo::default(),
            mblen: 0,
            clen: 0,
        };
        let mut kind = kind;
        while seek.pos != end && seek.clen < max_chars {
            let (info, len) = self.info_at(s, seek.pos, end);
            seek.fail = info;
            seek.mblen = len;
            if !kind.is_kind_of(info) {
                break;
            }
            seek.pos += len;
            seek.clen += 1;
            kind = info;
        }
        seek
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_mecab() {
        let s = "aé日😀".as_bytes();
        assert_eq!(decode(s, 0, s.len()), (b'a' as u16, 1));
        assert_eq!(decode(s, 1, s.len()), (0xe9, 2));
        assert_eq!(decode(s, 3, s.len()), (0x65e5, 3));
        assert_eq!(decode(s, 6, s.len()), (0, 4));
        // Past the end reads the C string's NUL; a cut sequence reads one byte as code 0.
        assert_eq!(decode(s, s.len(), s.len()), (0, 1));
        assert_eq!(decode(s, 3, 5), (0, 1));
    }

    #[test]
    fn bitfields_unpack_low_bit_first() {
        // invoke 1, group 0, length 3, default type 5, categories 0b110.
        let c = CharInfo((1 << 31) | (3 << 26) | (5 << 18) | 0b110);
        assert_eq!(c.default_type(), 5);
        assert_eq!(c.length(), 3);
        assert!(!c.group());
        assert!(c.invoke());
        assert!(c.is_kind_of(CharInfo(0b010)));
        assert!(!c.is_kind_of(CharInfo(0b001)));
    }

    #[test]
    fn wrong_size_is_an_error() {
        let e = CharProperty::parse(Path::new("char.bin"), &[1, 0, 0, 0, 0])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("char.bin") && e.contains("1 categories"), "{e}");
    }
}
