//! Python string semantics that sacrebleu relies on: `str.split()`, `str.strip()`.

/// Whether `c` is whitespace for Python's `str.split()`/`str.strip()`
/// (`Py_UNICODE_ISSPACE`: bidi class WS/B/S or category Zs). Unlike Rust's
/// `char::is_whitespace`, this includes U+001C–U+001F and excludes nothing else.
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\u{09}'..='\u{0D}'
            | '\u{1C}'..='\u{20}'
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Python's `s.split()`: runs of whitespace separate tokens, no empty tokens.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|t| !t.is_empty())
}

/// Python's `s.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `s.rstrip()`.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python's `' '.join(s.split())`.
pub fn py_join_split(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for tok in py_split(s) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(tok);
    }
    out
}

/// Python's `s.lower()` (full case mapping with the final-sigma rule, as Rust's).
pub fn py_lower(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_python_separators() {
        let s = "a\u{1C}b\u{A0}c\u{3000}d  e\u{200B}f";
        let toks: Vec<&str> = py_split(s).collect();
        assert_eq!(toks, ["a", "b", "c", "d", "e\u{200B}f"]);
        assert_eq!(py_strip("\u{85} x \u{2029}"), "x");
        assert_eq!(py_join_split("  a \t b\n"), "a b");
    }
}
