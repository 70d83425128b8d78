//! The tercom tokenizer of sacrebleu (`tokenizers/tokenizer_ter.py`), a port of tercom's
//! `Normalizer.java`: lowercasing, optional normalization (western punctuation splitting,
//! XML unescaping, CJK splitting) and optional punctuation removal.

use fancy_regex::Regex as FancyRegex;
use regex::Regex;

use super::TerOptions;
use crate::text::{py_join_split, py_lower};

/// Western punctuation split by tercom's normalization (R1): every ASCII punctuation mark
/// except `'`, `-`, `,` and `.`, plus the space itself.
const WESTERN_PUNCT: &str = r"([\x20-\x26\x28-\x2B\x2F\x3A-\x40\x5B-\x60\x7B-\x7E])";
/// CJK ideographs and related blocks, each split into its own token.
const CJK_BLOCKS: [&str; 4] = [
    r"([\x{4e00}-\x{9fff}\x{3400}-\x{4dbf}])",
    r"([\x{31c0}-\x{31ef}\x{2e80}-\x{2eff}])",
    r"([\x{3300}-\x{33ff}\x{f900}-\x{faff}\x{fe30}-\x{fe4f}])",
    r"([\x{3200}-\x{3f22}])",
];
/// Hiragana, Katakana and Katakana Phonetic Extensions runs (split only when the whole
/// text is such a run, exactly as sacrebleu's anchored lookahead patterns behave).
const KANA_RANGES: [&str; 3] = [
    r"\x{3040}-\x{309f}",
    r"\x{30a0}-\x{30ff}",
    r"\x{31f0}-\x{31ff}",
];
/// CJK punctuation.
const ASIAN_PUNCT: &str =
    r"([\x{3001}\x{3002}\x{3008}-\x{3011}\x{3014}-\x{301f}\x{ff61}-\x{ff65}\x{30fb}])";
/// Full-width punctuation.
const FULL_WIDTH_PUNCT: &str =
    r"([\x{ff0e}\x{ff0c}\x{ff1f}\x{ff1a}\x{ff1b}\x{ff01}\x{ff02}\x{ff08}\x{ff09}])";

/// Compiled regular expressions of the tercom tokenizer.
struct Patterns {
    western_punct: Regex,
    period_comma_after_non_digit: Regex,
    period_comma_before_non_digit: Regex,
    dash_after_digit: Regex,
    cjk_blocks: Vec<Regex>,
    kana_runs: Vec<FancyRegex>,
    asian_punct: Regex,
    full_width_punct: Regex,
}

impl Patterns {
    fn new() -> Self {
        let re = |p: &str| Regex::new(p).expect("valid built-in regex");
        let kana = |r: &str| {
            FancyRegex::new(&format!("(^|^[{r}])([{r}]+)(?=$|^[{r}])"))
                .expect("valid built-in regex")
        };
        Patterns {
            western_punct: re(WESTERN_PUNCT),
            period_comma_after_non_digit: re(r"([^0-9])([\.,])"),
            period_comma_before_non_digit: re(r"([\.,])([^0-9])"),
            dash_after_digit: re(r"([0-9])(-)"),
            cjk_blocks: CJK_BLOCKS.iter().map(|p| re(p)).collect(),
            kana_runs: KANA_RANGES.iter().map(|r| kana(r)).collect(),
            asian_punct: re(ASIAN_PUNCT),
            full_width_punct: re(FULL_WIDTH_PUNCT),
        }
    }
}

/// sacrebleu's `TercomTokenizer`: returns the tokens of a segment joined by single spaces.
pub struct TercomTokenizer {
    opts: TerOptions,
    patterns: Patterns,
}

impl TercomTokenizer {
    /// A tokenizer for the given TER options.
    pub fn new(opts: TerOptions) -> Self {
        TercomTokenizer {
            opts,
            patterns: Patterns::new(),
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
                s = self.normalize_asian(s);
            }
        }
        if self.opts.no_punct {
            s.retain(|c| !matches!(c, '.' | ',' | '?' | ':' | ';' | '!' | '"' | '(' | ')'));
            if self.opts.asian_support {
                s = self.patterns.asian_punct.replace_all(&s, "").into_owned();
                s = self
                    .patterns
                    .full_width_punct
                    .replace_all(&s, "")
                    .into_owned();
            }
        }
        py_join_split(&s)
    }

    fn normalize_general_and_western(&self, sent: &str) -> String {
        let p = &self.patterns;
        let s = sent
            .replace("\n-", "")
            .replace('\n', " ")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        let s = format!(" {s} ");
        let s = p.western_punct.replace_all(&s, " ${1} ");
        let mut s = s.replace("'s ", " 's ");
        // `'s$`: the text always ends with the padding space here, but keep the rule.
        if s.ends_with("'s") {
            s.truncate(s.len() - 2);
            s.push_str(" 's");
        }
        let s = p.period_comma_after_non_digit.replace_all(&s, "${1} ${2} ");
        let s = p
            .period_comma_before_non_digit
            .replace_all(&s, " ${1} ${2}");
        p.dash_after_digit
            .replace_all(&s, "${1} ${2} ")
            .into_owned()
    }

    fn normalize_asian(&self, mut s: String) -> String {
        let p = &self.patterns;
        for re in &p.cjk_blocks {
            s = re.replace_all(&s, " ${1} ").into_owned();
        }
        for re in &p.kana_runs {
            s = re.replace_all(&s, "${1} ${2} ").into_owned();
        }
        s = p.asian_punct.replace_all(&s, " ${1} ").into_owned();
        p.full_width_punct.replace_all(&s, " ${1} ").into_owned()
    }
}
