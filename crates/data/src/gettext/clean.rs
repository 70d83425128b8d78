//! Text cleaning for catalog messages: accelerator markers out, placeholders kept, whitespace
//! normalised; plus the word count and the split key used by import.
//!
//! Accelerator rules (both sides of a pair):
//! - `_X` (GTK mnemonic) loses its `_` when it starts a word (start of text, after a space or
//!   after opening punctuation) and the word has no other `_`: `_File` → `File`, `Save _As` →
//!   `Save As`, but `snake_case`, `_NET_WM_NAME`, `%(file_name)s`, `$_X` stay.
//! - `&X` (Qt/KDE) loses its `&` at the start of a word (`&Open`, `Save &As`) or inside a word
//!   before a lower-case letter (`E&xit`), but not in entities (`&amp;`, `&#169;`), not before
//!   a space (`a & b`), not in `AT&T`/`R&D` and not in `a=1&b=2`; `&&` is left alone.
//! - A parenthesised mnemonic as CJK translations write it, `打开(_O)` or `開く(&O)`, is removed
//!   with any space before it.

use std::sync::LazyLock;

use regex::Regex;

/// `(_X)` / `(&X)` mnemonics appended to CJK labels.
static PAREN_MNEMONIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[ \t]*[(（][_&][\p{L}\p{N}][)）]").expect("valid regex"));

/// Format placeholders: printf (`%s`, `%1$d`, `%-5.2lf`, `%%`, gettext's `%<PRIuMAX>`),
/// Python (`%(name)s`),
/// braces (`{0}`, `{name}`) and shell-style variables (`$VAR`, `${VAR}`).
pub static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"%<\w+>|%(?:\([^)\s]+\))?(?:\d+\$)?[-+ #0'I]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGaAcspnm%]|\{[\w.:\-]*\}|\$\{?\w+\}?",
    )
    .expect("valid regex")
});

/// Characters after which a `_`/`&` starts a word.
fn opens_word(prev: Option<char>) -> bool {
    match prev {
        None => true,
        Some(c) => c.is_whitespace() || "(\"'“‘«‹[/-–—:;,.¿¡>".contains(c),
    }
}

/// The word (letters, digits, `_`) starting at byte `at` of `s`.
fn word_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| i > 0 && !(c.is_alphanumeric() || c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    &rest[..end]
}

/// Whether `&` at byte `at` begins an HTML/XML entity (`&amp;`, `&#169;`, `&#xA9;`).
///
/// Only the run of `#` and ASCII letters and digits after the `&` is read: a `;` further on
/// cannot end an entity, so every `&` of a message costs the length of its own run (runs
/// end at the next `&`), not a scan to the next `;` (quadratic in a message of many `&`).
fn is_entity(s: &str, at: usize) -> bool {
    let rest = &s.as_bytes()[at + 1..];
    let len = rest
        .iter()
        .position(|&b| !(b == b'#' || b.is_ascii_alphanumeric()))
        .unwrap_or(rest.len());
    if rest.get(len) != Some(&b';') {
        return false;
    }
    let body = &rest[..len];
    let numeric = body
        .strip_prefix(b"#x")
        .or_else(|| body.strip_prefix(b"#X"))
        .map(|h| !h.is_empty() && h.iter().all(u8::is_ascii_hexdigit))
        .or_else(|| {
            body.strip_prefix(b"#")
                .map(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
        });
    numeric.unwrap_or_else(|| {
        !body.is_empty() && body.len() <= 10 && body.iter().all(u8::is_ascii_alphanumeric)
    })
}

/// Whether the marker at byte `at` (a `_` or `&`) is an accelerator to remove.
fn is_accelerator(s: &str, at: usize, prev: Option<char>) -> bool {
    let marker = s[at..].chars().next().expect("marker char");
    let Some(next) = s[at + 1..].chars().next() else {
        return false;
    };
    if !next.is_alphanumeric() {
        return false;
    }
    match marker {
        '_' => opens_word(prev) && !word_at(s, at + 1).contains('_'),
        '&' => {
            if is_entity(s, at) {
                return false;
            }
            let word = word_at(s, at + 1);
            let query_param = s[at + 1 + word.len()..].starts_with('=');
            let mid_word = prev.is_some_and(char::is_alphabetic) && next.is_lowercase();
            !query_param && (opens_word(prev) || mid_word)
        }
        _ => false,
    }
}

/// Removes accelerator markers (see the module documentation for the rules).
pub fn strip_accelerators(text: &str) -> String {
    let text = PAREN_MNEMONIC.replace_all(text, "");
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let double = (c == '&' && prev == Some('&')) || text[i + c.len_utf8()..].starts_with('&');
        if (c == '_' || (c == '&' && !double)) && is_accelerator(&text, i, prev) {
            prev = Some(c);
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Whether `c` is whitespace to collapse: any Unicode space except the no-break spaces
/// (U+00A0, U+2007, U+202F), which carry typography (French `« … »`, `: `).
fn collapsible(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}')
}

/// Collapses runs of whitespace (line breaks and tabs included) into one space and trims.
pub fn normalize_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(collapsible).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A catalog string made corpus-ready: accelerators removed, whitespace normalised.
pub fn clean_text(text: &str) -> String {
    normalize_whitespace(&strip_accelerators(text))
}

/// Placeholders in order of appearance.
pub fn placeholders(text: &str) -> Vec<&str> {
    PLACEHOLDER.find_iter(text).map(|m| m.as_str()).collect()
}

/// Words in `text`: whitespace-separated tokens with a letter once placeholders are removed.
pub fn word_count(text: &str) -> usize {
    PLACEHOLDER
        .replace_all(text, " ")
        .split_whitespace()
        .filter(|t| t.chars().any(char::is_alphabetic))
        .count()
}

/// The key that decides a sentence's split: lower-cased letters and digits, words joined by
/// single spaces. Variants that differ only in case, punctuation, placeholders' punctuation
/// or spacing (`Open file`, `Open File…`) share a key and therefore a split.
pub fn split_key(english: &str) -> String {
    let lowered = english.to_lowercase();
    let words: Vec<String> = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_accelerators() {
        assert_eq!(strip_accelerators("_File"), "File");
        assert_eq!(strip_accelerators("Save _As…"), "Save As…");
        assert_eq!(strip_accelerators("_Öffnen"), "Öffnen");
        assert_eq!(strip_accelerators("(_Recent)"), "(Recent)");
        assert_eq!(strip_accelerators("snake_case stays"), "snake_case stays");
        assert_eq!(
            strip_accelerators("_NET_WM_NAME is set"),
            "_NET_WM_NAME is set"
        );
        assert_eq!(strip_accelerators("%(file_name)s"), "%(file_name)s");
        assert_eq!(
            strip_accelerators("{user_name} and $_X"),
            "{user_name} and $_X"
        );
        assert_eq!(strip_accelerators("a __b"), "a __b");
        assert_eq!(strip_accelerators("trailing _"), "trailing _");
    }

    #[test]
    fn ampersand_accelerators() {
        assert_eq!(strip_accelerators("&Open"), "Open");
        assert_eq!(strip_accelerators("Save &As"), "Save As");
        assert_eq!(strip_accelerators("E&xit"), "Exit");
        assert_eq!(strip_accelerators("Tom &amp; Jerry"), "Tom &amp; Jerry");
        assert_eq!(
            strip_accelerators("&#169; 2020 &#xA9;"),
            "&#169; 2020 &#xA9;"
        );
        assert_eq!(strip_accelerators("cats & dogs"), "cats & dogs");
        assert_eq!(strip_accelerators("AT&T and R&D"), "AT&T and R&D");
        assert_eq!(strip_accelerators("?a=1&b=2 x&y=3"), "?a=1&b=2 x&y=3");
        assert_eq!(
            strip_accelerators("make && make install"),
            "make && make install"
        );
        assert_eq!(strip_accelerators("Rock&&Roll"), "Rock&&Roll");
    }

    /// `is_entity` as it was before it became linear: the body is everything up to the next
    /// `;`, however far.
    fn is_entity_to_next_semicolon(s: &str, at: usize) -> bool {
        let rest = &s[at + 1..];
        let Some(end) = rest.find(';') else {
            return false;
        };
        let body = &rest[..end];
        let numeric = body
            .strip_prefix("#x")
            .or_else(|| body.strip_prefix("#X"))
            .map(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            .or_else(|| {
                body.strip_prefix('#')
                    .map(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            });
        numeric.unwrap_or_else(|| {
            !body.is_empty() && body.len() <= 10 && body.chars().all(|c| c.is_ascii_alphanumeric())
        })
    }

    #[test]
    fn entities_are_recognised_as_before() {
        // Every string of up to 5 characters over an alphabet of entity parts, plus longer
        // cases: the linear scan agrees with the old one at every `&`.
        let alphabet = ['&', '#', 'x', 'X', 'a', 'F', '9', ';', ' ', 'é'];
        let mut texts: Vec<String> = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..5 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |&c| format!("{t}{c}")))
                .collect();
            all.extend(texts.iter().cloned());
        }
        all.extend(
            [
                "&amp;",
                "&#169;",
                "&#xA9;",
                "&#XfF;",
                "&#x;",
                "&#;",
                "&;",
                "&abcdefghij;",
                "&abcdefghijk;",
                "&a b;",
                "&é;",
                "&a&b;",
                "&#12a;",
                "&#x1g;",
                "&a#1;",
                "&amp",
                "x&amp;&lt;&#9;",
            ]
            .map(String::from),
        );
        for text in &all {
            for (at, _) in text.match_indices('&') {
                assert_eq!(
                    is_entity(text, at),
                    is_entity_to_next_semicolon(text, at),
                    "{text:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn megabyte_messages_are_cleaned_in_one_pass() {
        // Each `&` used to scan to the next `;` (none here): ~3·10¹¹ bytes read for this message.
        let n = 1 << 19;
        assert_eq!(strip_accelerators(&"&a".repeat(n)), "a".repeat(n));
        // Every rule at once, a megabyte of it: cleaned as each piece is alone.
        let piece = "Save &As _File &amp; a&b=1 E&xit AT&T snake_case 打开(_O) &#169; && ";
        let n = (1 << 20) / piece.len();
        assert_eq!(
            strip_accelerators(&piece.repeat(n)),
            strip_accelerators(piece).repeat(n)
        );
    }

    #[test]
    fn cjk_parenthesised_mnemonics() {
        assert_eq!(strip_accelerators("打开(_O)"), "打开");
        assert_eq!(strip_accelerators("開く(_O)..."), "開く...");
        assert_eq!(strip_accelerators("파일 (&F)"), "파일");
        assert_eq!(strip_accelerators("(_O) alone"), " alone");
    }

    #[test]
    fn placeholders_survive_cleaning() {
        for s in [
            "Copy %s to %s",
            "%1$s of %2$d files",
            "%-5.2lf%% done",
            "Hello {name}, you have {0} new",
            "%(count)d items in ${HOME}",
            "_Delete %s?",
        ] {
            let cleaned = clean_text(s);
            assert_eq!(placeholders(&cleaned), placeholders(s), "{s}");
        }
        assert_eq!(placeholders("%1$s of %2$d, %%"), ["%1$s", "%2$d", "%%"]);
        assert_eq!(placeholders("%Id and %'Iu"), ["%Id", "%'Iu"]);
    }

    #[test]
    fn whitespace_words_and_keys() {
        assert_eq!(
            normalize_whitespace("  a\n\tb  c \u{a0}: "),
            "a b c \u{a0}:"
        );
        assert_eq!(clean_text("\n_Open the\n  file\n"), "Open the file");
        assert_eq!(word_count("Copy %s to %s"), 2);
        assert_eq!(word_count("%s: %s %d"), 0);
        assert_eq!(word_count("%<PRIuMAX> of %s"), 1);
        assert_eq!(word_count("Open the file"), 3);
        assert_eq!(split_key("Open File…"), split_key("open  file"));
        assert_ne!(split_key("Open file"), split_key("Open files"));
    }
}
