//! The GNU `.mo` binary catalog format, both byte orders.
//!
//! Layout (GNU gettext manual, "The Format of GNU MO Files"): a 28-byte header (magic
//! `0x950412de`, revision, string count N, offset of the original-string table, offset of the
//! translation table, hash table size and offset), two tables of N `(length, offset)` pairs,
//! then the NUL-terminated strings. A context is stored as `ctx\x04msgid`; a plural message as
//! `msgid\0msgid_plural` with translations `msgstr[0]\0msgstr[1]…`. Revision 1 files may
//! add system-dependent strings (`%<PRIuMAX>` placeholders), read here as `msgunfmt` shows them.

use std::borrow::Cow;
use std::path::Path;

use super::{decode, encoding_for, header_charset, Catalog, Message};
use crate::error::{DataError, Location, Result};

/// Marks the last segment of a system-dependent string.
const SEGMENTS_END: u32 = u32::MAX;
/// The magic number, as read in the file's own byte order.
const MAGIC: u32 = 0x9504_12de;
/// Size of the fixed header.
const HEADER_LEN: usize = 28;
/// The most string bytes a catalog may reference, as a multiple of its own size. `msgfmt`
/// stores each string once, so a real catalog references at most its size; the format lets
/// entries share bytes, and without this bound a few kilobytes of table entries pointing at
/// one long string would expand quadratically.
pub const MAX_EXPANSION: usize = 4;

/// An (original, translation) pair of undecoded strings.
type RawEntry<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Reads `u32`s in one byte order.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    /// The `u32` at byte `at`, if the file is long enough.
    fn u32(self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The string described by table entry `i` of the table at `table`.
    fn string(self, table: usize, i: usize) -> Option<&'a [u8]> {
        let entry = table.checked_add(i.checked_mul(8)?)?;
        let len = self.u32(entry)? as usize;
        let off = self.u32(entry + 4)? as usize;
        self.bytes.get(off..off.checked_add(len)?)
    }

    /// The system-dependent string whose `sysdep_string` record is at byte `at`: its static
    /// pieces with each segment reference written `<NAME>` (`%<PRIuMAX>`), or bare if one
    /// letter (`%Id`), as `msgunfmt` shows it. `segments` is the segment table, `n_segments` its length.
    /// The bytes written are taken from `budget`; `None` when it runs out.
    fn sysdep_string(
        self,
        at: usize,
        segments: usize,
        n_segments: usize,
        budget: &mut usize,
    ) -> Option<Vec<u8>> {
        let mut pos = self.u32(at)? as usize;
        let mut out = Vec::new();
        let mut pair = at.checked_add(4)?;
        loop {
            let size = self.u32(pair)? as usize;
            let reference = self.u32(pair.checked_add(4)?)?;
            *budget = budget.checked_sub(size)?;
            out.extend_from_slice(self.bytes.get(pos..pos.checked_add(size)?)?);
            pos += size;
            if reference == SEGMENTS_END {
                break;
            }
            if reference as usize >= n_segments {
                return None;
            }
            let name = self.string(segments, reference as usize)?;
            let name = name.strip_suffix(&[0]).unwrap_or(name);
            *budget = budget.checked_sub(name.len() + 2)?;
            // msgunfmt writes one-letter segments (glibc's `I` flag, `%Id`) bare.
            if name.len() > 1 {
                out.push(b'<');
                out.extend_from_slice(name);
                out.push(b'>');
            } else {
                out.extend_from_slice(name);
            }
            pair = pair.checked_add(8)?;
        }
        if out.last() == Some(&0) {
            out.pop();
        }
        Some(out)
    }

    /// The system-dependent strings of a revision-1 file (header fields at bytes 28–47),
    /// as (original, translation) pairs; none for revision 0. Their bytes are taken from
    /// `budget`.
    fn sysdep_strings(self, path: &Path, budget: &mut usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let minor = self.u32(4).unwrap_or(0) & 0xffff;
        let fields: Option<Vec<usize>> = (7..12)
            .map(|k| self.u32(4 * k).map(|v| v as usize))
            .collect();
        let (Some(f), true) = (fields, minor >= 1) else {
            return Ok(Vec::new());
        };
        let (n_segments, segments, n_strings, orig, trans) = (f[0], f[1], f[2], f[3], f[4]);
        (0..n_strings)
            .map(|i| {
                let mut one = |table: usize| {
                    let at = self.u32(table.checked_add(i.checked_mul(4)?)?)? as usize;
                    self.sysdep_string(at, segments, n_segments, budget)
                };
                match (one(orig), one(trans)) {
                    (Some(o), Some(t)) => Ok((o, t)),
                    _ => Err(DataError::invalid(
                        path,
                        Location::Entry(i),
                        format!("system-dependent string points outside the file or to an unknown segment, \
                         or the strings add up to more than {MAX_EXPANSION} times the file size"),
                    )),
                }
            })
            .collect()
    }
}

/// Parses `.mo` bytes; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Catalog> {
    let bad = |loc: Location, msg: String| DataError::invalid(path, loc, msg);
    if bytes.len() < HEADER_LEN {
        return Err(bad(
            Location::File,
            format!(
                "{} bytes is too short for a .mo header (28 bytes)",
                bytes.len()
            ),
        ));
    }
    let le = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let big_endian = match le {
        MAGIC => false,
        m if m.swap_bytes() == MAGIC => true,
        m => {
            return Err(bad(
                Location::Byte(0),
                format!("bad magic number {m:#010x}; expected 0x950412de (a GNU .mo file)"),
            ))
        }
    };
    let r = Reader { bytes, big_endian };
    let header_u32 = |at: usize| r.u32(at).expect("header length checked");
    let major = header_u32(4) >> 16;
    if major > 1 {
        return Err(bad(
            Location::Byte(4),
            format!("unsupported .mo major revision {major}; expected 0 or 1"),
        ));
    }
    let count = header_u32(8) as usize;
    let (orig, trans) = (header_u32(12) as usize, header_u32(16) as usize);
    let mut budget = MAX_EXPANSION.saturating_mul(bytes.len());
    let mut raw: Vec<RawEntry> = (0..count)
        .map(|i| match (r.string(orig, i), r.string(trans, i)) {
            (Some(o), Some(t)) => {
                budget = budget.checked_sub(o.len() + t.len()).ok_or_else(|| {
                    bad(
                        Location::Entry(i),
                        format!("the strings add up to more than {MAX_EXPANSION} times the file size ({} bytes); entries share bytes", bytes.len()),
                    )
                })?;
                Ok((Cow::Borrowed(o), Cow::Borrowed(t)))
            }
            _ => Err(bad(
                Location::Entry(i),
                format!(
                    "string table entry points outside the file ({} bytes)",
                    bytes.len()
                ),
            )),
        })
        .collect::<Result<_>>()?;
    raw.extend(
        r.sysdep_strings(path, &mut budget)?
            .into_iter()
            .map(|(o, t)| (Cow::Owned(o), Cow::Owned(t))),
    );
    let header = raw
        .iter()
        .find(|(o, _)| o.is_empty())
        .map(|(_, t)| String::from_utf8_lossy(t).into_owned());
    let enc = encoding_for(header.as_deref().and_then(header_charset), path)?;
    let messages = raw
        .iter()
        .enumerate()
        .map(|(i, (o, t))| {
            let o = decode(enc, o, path, Location::Entry(i))?;
            let t = decode(enc, t, path, Location::Entry(i))?;
            Ok(message(&o, &t))
        })
        .collect::<Result<_>>()?;
    Ok(Catalog { messages })
}

/// Splits a decoded original/translation pair into a [`Message`].
fn message(original: &str, translation: &str) -> Message {
    let (context, ids) = match original.split_once('\u{4}') {
        Some((c, rest)) => (Some(c.to_string()), rest),
        None => (None, original),
    };
    let (msgid, msgid_plural) = match ids.split_once('\0') {
        Some((s, p)) => (s.to_string(), Some(p.to_string())),
        None => (ids.to_string(), None),
    };
    Message {
        context,
        msgid,
        msgid_plural,
        msgstr: translation.split('\0').map(str::to_string).collect(),
        fuzzy: false,
    }
}

/// A header with its `charset=` value replaced by `UTF-8`.
fn utf8_header(header: &str) -> String {
    match header_charset(header) {
        Some(cs) => {
            // `cs` is a slice of `header`, so its offset is exact.
            let at = cs.as_ptr() as usize - header.as_ptr() as usize;
            format!("{}UTF-8{}", &header[..at], &header[at + cs.len()..])
        }
        None => header.to_string(),
    }
}

/// The original string of `m` as stored in a `.mo` file.
fn original_of(m: &Message) -> String {
    let mut s = m
        .context
        .as_ref()
        .map_or(String::new(), |c| format!("{c}\u{4}"));
    s.push_str(&m.msgid);
    if let Some(p) = &m.msgid_plural {
        s.push('\0');
        s.push_str(p);
    }
    s
}

/// Encodes messages as a UTF-8 `.mo` file in either byte order (sorted by original, no hash
/// table), as `msgfmt` would lay them out. Fuzzy messages are left out, as `msgfmt` does; a
/// header's declared charset becomes UTF-8 (the text is written in UTF-8 whatever it was
/// read from). Used to build test catalogs and to compile `.po` files.
pub fn encode(messages: &[Message], big_endian: bool) -> Vec<u8> {
    let mut entries: Vec<(String, String)> = messages
        .iter()
        .filter(|m| !m.fuzzy)
        .map(|m| {
            let text = m.msgstr.join("\0");
            let text = if m.is_header() {
                utf8_header(&text)
            } else {
                text
            };
            (original_of(m), text)
        })
        .collect();
    entries.sort();
    let n = entries.len();
    let put = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let strings_at = HEADER_LEN + 16 * n;
    let mut out = Vec::new();
    for v in [
        MAGIC,
        0,
        n as u32,
        HEADER_LEN as u32,
        (HEADER_LEN + 8 * n) as u32,
        0,
        strings_at as u32,
    ] {
        put(&mut out, v);
    }
    let mut blob: Vec<u8> = Vec::new();
    let mut table: Vec<(u32, u32)> = Vec::with_capacity(2 * n);
    let originals = entries.iter().map(|e| &e.0);
    for s in originals.chain(entries.iter().map(|e| &e.1)) {
        table.push((s.len() as u32, (strings_at + blob.len()) as u32));
        blob.extend_from_slice(s.as_bytes());
        blob.push(0);
    }
    for (len, off) in &table {
        put(&mut out, *len);
        put(&mut out, *off);
    }
    out.extend_from_slice(&blob);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ctx: Option<&str>, id: &str, plural: Option<&str>, strs: &[&str]) -> Message {
        Message {
            context: ctx.map(str::to_string),
            msgid: id.into(),
            msgid_plural: plural.map(str::to_string),
            msgstr: strs.iter().map(|s| s.to_string()).collect(),
            fuzzy: false,
        }
    }

    #[test]
    fn round_trip_both_byte_orders() {
        let msgs = vec![
            msg(
                None,
                "",
                None,
                &["Content-Type: text/plain; charset=UTF-8\n"],
            ),
            msg(Some("menu"), "_Open", None, &["_Öffnen"]),
            msg(
                None,
                "%d file",
                Some("%d files"),
                &["%d Datei", "%d Dateien"],
            ),
        ];
        for be in [false, true] {
            let bytes = encode(&msgs, be);
            let cat = parse(&bytes, Path::new("t.mo")).unwrap();
            let mut want = msgs.clone();
            want.sort_by_key(original_of);
            assert_eq!(cat.messages, want, "big_endian={be}");
        }
    }

    #[test]
    fn encode_declares_utf8() {
        let header = "Project-Id-Version: x\nContent-Type: text/plain; charset=EUC-KR\n";
        let bytes = encode(&[msg(None, "", None, &[header])], true);
        let cat = parse(&bytes, Path::new("h.mo")).unwrap();
        assert_eq!(
            cat.header(),
            Some("Project-Id-Version: x\nContent-Type: text/plain; charset=UTF-8\n")
        );
    }

    #[test]
    fn malformed_files_are_reported() {
        let p = Path::new("bad.mo");
        let e = parse(b"short", p).unwrap_err().to_string();
        assert!(e.contains("bad.mo") && e.contains("too short"), "{e}");
        let e = parse(&[0u8; 28], p).unwrap_err().to_string();
        assert!(e.contains("bad magic"), "{e}");
        let mut bytes = encode(&[msg(None, "a b c", None, &["x y z"])], false);
        bytes.truncate(bytes.len() - 4);
        let e = parse(&bytes, p).unwrap_err().to_string();
        assert!(
            e.contains("entry 0") && e.contains("outside the file"),
            "{e}"
        );
    }

    /// Regression: table entries may share bytes, so 1,000 entries all pointing at one
    /// 4,000-byte string asked for 8 MB from a 12 kB file (quadratic in general).
    #[test]
    fn shared_strings_cannot_expand_without_bound() {
        let (n, long) = (1000usize, 4000usize);
        let table = HEADER_LEN;
        let string_at = table + 8 * n;
        let mut bytes = Vec::new();
        for v in [MAGIC, 0, n as u32, table as u32, table as u32, 0, 0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        for _ in 0..n {
            bytes.extend_from_slice(&(long as u32).to_le_bytes());
            bytes.extend_from_slice(&(string_at as u32).to_le_bytes());
        }
        bytes.resize(string_at + long, b'a');
        let e = parse(&bytes, Path::new("x.mo")).unwrap_err().to_string();
        assert!(
            e.contains("x.mo") && e.contains("times the file size"),
            "{e}"
        );
    }

    #[test]
    fn declared_charset_is_decoded() {
        let mut bytes = encode(
            &[
                msg(
                    None,
                    "",
                    None,
                    &["Content-Type: text/plain; charset=ISO-8859-1\n"],
                ),
                msg(None, "Cafe", None, &["CAFE_MARK"]),
            ],
            false,
        );
        // encode writes UTF-8 and says so in the header; declare a Latin-1 label of the
        // same length instead and put Latin-1 "Café" in place of the placeholder.
        let at = bytes
            .windows(13)
            .position(|w| w == b"charset=UTF-8")
            .unwrap();
        bytes[at + 8..at + 13].copy_from_slice(b"cp819");
        let at = bytes.windows(9).position(|w| w == b"CAFE_MARK").unwrap();
        bytes[at..at + 9].copy_from_slice(b"Caf\xe9     ");
        let cat = parse(&bytes, Path::new("l1.mo")).unwrap();
        assert_eq!(cat.messages[1].msgstr[0], "Café     ");
        // The same byte is invalid UTF-8 when the header says UTF-8.
        let mut bytes = encode(&[msg(None, "Cafe", None, &["CAFE_MARK"])], false);
        let at = bytes.windows(9).position(|w| w == b"CAFE_MARK").unwrap();
        bytes[at + 3] = 0xe9;
        let e = parse(&bytes, Path::new("u.mo")).unwrap_err().to_string();
        assert!(e.contains("entry 0") && e.contains("UTF-8"), "{e}");
    }
}
