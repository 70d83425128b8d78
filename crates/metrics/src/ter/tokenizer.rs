//! The tercom tokenizer of sacrebleu (`tokenizers/tokenizer_ter.py`), a port of tercom's
//! `Normalizer.java`: lowercasing, optional normalization (western punctuation splitting,
//! XML unescaping, CJK splitting) and optional punctuation removal.
//!
//! sacrebleu's single-character rules (`re.sub(r"([class])", r" \1 ", s)`) only add
//! spaces around characters, and the result is finally re-joined on whitespace, so they
//! are applied here as one pass per group of rules; its two-character rules are applied
//! by [`pair_rule`] with the same leftmost, non-overlapping matching as `re.sub`.

use fancy_regex::Regex as FancyRegex;

use super::TerOptions;
use crate::text::{py_join_split, py_lower};

/// Western punctuation split by tercom's normalization: every ASCII punctuation mark
/// except `'`, `-`, `,` and `.`, plus the space itself (`[{-~[-\` -&(-+:-@/]`).
fn is_western_punct(c: char) -> bool {
    matches!(c, ' '..='&' | '('..='+' | '/' | ':'..='@' | '['..='`' | '{'..='~')
}

/// CJK ideographs, strokes, radicals, compatibility forms and enclosed letters: the
/// union of sacrebleu's four block rules, each character its own token.
fn is_cjk_block(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}'
        | '\u{31c0}'..='\u{31ef}' | '\u{2e80}'..='\u{2eff}'
        | '\u{3300}'..='\u{33ff}' | '\u{f900}'..='\u{faff}' | '\u{fe30}'..='\u{fe4f}'
        | '\u{3200}'..='\u{3f22}')
}

/// CJK punctuation (`ASIAN_PUNCT`) and full-width punctuation (`FULL_WIDTH_PUNCT`).
fn is_asian_punct(c: char) -> bool {
    matches!(c,
        '\u{3001}' | '\u{3002}' | '\u{3008}'..='\u{3011}' | '\u{3014}'..='\u{301f}'
        | '\u{ff61}'..='\u{ff65}' | '\u{30fb}'
        | '\u{ff0e}' | '\u{ff0c}' | '\u{ff1f}' | '\u{ff1a}' | '\u{ff1b}' | '\u{ff01}'
        | '\u{ff02}' | '\u{ff08}' | '\u{ff09}')
}

/// Hiragana, Katakana and Katakana Phonetic Extensions.
const KANA_RANGES: [(char, char); 3] = [
    ('\u{3040}', '\u{309f}'),
    ('\u{30a0}', '\u{30ff}'),
    ('\u{31f0}', '\u{31ff}'),
];

/// `s` with a space on each side of every character matching `pred`.
fn pad_chars(s: &str, pred: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if pred(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// `re.sub(r"(A)(B)", replacement, s)` for single-character classes `A` and `B`: scanning
/// left to right, every non-overlapping pair `a b` is replaced by `emit(a, b)`.
fn pair_rule(
    s: &str,
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    emit: impl Fn(&mut String, char, char),
) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    while let Some(a) = chars.next() {
        match chars.peek() {
            Some(&b) if first(a) && second(b) => {
                chars.next();
                emit(&mut out, a, b);
            }
            _ => out.push(a),
        }
    }
    out
}

/// `re.sub(r"([^0-9])([\.,])", r"\1 \2 ", s)`: a period or comma after a non-digit.
fn split_period_comma_after_non_digit(s: &str) -> String {
    pair_rule(
        s,
        |a| !a.is_ascii_digit(),
        |b| matches!(b, '.' | ','),
        |out, a, b| {
            out.push(a);
            out.push(' ');
            out.push(b);
            out.push(' ');
        },
    )
}

/// `re.sub(r"([\.,])([^0-9])", r" \1 \2", s)`: a period or comma before a non-digit.
fn split_period_comma_before_non_digit(s: &str) -> String {
    pair_rule(
        s,
        |a| matches!(a, '.' | ','),
        |b| !b.is_ascii_digit(),
        |out, a, b| {
            out.push(' ');
            out.push(a);
            out.push(' ');
            out.push(b);
        },
    )
}

/// `re.sub(r"([0-9])(-)", r"\1 \2 ", s)`: a dash after a digit.
fn split_dash_after_digit(s: &str) -> String {
    pair_rule(
        s,
        |a| a.is_ascii_digit(),
        |b| b == '-',
        |out, a, b| {
            out.push(a);
            out.push(' ');
            out.push(b);
            out.push(' ');
        },
    )
}

/// sacrebleu's kana rules, `(^|^[K])([K]+)(?=$|^[K])` for each kana range: anchored at
/// the start, they only fire when the text starts with kana.
struct KanaRules(Vec<(char, char, FancyRegex)>);

impl KanaRules {
    fn new() -> Self {
        KanaRules(
            KANA_RANGES
                .iter()
                .map(|&(lo, hi)| {
                    let r = format!("\\x{{{:x}}}-\\x{{{:x}}}", lo as u32, hi as u32);
                    let pattern = format!("(^|^[{r}])([{r}]+)(?=$|^[{r}])");
                    (
                        lo,
                        hi,
                        FancyRegex::new(&pattern).expect("valid built-in regex"),
                    )
                })
                .collect(),
        )
    }

    fn apply(&self, mut s: String) -> String {
        for (lo, hi, re) in &self.0 {
            if s.starts_with(|c: char| (*lo..=*hi).contains(&c)) {
                s = re.replace_all(&s, "${1} ${2} ").into_owned();
            }
        }
        s
    }
}

/// sacrebleu's `TercomTokenizer`: returns the tokens of a segment joined by single spaces.
pub struct TercomTokenizer {
    opts: TerOptions,
    kana: KanaRules,
}

impl TercomTokenizer {
    /// A tokenizer for the given TER options.
    pub fn new(opts: TerOptions) -> Self {
        TercomTokenizer {
            opts,
            kana: KanaRules::new(),
        }
    }

    /// Tokenizes one segment; the result's tokens are separated by single spaces.
    pub fn tokenize(&self, sent: &str) -> String {
        if sent.is_empty() {
            return String::new();
        }
        let mut s = if self.opts.case_sensitive {
            sent.to_string()
        } else {
            py_lower(sent)
        };
        if self.opts.normalized {
            s = self.normalize_general_and_western(&s);
            if self.opts.asian_support {
                s = self.normalize_asian(&s);
            }
        }
        if self.opts.no_punct {
            s.retain(|c| !matches!(c, '.' | ',' | '?' | ':' | ';' | '!' | '"' | '(' | ')'));
            if self.opts.asian_support {
                s.retain(|c| !is_asian_punct(c));
            }
        }
        py_join_split(&s)
    }

    fn normalize_general_and_western(&self, sent: &str) -> String {
        let s = sent
            .replace("\n-", "")
            .replace('\n', " ")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        let s = pad_chars(&format!(" {s} "), is_western_punct);
        let mut s = s.replace("'s ", " 's ");
        // `'s$`: the text always ends with the padding space here, but keep the rule.
        if s.ends_with("'s") {
            s.truncate(s.len() - 2);
            s.push_str(" 's");
        }
        let s = split_period_comma_after_non_digit(&s);
        let s = split_period_comma_before_non_digit(&s);
        split_dash_after_digit(&s)
    }

    fn normalize_asian(&self, s: &str) -> String {
        let s = self.kana.apply(pad_chars(s, is_cjk_block));
        pad_chars(&s, is_asian_punct)
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    /// The character predicates against sacrebleu's regular-expression classes.
    #[test]
    fn predicates_match_sacrebleu_classes() {
        let class = |p: &str| Regex::new(&format!("^{p}$")).unwrap();
        let western = class(r"[{-~\[-` -&(-+:-@/]");
        let cjk = class(
            r"[\x{4e00}-\x{9fff}\x{3400}-\x{4dbf}\x{31c0}-\x{31ef}\x{2e80}-\x{2eff}\x{3300}-\x{33ff}\x{f900}-\x{faff}\x{fe30}-\x{fe4f}\x{3200}-\x{3f22}]",
        );
        let punct = class(
            r"[\x{3001}\x{3002}\x{3008}-\x{3011}\x{3014}-\x{301f}\x{ff61}-\x{ff65}\x{30fb}\x{ff0e}\x{ff0c}\x{ff1f}\x{ff1a}\x{ff1b}\x{ff01}\x{ff02}\x{ff08}\x{ff09}]",
        );
        for c in (0..0x11000u32).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(is_western_punct(c), western.is_match(&s), "{c:?}");
            assert_eq!(is_cjk_block(c), cjk.is_match(&s), "{c:?}");
            assert_eq!(is_asian_punct(c), punct.is_match(&s), "{c:?}");
        }
    }

    /// The two-character rules against sacrebleu's regular expressions, on every string
    /// of up to five characters over an alphabet that exercises them.
    #[test]
    fn pair_rules_match_sacrebleu_regexes() {
        type Rule = fn(&str) -> String;
        let rules: [(&str, &str, Rule); 3] = [
            (
                r"([^0-9])([\.,])",
                "${1} ${2} ",
                split_period_comma_after_non_digit,
            ),
            (
                r"([\.,])([^0-9])",
                " ${1} ${2}",
                split_period_comma_before_non_digit,
            ),
            (r"([0-9])(-)", "${1} ${2} ", split_dash_after_digit),
        ];
        let alphabet = ['a', '1', '.', ',', '-', ' '];
        let mut strings = vec![String::new()];
        let mut level = strings.clone();
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(level.iter().cloned());
        }
        for (pattern, replacement, rule) in rules {
            let re = Regex::new(pattern).unwrap();
            for s in &strings {
                assert_eq!(
                    rule(s),
                    re.replace_all(s, replacement),
                    "{pattern} on {s:?}"
                );
            }
        }
    }

    #[test]
    fn kana_rule_fires_only_on_leading_kana() {
        let k = KanaRules::new();
        let (_, _, hira) = &k.0[0];
        assert_eq!(hira.replace_all("ひらがな", "${1} ${2} "), " ひらがな ");
        assert_eq!(hira.replace_all(" ひらがな", "${1} ${2} "), " ひらがな");
        assert_eq!(hira.replace_all("ひらaがな", "${1} ${2} "), "ひらaがな");
    }
}
