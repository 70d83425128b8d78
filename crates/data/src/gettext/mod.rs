//! GNU gettext catalogs (`.mo` and `.po`) and their import as English-centric corpora.
//!
//! - [`mo`] and [`po`] parse the two catalog formats into a [`Catalog`].
//! - [`plural`] evaluates `Plural-Forms` so plural messages pair the right forms.
//! - [`clean`] removes accelerator markers, keeps placeholders and normalises whitespace.
//! - [`locale`] maps locale names (`nb`, `zh_CN`, `sr@latin`) to the paper's languages.
//! - [`import`] walks a locale tree and builds a split [`Corpus`](crate::Corpus).

pub mod clean;
pub mod import;
pub mod locale;
pub mod mo;
pub mod plural;
pub mod po;

use std::path::Path;

use crate::error::{read_bytes, DataError, Location, Result};
use plural::PluralForms;

/// One catalog message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// `msgctxt`, if any.
    pub context: Option<String>,
    /// `msgid`: the English source text.
    pub msgid: String,
    /// `msgid_plural`, for plural messages.
    pub msgid_plural: Option<String>,
    /// `msgstr` (one element) or `msgstr[0..n]` for plural messages.
    pub msgstr: Vec<String>,
    /// Whether the entry is flagged `fuzzy` (only `.po` files carry this).
    pub fuzzy: bool,
}

impl Message {
    /// Whether this is the header entry (empty `msgid`, no context).
    pub fn is_header(&self) -> bool {
        self.msgid.is_empty() && self.context.is_none()
    }
}

/// A parsed catalog: its messages in file order, header included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    /// All messages.
    pub messages: Vec<Message>,
}

impl Catalog {
    /// The header entry's text (`Content-Type: …\nPlural-Forms: …`), if present.
    pub fn header(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.is_header())
            .and_then(|m| m.msgstr.first())
            .map(String::as_str)
    }

    /// The value of header field `name` (case-insensitive), trimmed.
    pub fn header_field(&self, name: &str) -> Option<&str> {
        header_field(self.header()?, name)
    }

    /// The catalog's plural rule: its `Plural-Forms` header, or gettext's default
    /// (`nplurals=2; plural=n != 1;`) when there is none.
    pub fn plural_forms(&self) -> std::result::Result<PluralForms, String> {
        match self.header_field("Plural-Forms") {
            Some(spec) => PluralForms::parse(spec),
            None => Ok(PluralForms::germanic()),
        }
    }
}

/// The value of field `name` in a gettext header.
fn header_field<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The charset a header declares (`Content-Type: text/plain; charset=UTF-8`), if any.
fn header_charset(header: &str) -> Option<&str> {
    let ct = header_field(header, "Content-Type")?;
    let at = ct.to_ascii_lowercase().find("charset=")?;
    let rest = &ct[at + "charset=".len()..];
    Some(
        rest.split(|c: char| c == ';' || c.is_whitespace())
            .next()
            .unwrap_or(rest),
    )
}

/// The encoding for a declared charset; `CHARSET` (an unfilled template) and none mean UTF-8.
fn encoding_for(charset: Option<&str>, path: &Path) -> Result<&'static encoding_rs::Encoding> {
    match charset {
        None => Ok(encoding_rs::UTF_8),
        Some(c) if c.eq_ignore_ascii_case("CHARSET") => Ok(encoding_rs::UTF_8),
        Some(c) => encoding_rs::Encoding::for_label(c.as_bytes()).ok_or_else(|| {
            DataError::invalid(
                path,
                Location::File,
                format!("unsupported charset {c:?} in the header; expected one gettext knows (UTF-8, ISO-8859-x, EUC-JP, …)"),
            )
        }),
    }
}

/// Decodes `bytes` in `enc`, refusing malformed input.
fn decode(
    enc: &'static encoding_rs::Encoding,
    bytes: &[u8],
    path: &Path,
    location: Location,
) -> Result<String> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
        .ok_or_else(|| {
            DataError::invalid(
                path,
                location,
                format!("bytes that are not valid {}", enc.name()),
            )
        })
}

/// Reads a `.mo` or `.po` catalog, by extension.
pub fn read_catalog(path: &Path) -> Result<Catalog> {
    let bytes = read_bytes(path)?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("mo") | Some("gmo") => mo::parse(&bytes, path),
        Some("po") => po::parse(&bytes, path),
        _ => Err(DataError::invalid(
            path,
            Location::File,
            "not a catalog: expected a .mo or .po file",
        )),
    }
}
