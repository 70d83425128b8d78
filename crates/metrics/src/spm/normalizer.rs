//! SentencePiece's normalizer: rule-based rewriting with the precompiled charsmap, then
//! the whitespace switches of `NormalizerSpec` (dummy prefix, collapsing, `▁` escaping).

use anyhow::Result;

use super::charsmap::CharsMap;
use super::proto::{NormalizerSpec, TrainerSpec};
use super::trie::Trie;

/// The space marker U+2581 (`▁`).
pub(crate) const SPACE_SYMBOL: &str = "\u{2581}";

/// Normalization settings read from a model.
#[derive(Debug, Clone)]
pub(crate) struct Normalizer {
    rules: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    treat_whitespace_as_suffix: bool,
}

impl Normalizer {
    /// The normalizer of a model (an absent or empty charsmap means no rewriting).
    pub(crate) fn new(spec: &NormalizerSpec, trainer: &TrainerSpec) -> Result<Self> {
        let rules = match spec.precompiled_charsmap.as_deref() {
            Some(blob) if !blob.is_empty() => Some(CharsMap::parse(blob)?),
            _ => None,
        };
        Ok(Self {
            rules,
            add_dummy_prefix: spec.add_dummy_prefix(),
            remove_extra_whitespaces: spec.remove_extra_whitespaces(),
            escape_whitespaces: spec.escape_whitespaces(),
            treat_whitespace_as_suffix: trainer.treat_whitespace_as_suffix(),
        })
    }

    /// Normalizes one line as `Normalizer::Normalize` does. User-defined symbols
    /// (`user_defined`) are copied verbatim, never rewritten.
    pub(crate) fn normalize(&self, input: &str, user_defined: &Trie) -> String {
        let mut input = input;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (text, consumed) = self.normalize_prefix(input, user_defined);
                if text != " " {
                    break;
                }
                input = &input[consumed..];
            }
        }
        let mut out = String::with_capacity(input.len() * 3);
        if input.is_empty() {
            return out;
        }
        let space = if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        };
        if !self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(space);
        }
        let mut prev_is_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut text, consumed) = self.normalize_prefix(input, user_defined);
            if prev_is_space {
                text = text.trim_start_matches(' ');
            }
            if !text.is_empty() {
                if self.escape_whitespaces {
                    out.push_str(&text.replace(' ', SPACE_SYMBOL));
                } else {
                    out.push_str(text);
                }
                prev_is_space = text.ends_with(' ');
            }
            input = &input[consumed..];
            if !self.remove_extra_whitespaces {
                prev_is_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        if self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(space);
        }
        out
    }

    /// The normalized text of the longest prefix of `input` a rule applies to, and the
    /// number of input bytes it consumes: a user-defined symbol as is, else the longest
    /// charsmap rule, else the first character unchanged.
    fn normalize_prefix<'a>(&'a self, input: &'a str, user_defined: &Trie) -> (&'a str, usize) {
        if let Some((len, _)) = user_defined.longest_prefix(input.as_bytes()) {
            return (&input[..len], len);
        }
        let rule = self
            .rules
            .as_ref()
            .and_then(|rules| rules.longest_match(input.as_bytes()));
        match rule {
            Some((len, text)) if input.is_char_boundary(len) => (text, len),
            _ => {
                let len = first_char_len(input);
                (&input[..len], len)
            }
        }
    }
}

/// Byte length of the first character of a non-empty string.
pub(crate) fn first_char_len(s: &str) -> usize {
    s.chars().next().map_or(0, char::len_utf8)
}
