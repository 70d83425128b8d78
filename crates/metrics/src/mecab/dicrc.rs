//! The dictionary's `dicrc` settings file, read as MeCab's `Param::load` reads it:
//! lines `key = value`; empty lines and lines starting with `;` or `#` are skipped; the
//! first setting of a key wins; the value keeps trailing blanks.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// MeCab's default for `max-grouping-size`.
const DEFAULT_MAX_GROUPING_SIZE: usize = 24;

/// The settings of one `dicrc`.
#[derive(Debug, Default)]
pub(crate) struct Dicrc {
    values: HashMap<String, String>,
}

impl Dicrc {
    /// Reads `path`; MeCab requires the file to exist.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read MeCab settings {}", path.display()))?;
        Self::parse(path, &String::from_utf8_lossy(&text))
    }

    /// Parses `dicrc` text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut values = HashMap::new();
        for (i, line) in text.split('\n').enumerate() {
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                bail!(
                    "{}:{}: format error, `key = value` expected: {line}",
                    path.display(),
                    i + 1
                );
            };
            let key = key.trim_end_matches(|c: char| c.is_ascii_whitespace());
            let value = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
            values
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        Ok(Dicrc { values })
    }

    /// `max-grouping-size`: the longest same-category run (after its first character)
    /// proposed as one unknown word; 24 when unset or not a positive number.
    pub fn max_grouping_size(&self) -> usize {
        self.values
            .get("max-grouping-size")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_GROUPING_SIZE)
    }

    /// mecab-ko's `left-space-penalty-factor`: pairs `posid,penalty` that add `penalty`
    /// to the connection cost of a word of part-of-speech `posid` preceded by a space.
    pub fn left_space_penalties(&self, path: &Path) -> Result<Vec<(u16, i32)>> {
        let Some(value) = self.values.get("left-space-penalty-factor") else {
            return Ok(Vec::new());
        };
        let fields: Vec<&str> = value.split(',').collect();
        if !fields.len().is_multiple_of(2) {
            bail!(
                "{}: left-space-penalty-factor needs posid,penalty pairs, got {} numbers",
                path.display(),
                fields.len()
            );
        }
        Ok(fields
            .chunks_exact(2)
            .map(|pair| (c_strtol(pair[0]) as u16, c_strtol(pair[1]) as i32))
            .collect())
    }
}

/// C's `strtol(s, NULL, 0)`: leading blanks, a sign, then hex (`0x`), octal (`0`) or
/// decimal digits up to the first other character; 0 when there are none.
fn c_strtol(s: &str) -> i64 {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let n = digits
        .chars()
        .map_while(|c| c.to_digit(radix))
        .fold(0i64, |acc, d| {
            acc.saturating_mul(radix as i64).saturating_add(d as i64)
        });
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_mecab_param() {
        let text = "; comment\n# other\n\nmax-grouping-size = 5\nmax-grouping-size = 9\n\
                    left-space-penalty-factor = 100,3000,0x10,010\n";
        let rc = Dicrc::parse(Path::new("dicrc"), text).unwrap();
        assert_eq!(rc.max_grouping_size(), 5);
        let pen = rc.left_space_penalties(Path::new("dicrc")).unwrap();
        assert_eq!(pen, vec![(100, 3000), (16, 8)]);
        assert_eq!(Dicrc::default().max_grouping_size(), 24);
    }

    #[test]
    fn line_without_equals_is_an_error() {
        let e = Dicrc::parse(Path::new("dicrc"), "cost-factor = 800\nbroken\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("dicrc:2") && e.contains("broken"), "{e}");
    }
}
