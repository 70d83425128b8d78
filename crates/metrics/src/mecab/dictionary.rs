//! MeCab's compiled dictionaries (`sys.dic`, `unk.dic`): a 72-byte header, a Darts
//! double array mapping UTF-8 surfaces to token ranges, and 16-byte token records.
//! The feature strings that follow the tokens are not needed for segmentation.
//!
//! Layout (little-endian `u32`s, as MeCab writes them on x86/ARM): `magic ^ 0xef718f77`
//! (= file size), version (102), type (0 system, 1 user, 2 unknown-word), lexicon size,
//! left and right context-id counts, double-array bytes, token bytes, feature bytes,
//! a reserved word, then a 32-byte NUL-padded charset name.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memmap2::Mmap;

const MAGIC_ID: u32 = 0xef71_8f77;
const DIC_VERSION: u32 = 102;
/// MeCab refuses dictionary files smaller than this.
const MIN_FILE_SIZE: usize = 100;
const HEADER_SIZE: usize = 10 * 4 + 32;
const TOKEN_SIZE: usize = 16;
const UNIT_SIZE: usize = 8;

/// What a dictionary file is for (the header's `type` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DicType {
    /// `sys.dic`.
    System = 0,
    /// `unk.dic`: one entry per character category.
    Unknown = 2,
}

/// One dictionary entry as the lattice needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Token {
    /// Left context id (row of the connection matrix when this token is on the right).
    pub left_id: u16,
    /// Right context id (column of the connection matrix when this token is on the left).
    pub right_id: u16,
    /// Part-of-speech id (mecab-ko's space penalty is keyed on it).
    pub posid: u16,
    /// Word cost.
    pub wcost: i16,
}

/// A double-array hit: the packed token range and the matched key length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    value: u32,
    /// Bytes of the key that matched.
    pub len: usize,
}

impl Hit {
    /// (first token, token count): `value >> 8` and `value & 0xff`.
    pub fn token_range(self) -> (u32, u32) {
        (self.value >> 8, self.value & 0xff)
    }
}

/// The bytes of a dictionary: the mapped file, or a copy held in memory.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A compiled dictionary, memory-mapped or in memory.
pub(crate) struct Dictionary {
    path: PathBuf,
    map: Bytes,
    lexsize: u32,
    units: Range<usize>,
    tokens: Range<usize>,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether MeCab's `decode_charset` reads `name` as UTF-8 (it also falls back to UTF-8
/// for names it does not know).
fn is_utf8_charset(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let known_other = [
        "sjis",
        "shift-jis",
        "shift_jis",
        "cp932",
        "euc",
        "euc_jp",
        "euc-jp",
        "utf16",
        "utf_16",
        "utf-16",
        "utf16be",
        "utf_16be",
        "utf-16be",
        "utf16le",
        "utf_16le",
        "utf-16le",
        "ascii",
    ];
    !known_other.contains(&lower.as_str())
}

impl Dictionary {
    /// Maps and checks `path`, which must hold a dictionary of type `want`.
    #[allow(unsafe_code)]
    pub fn open(path: &Path, want: DicType) -> Result<Self> {
        let file = File::open(path)
            .with_context(|| format!("cannot open MeCab dictionary {}", path.display()))?;
        // SAFETY: the dictionary is opened read-only and only read; like MeCab itself, we
        // assume nobody truncates or rewrites it while it is mapped.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map MeCab dictionary {}", path.display()))?;
        Self::from_bytes(path, Bytes::Mapped(map), want)
    }

    /// Checks the bytes of a dictionary file that `path` names in errors, which must be
    /// of type `want`.
    pub fn from_vec(path: &Path, bytes: Vec<u8>, want: DicType) -> Result<Self> {
        Self::from_bytes(path, Bytes::Owned(bytes), want)
    }

    fn from_bytes(path: &Path, map: Bytes, want: DicType) -> Result<Self> {
        let dic = Self::parse(path, map)?;
        let kind = le_u32(&dic.map, 8);
        if kind != want as u32 {
            bail!(
                "{}: dictionary type {kind}, expected {} ({want:?} dictionary)",
                path.display(),
                want as u32
            );
        }
        Ok(dic)
    }

    fn parse(path: &Path, map: Bytes) -> Result<Self> {
        let p = path.display();
        let size = map.len();
        if size < MIN_FILE_SIZE {
            bail!("{p}: {size} bytes, too small for a MeCab dictionary (at least {MIN_FILE_SIZE})");
        }
        let magic = le_u32(&map, 0) ^ MAGIC_ID;
        if magic as usize != size {
            bail!(
                "{p}: not a MeCab dictionary or truncated: the magic number says {magic} bytes, \
                 the file has {size}"
            );
        }
        let version = le_u32(&map, 4);
        if version != DIC_VERSION {
            bail!("{p}: dictionary version {version}, expected {DIC_VERSION}");
        }
        let word = |i: usize| le_u32(&map, 4 * i) as usize;
        let (lexsize, dsize, tsize, fsize) = (word(3), word(6), word(7), word(8));
        let total = HEADER_SIZE as u64 + dsize as u64 + tsize as u64 + fsize as u64;
        if total != size as u64 {
            bail!(
                "{p}: header sections (double array {dsize}, tokens {tsize}, features {fsize} \
                 bytes) add up to {total} bytes, the file has {size}"
            );
        }
        if dsize % UNIT_SIZE != 0 || tsize != lexsize * TOKEN_SIZE {
            bail!(
                "{p}: double array of {dsize} bytes (multiple of {UNIT_SIZE} expected) and \
                 {tsize} token bytes for {lexsize} entries ({TOKEN_SIZE} each expected)"
            );
        }
        let raw = &map[40..HEADER_SIZE];
        let charset =
            String::from_utf8_lossy(&raw[..raw.iter().position(|&b| b == 0).unwrap_or(32)])
                .into_owned();
        if !is_utf8_charset(&charset) {
            bail!("{p}: dictionary charset is {charset}; only UTF-8 dictionaries are supported");
        }
        let units = HEADER_SIZE..HEADER_SIZE + dsize;
        let tokens = units.end..units.end + tsize;
        Ok(Dictionary {
            path: path.to_path_buf(),
            lexsize: lexsize as u32,
            units,
            tokens,
            map,
        })
    }

    /// The file this dictionary was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries (MeCab's `dictionary_info().size`).
    pub fn lexicon_size(&self) -> u32 {
        self.lexsize
    }

    /// Double-array unit `i` as (base, check); `None` past the end (corrupt input).
    fn unit(&self, i: u32) -> Option<(i32, u32)> {
        let at = self.units.start.checked_add(i as usize * UNIT_SIZE)?;
        if at + UNIT_SIZE > self.units.end {
            return None;
        }
        Some((le_u32(&self.map, at) as i32, le_u32(&self.map, at + 4)))
    }

    /// The value stored for the key that ends at node `b`, if any.
    fn value_at(&self, b: i32) -> Option<u32> {
        match self.unit(b as u32) {
            Some((n, check)) if check == b as u32 && n < 0 => Some((-(n as i64) - 1) as u32),
            _ => None,
        }
    }

    /// The child of node `b` along byte `c`.
    fn child(&self, b: i32, c: u8) -> Option<i32> {
        let p = (b as u32).wrapping_add(c as u32).wrapping_add(1);
        match self.unit(p) {
            Some((base, check)) if check == b as u32 => Some(base),
            _ => None,
        }
    }

    /// Darts' `commonPrefixSearch`: every key that is a prefix of `key`, shortest first,
    /// appended to `out`.
    pub fn common_prefix_search(&self, key: &[u8], out: &mut Vec<Hit>) {
        let Some((mut b, _)) = self.unit(0) else {
            return;
        };
        for (i, &c) in key.iter().enumerate() {
            if let Some(value) = self.value_at(b) {
                out.push(Hit { value, len: i });
            }
            match self.child(b, c) {
                Some(next) => b = next,
                None => return,
            }
        }
        if let Some(value) = self.value_at(b) {
            out.push(Hit {
                value,
                len: key.len(),
            });
        }
    }

    /// Darts' `exactMatchSearch`.
    pub fn exact_match_search(&self, key: &[u8]) -> Option<Hit> {
        let (mut b, _) = self.unit(0)?;
        for &c in key {
            b = self.child(b, c)?;
        }
        self.value_at(b).map(|value| Hit {
            value,
            len: key.len(),
        })
    }

    /// The tokens a hit points to (`value >> 8` is the first, `value & 0xff` the count);
    /// an out-of-range hit (corrupt input) yields only the tokens that exist.
    pub fn tokens(&self, hit: Hit) -> impl Iterator<Item = Token> + '_ {
        let (first, count) = hit.token_range();
        let end = (first + count).min(self.lexsize);
        (first..end).map(move |i| self.token(i))
    }

    /// Token record `i` (must be below the lexicon size).
    pub fn token(&self, i: u32) -> Token {
        let at = self.tokens.start + i as usize * TOKEN_SIZE;
        let b = &self.map[at..at + 8];
        Token {
            left_id: u16::from_le_bytes([b[0], b[1]]),
            right_id: u16::from_le_bytes([b[2], b[3]]),
            posid: u16::from_le_bytes([b[4], b[5]]),
            wcost: i16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// Every token record, in file order.
    pub fn all_tokens(&self) -> impl Iterator<Item = Token> + '_ {
        (0..self.lexsize).map(|i| self.token(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A dictionary file with an empty double array, `lexsize` zeroed tokens and no
    /// features; `patch` edits the bytes before they are written.
    fn write_dic(
        lexsize: u32,
        charset: &str,
        patch: impl Fn(&mut Vec<u8>),
    ) -> tempfile::NamedTempFile {
        let dsize = 8u32 * 4;
        let tsize = lexsize * TOKEN_SIZE as u32;
        let size = HEADER_SIZE as u32 + dsize + tsize + 64;
        let mut b = Vec::new();
        for w in [
            size ^ MAGIC_ID,
            DIC_VERSION,
            0,
            lexsize,
            1,
            1,
            dsize,
            tsize,
            64,
            0,
        ] {
            b.extend(w.to_le_bytes());
        }
        let mut name = [0u8; 32];
        name[..charset.len()].copy_from_slice(charset.as_bytes());
        b.extend(name);
        b.resize(size as usize, 0);
        patch(&mut b);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&b).unwrap();
        f
    }

    fn open_err(f: &tempfile::NamedTempFile, want: DicType) -> String {
        let e = Dictionary::open(f.path(), want).err().expect("an error");
        let e = e.to_string();
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        e
    }

    #[test]
    fn well_formed_header_opens() {
        let f = write_dic(3, "utf8", |_| {});
        let d = Dictionary::open(f.path(), DicType::System).unwrap();
        assert_eq!(d.lexicon_size(), 3);
        assert_eq!(d.all_tokens().count(), 3);
        let mut hits = Vec::new();
        d.common_prefix_search(b"abc", &mut hits);
        assert!(hits.is_empty());
    }

    #[test]
    fn header_errors_name_the_file_and_the_expectation() {
        let f = write_dic(3, "utf8", |b| b.truncate(b.len() - 10));
        assert!(open_err(&f, DicType::System).contains("truncated"));
        let f = write_dic(3, "utf8", |b| b[0] ^= 1);
        assert!(open_err(&f, DicType::System).contains("not a MeCab dictionary"));
        let f = write_dic(3, "utf8", |b| b[4] = 101);
        assert!(open_err(&f, DicType::System).contains("version 101, expected 102"));
        let f = write_dic(3, "EUC-JP", |_| {});
        assert!(open_err(&f, DicType::System).contains("charset is EUC-JP"));
        let f = write_dic(3, "utf8", |_| {});
        assert!(open_err(&f, DicType::Unknown).contains("expected 2"));
        let f = write_dic(3, "utf8", |b| b[12] = 4);
        assert!(open_err(&f, DicType::System).contains("for 4 entries"));
        let f = write_dic(0, "utf8", |b| b.truncate(50));
        assert!(open_err(&f, DicType::System).contains("too small"));
    }

    #[test]
    fn charset_names_follow_mecab() {
        assert!(is_utf8_charset("utf8"));
        assert!(is_utf8_charset("UTF-8"));
        assert!(is_utf8_charset("something-else"));
        assert!(!is_utf8_charset("EUC-JP"));
        assert!(!is_utf8_charset("Shift_JIS"));
    }
}
