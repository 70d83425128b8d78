//! The `.po` text catalog format.
//!
//! Supported: `msgctxt`, `msgid`, `msgid_plural`, `msgstr`, `msgstr[N]`, strings continued on
//! following lines, C escapes (`\n \t \" \\ \a \b \f \v \r \' \?`, octal, `\x` hex), the
//! `#, fuzzy` flag (kept on the [`Message`]), obsolete `#~` entries (dropped), other comments
//! (ignored) and the header's charset (the file is decoded in it).

use std::path::Path;

use super::{decode, encoding_for, header_charset, Catalog, Message};
use crate::error::{DataError, Location, Result};

/// Which field continuation strings append to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Ctx,
    Id,
    Plural,
    Str,
}

/// An entry being assembled.
#[derive(Default)]
struct Builder {
    ctx: Option<String>,
    id: Option<String>,
    plural: Option<String>,
    strs: Vec<String>,
    fuzzy: bool,
    field: Option<Field>,
    start_line: usize,
}

impl Builder {
    /// Whether nothing has been read into this entry yet (flags aside).
    fn is_empty(&self) -> bool {
        self.ctx.is_none() && self.id.is_none()
    }

    /// Whether the entry has its `msgstr` and a new keyword starts a new entry.
    fn is_complete(&self) -> bool {
        !self.strs.is_empty()
    }

    /// Finishes the entry into `out`, or fails if it lacks a msgid or msgstr.
    fn finish(&mut self, out: &mut Vec<Message>, path: &Path) -> Result<()> {
        let b = std::mem::take(self);
        if b.is_empty() {
            self.fuzzy = b.fuzzy;
            return Ok(());
        }
        let loc = Location::Line(b.start_line);
        let msgid =
            b.id.ok_or_else(|| DataError::invalid(path, loc.clone(), "msgctxt without msgid"))?;
        if b.strs.is_empty() {
            return Err(DataError::invalid(path, loc, "msgid without msgstr"));
        }
        out.push(Message {
            context: b.ctx,
            msgid,
            msgid_plural: b.plural,
            msgstr: b.strs,
            fuzzy: b.fuzzy,
        });
        Ok(())
    }
}

/// Parses `.po` bytes, decoding them in the charset the header declares.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Catalog> {
    // The syntax is ASCII, so a lossy first pass finds the header's charset.
    let lossy = String::from_utf8_lossy(bytes);
    let first = parse_text(&lossy, path)?;
    let enc = encoding_for(first.header().and_then(header_charset), path)?;
    if enc == encoding_rs::UTF_8 {
        if let std::borrow::Cow::Borrowed(_) = lossy {
            return Ok(first);
        }
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        return Err(DataError::invalid(
            path,
            Location::Line(line),
            "invalid UTF-8 (the header declares UTF-8 or no charset)",
        ));
    }
    parse_text(&decode(enc, bytes, path, Location::File)?, path)
}

/// Parses `.po` text.
pub fn parse_text(text: &str, path: &Path) -> Result<Catalog> {
    let mut out = Vec::new();
    let mut b = Builder::default();
    // A byte-order mark some editors write is not part of the first keyword.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let bad = |msg: String| DataError::invalid(path, Location::Line(line_no), msg);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if b.is_complete() {
                b.finish(&mut out, path)?;
            }
            if rest.starts_with('~') {
                // Obsolete entry: its lines and any flags before it are dropped.
                b.fuzzy = false;
            } else if let Some(flags) = rest.strip_prefix(',') {
                b.fuzzy |= flags.split(',').any(|f| f.trim() == "fuzzy");
            }
            continue;
        }
        if line.starts_with('"') {
            let s = unquote(line).map_err(bad)?;
            let field = b
                .field
                .ok_or_else(|| bad("string continuation without a keyword before it".into()))?;
            match field {
                Field::Ctx => b.ctx.get_or_insert_with(String::new).push_str(&s),
                Field::Id => b.id.get_or_insert_with(String::new).push_str(&s),
                Field::Plural => b.plural.get_or_insert_with(String::new).push_str(&s),
                Field::Str => b
                    .strs
                    .last_mut()
                    .expect("Str field has a msgstr")
                    .push_str(&s),
            }
            continue;
        }
        let (kw, rest) = line
            .split_once(|c: char| c.is_whitespace())
            .ok_or_else(|| bad(format!("expected a keyword and a string, found {line:?}")))?;
        let s = unquote(rest.trim()).map_err(bad)?;
        keyword(&mut b, &mut out, kw, s, line_no, path)?;
    }
    if b.is_complete() || !b.is_empty() {
        b.finish(&mut out, path)?;
    }
    Ok(Catalog { messages: out })
}

/// Applies one keyword line to the builder.
fn keyword(
    b: &mut Builder,
    out: &mut Vec<Message>,
    kw: &str,
    s: String,
    line_no: usize,
    path: &Path,
) -> Result<()> {
    let bad = |msg: String| DataError::invalid(path, Location::Line(line_no), msg);
    match kw {
        "msgctxt" | "msgid" => {
            if b.is_complete() || (kw == "msgctxt" && !b.is_empty()) || b.id.is_some() {
                if !b.is_complete() {
                    return Err(bad(format!("{kw} before the previous entry's msgstr")));
                }
                b.finish(out, path)?;
            }
            if b.is_empty() {
                b.start_line = line_no;
            }
            if kw == "msgctxt" {
                b.ctx = Some(s);
                b.field = Some(Field::Ctx);
            } else {
                b.id = Some(s);
                b.field = Some(Field::Id);
            }
        }
        "msgid_plural" => {
            if b.id.is_none() || b.plural.is_some() || b.is_complete() {
                return Err(bad("msgid_plural must follow a msgid".into()));
            }
            b.plural = Some(s);
            b.field = Some(Field::Plural);
        }
        _ if kw == "msgstr" || kw.starts_with("msgstr[") => {
            if b.id.is_none() {
                return Err(bad(format!("{kw} without a msgid before it")));
            }
            let index = match kw.strip_prefix("msgstr[").and_then(|r| r.strip_suffix(']')) {
                Some(n) => Some(
                    n.parse::<usize>()
                        .map_err(|_| bad(format!("bad index in {kw}")))?,
                ),
                None if kw == "msgstr" => None,
                None => return Err(bad(format!("unknown keyword {kw:?}"))),
            };
            match (index, b.plural.is_some()) {
                (None, false) if b.strs.is_empty() => {}
                (Some(n), true) if n == b.strs.len() => {}
                (None, true) => {
                    return Err(bad("a plural entry needs msgstr[N], not msgstr".into()))
                }
                (Some(_), false) => return Err(bad(format!("{kw} without msgid_plural"))),
                _ => {
                    return Err(bad(format!(
                        "{kw} out of order; expected msgstr[{}]",
                        b.strs.len()
                    )))
                }
            }
            b.strs.push(s);
            b.field = Some(Field::Str);
        }
        _ => {
            return Err(bad(format!(
                "unknown keyword {kw:?}; expected msgctxt, msgid, msgid_plural or msgstr"
            )))
        }
    }
    Ok(())
}

/// Unquotes and unescapes one `"…"` string literal.
fn unquote(lit: &str) -> std::result::Result<String, String> {
    let inner = lit
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| lit.len() >= 2)
        .ok_or_else(|| format!("expected a string in double quotes, found {lit:?}"))?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '"' {
            return Err(format!("unescaped '\"' inside string {lit:?}"));
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = chars
            .next()
            .ok_or_else(|| format!("string ends in a backslash: {lit:?}"))?;
        let simple = match e {
            'n' => Some(b'\n'),
            't' => Some(b'\t'),
            'r' => Some(b'\r'),
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'v' => Some(0x0b),
            '"' | '\\' | '\'' | '?' => Some(e as u8),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        let (radix, max, mut value) = match e {
            '0'..='7' => (8, 2, e.to_digit(8).expect("octal digit")),
            'x' => (16, usize::MAX, 0),
            _ => return Err(format!("unknown escape \\{e} in {lit:?}")),
        };
        let mut digits = 0;
        while digits < max {
            match chars.peek().and_then(|(_, d)| d.to_digit(radix)) {
                Some(d) => {
                    // A value past a byte is refused below; saturating keeps a long `\x`
                    // run from overflowing on the way there.
                    value = value.saturating_mul(radix).saturating_add(d);
                    digits += 1;
                    chars.next();
                }
                None => break,
            }
        }
        if e == 'x' && digits == 0 {
            return Err(format!("\\x without hex digits in {lit:?}"));
        }
        out.push(u8::try_from(value).map_err(|_| format!("escape out of byte range in {lit:?}"))?);
    }
    String::from_utf8(out).map_err(|_| format!("escapes in {lit:?} produce invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Catalog> {
        parse(s.as_bytes(), Path::new("t.po"))
    }

    const SAMPLE: &str = r#"# Translator comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#: src/main.c:10
#, c-format
msgctxt "menu"
msgid "_Open the file"
msgstr "Datei _öffnen"

#, fuzzy, c-format
msgid "Fuzzy one here"
msgstr "Unscharf"

msgid ""
"Multi-line "
"message\twith \"quotes\"\n"
msgstr "Mehr\172eilig \x41\101"

#| msgid "%d old file"
msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d Datei"
msgstr[1] "%d Dateien"

#, fuzzy
#~ msgid "Obsolete"
#~ msgstr "Veraltet"

msgid "Last one"
msgstr "Letzte"
"#;

    #[test]
    fn full_syntax() {
        let cat = parse_str(SAMPLE).unwrap();
        let m = &cat.messages;
        assert_eq!(m.len(), 6, "{m:#?}");
        assert!(m[0].is_header());
        assert!(cat.header().unwrap().contains("nplurals=2"));
        assert_eq!(m[1].context.as_deref(), Some("menu"));
        assert_eq!(m[1].msgstr, ["Datei _öffnen"]);
        assert!(!m[1].fuzzy);
        assert!(m[2].fuzzy);
        assert_eq!(m[3].msgid, "Multi-line message\twith \"quotes\"\n");
        assert_eq!(m[3].msgstr, ["Mehrzeilig AA"]);
        assert_eq!(m[4].msgid_plural.as_deref(), Some("%d files"));
        assert_eq!(m[4].msgstr, ["%d Datei", "%d Dateien"]);
        assert_eq!(m[5].msgid, "Last one");
        assert!(
            !m[5].fuzzy,
            "fuzzy flag of the obsolete entry must not leak"
        );
    }

    #[test]
    fn bom_and_crlf() {
        let cat = parse_str("\u{feff}msgid \"a b c\"\r\nmsgstr \"x y z\"\r\n").unwrap();
        assert_eq!(cat.messages[0].msgstr, ["x y z"]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_str("msgid \"a\"\nmsgid \"b\"\nmsgstr \"c\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.po:2: msgid before the previous entry's msgstr");
        let e = parse_str("msgid \"a\"\nmsgstr \"b\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.po:2: expected a string in double quotes"),
            "{e}"
        );
        let e = parse_str("\"orphan\"\n").unwrap_err().to_string();
        assert!(e.starts_with("t.po:1: string continuation"), "{e}");
        let e = parse_str("msgid \"a\"\nmsgstr[0] \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("without msgid_plural"),
            "{e}"
        );
        let e = parse_str("msgid \"a\"\nmsgid_plural \"as\"\nmsgstr[1] \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of order"), "{e}");
        let e = parse_str("msgid \"a\"\n").unwrap_err().to_string();
        assert_eq!(e, "t.po:1: msgid without msgstr");
        let e = parse_str("msgid \"a\\q\"\nmsgstr \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown escape"), "{e}");
        let e = parse_str("msgfoo \"a\"\n").unwrap_err().to_string();
        assert!(e.contains("unknown keyword"), "{e}");
        // Regression: a long `\x` run overflowed the accumulator (a panic in debug builds).
        let e = parse_str("msgid \"a\"\nmsgstr \"\\x111111111111\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:") && e.contains("out of byte range"), "{e}");
    }

    #[test]
    fn declared_latin1_is_decoded() {
        let mut bytes = b"msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=ISO-8859-1\\n\"\n\nmsgid \"Coffee shop\"\nmsgstr \"Caf".to_vec();
        bytes.extend_from_slice(b"\xe9\"\n");
        let cat = parse(&bytes, Path::new("l.po")).unwrap();
        assert_eq!(cat.messages[1].msgstr[0], "Café");
        let raw = b"msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\nmsgid \"Coffee shop\"\nmsgstr \"Caf\xff\"\n";
        let e = parse(raw, Path::new("u.po")).unwrap_err().to_string();
        assert!(e.starts_with("u.po:5: invalid UTF-8"), "{e}");
    }
}
