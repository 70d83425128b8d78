//! Languages, language groups and translation directions.
//!
//! The 50 languages of the paper (Tables 3–4), each with the English name used in ALMA
//! prompts, its script, family, resource level and default X-ALMA group. A [`Lang`] is a
//! cheap, copyable handle to one of them; a [`Direction`] is an ordered pair such as
//! `de-en`; a [`Grouping`] maps non-English languages to groups (the X-ALMA default, or a
//! TOML file). [`paper`] holds the paper's training and decoding numbers.

#![forbid(unsafe_code)]

mod grouping;
pub mod paper;
mod table;

use std::fmt;
use std::str::FromStr;

pub use grouping::{GroupId, Grouping};
pub use table::LANGUAGES;

/// How much data the paper considers a language to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceLevel {
    /// Low-resource.
    Low,
    /// Mid-resource.
    Mid,
    /// High-resource.
    High,
}

impl fmt::Display for ResourceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceLevel::Low => "low",
            ResourceLevel::Mid => "mid",
            ResourceLevel::High => "high",
        })
    }
}

/// Static facts about one language.
#[derive(Debug, PartialEq, Eq)]
pub struct Language {
    /// ISO 639-1 code, as used in file names and directions (`de`, `zh`, `no`).
    pub code: &'static str,
    /// English name as written in ALMA prompts (`German`).
    pub name: &'static str,
    /// Writing system.
    pub script: &'static str,
    /// Language family.
    pub family: &'static str,
    /// Subgroup within the family.
    pub subgroup: &'static str,
    /// Resource level in the paper.
    pub resource: ResourceLevel,
    /// X-ALMA group 1–8; `None` for English.
    pub default_group: Option<u8>,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum LangError {
    /// A language code that is not one of the 50.
    #[error("unknown language code {code:?}; valid codes: {valid}")]
    UnknownLanguage {
        /// The code given.
        code: String,
        /// Comma-separated valid codes.
        valid: String,
    },
    /// A direction that is not `xx-yy`.
    #[error("invalid direction {0:?}: expected two language codes joined by '-', like de-en")]
    BadDirection(String),
    /// Source and target are the same language.
    #[error("invalid direction {0:?}: source and target are the same language")]
    SameLanguage(String),
    /// A grouping file that cannot be used.
    #[error("grouping {origin}: {message}")]
    BadGrouping {
        /// File name or other origin.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A handle to one of the known languages; compares and hashes by code.
#[derive(Clone, Copy)]
pub struct Lang(&'static Language);

impl Lang {
    /// English.
    pub const ENGLISH: Lang = Lang(&LANGUAGES[0]);

    /// Looks up a language by its ISO 639-1 code (case-insensitive).
    pub fn from_code(code: &str) -> Result<Lang, LangError> {
        let wanted = code.trim().to_ascii_lowercase();
        LANGUAGES
            .iter()
            .find(|l| l.code == wanted)
            .map(Lang)
            .ok_or_else(|| LangError::UnknownLanguage {
                code: code.to_string(),
                valid: all().map(|l| l.code()).collect::<Vec<_>>().join(", "),
            })
    }

    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        self.0.code
    }

    /// English name used in prompts.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// All static facts.
    pub fn info(self) -> &'static Language {
        self.0
    }

    /// Whether this is English.
    pub fn is_english(self) -> bool {
        self.0.code == "en"
    }
}

/// Every known language, English first.
pub fn all() -> impl Iterator<Item = Lang> {
    LANGUAGES.iter().map(Lang)
}

/// Every known language except English (the 49 "XX" languages).
pub fn non_english() -> impl Iterator<Item = Lang> {
    all().filter(|l| !l.is_english())
}

/// Parses a comma- or space-separated list of codes (`"de,fr ru"`).
pub fn parse_list(list: &str) -> Result<Vec<Lang>, LangError> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Lang::from_code)
        .collect()
}

impl PartialEq for Lang {
    fn eq(&self, other: &Self) -> bool {
        self.0.code == other.0.code
    }
}
impl Eq for Lang {}
impl std::hash::Hash for Lang {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.code.hash(state)
    }
}
impl PartialOrd for Lang {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Lang {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.code.cmp(other.0.code)
    }
}
impl fmt::Debug for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lang({})", self.0.code)
    }
}
impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}
impl FromStr for Lang {
    type Err = LangError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::from_code(s)
    }
}
impl serde::Serialize for Lang {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}
impl<'de> serde::Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Lang::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// A translation direction, written `src-tgt` (`de-en`, `en-de`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Direction {
    /// Source language.
    pub src: Lang,
    /// Target language.
    pub tgt: Lang,
}

impl Direction {
    /// Builds a direction; source and target must differ.
    pub fn new(src: Lang, tgt: Lang) -> Result<Direction, LangError> {
        if src == tgt {
            return Err(LangError::SameLanguage(format!("{src}-{tgt}")));
        }
        Ok(Direction { src, tgt })
    }

    /// `xx-en` for a non-English language.
    pub fn to_english(lang: Lang) -> Direction {
        Direction {
            src: lang,
            tgt: Lang::ENGLISH,
        }
    }

    /// `en-xx` for a non-English language.
    pub fn from_english(lang: Lang) -> Direction {
        Direction {
            src: Lang::ENGLISH,
            tgt: lang,
        }
    }

    /// Whether the target is English (an XX→En direction).
    pub fn is_to_english(self) -> bool {
        self.tgt.is_english()
    }

    /// Whether the source is English (an En→XX direction).
    pub fn is_from_english(self) -> bool {
        self.src.is_english()
    }

    /// The non-English side of an English-centric direction, if the direction is one.
    pub fn non_english(self) -> Option<Lang> {
        match (self.src.is_english(), self.tgt.is_english()) {
            (true, false) => Some(self.tgt),
            (false, true) => Some(self.src),
            _ => None,
        }
    }

    /// The opposite direction.
    pub fn reversed(self) -> Direction {
        Direction {
            src: self.tgt,
            tgt: self.src,
        }
    }

    /// Both English-centric directions of each language: `xx-en` then `en-xx`.
    pub fn english_centric(langs: &[Lang]) -> Vec<Direction> {
        let mut out: Vec<Direction> = langs.iter().map(|&l| Direction::to_english(l)).collect();
        out.extend(langs.iter().map(|&l| Direction::from_english(l)));
        out
    }

    /// Parses a comma- or space-separated list of directions.
    pub fn parse_list(list: &str) -> Result<Vec<Direction>, LangError> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromStr for Direction {
    type Err = LangError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| LangError::BadDirection(s.to_string()))?;
        if a.is_empty() || b.is_empty() || b.contains('-') {
            return Err(LangError::BadDirection(s.to_string()));
        }
        Direction::new(Lang::from_code(a)?, Lang::from_code(b)?)
    }
}
impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.src, self.tgt)
    }
}
impl fmt::Debug for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Direction({self})")
    }
}
impl serde::Serialize for Direction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> serde::Deserialize<'de> for Direction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_languages_with_unique_codes() {
        assert_eq!(LANGUAGES.len(), 50);
        let mut codes: Vec<_> = LANGUAGES.iter().map(|l| l.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 50);
    }

    #[test]
    fn lookup_and_names() {
        let de = Lang::from_code("DE").unwrap();
        assert_eq!(de.name(), "German");
        assert_eq!(de.info().default_group, Some(1));
        assert_eq!(
            Lang::from_code("zh").unwrap().info().resource,
            ResourceLevel::High
        );
    }

    #[test]
    fn unknown_code_lists_valid_ones() {
        let err = Lang::from_code("xx").unwrap_err().to_string();
        assert!(err.contains("\"xx\""), "{err}");
        assert!(err.contains("de, "), "{err}");
    }

    #[test]
    fn directions_parse_and_print() {
        let d: Direction = "de-en".parse().unwrap();
        assert!(d.is_to_english());
        assert_eq!(d.non_english().unwrap().code(), "de");
        assert_eq!(d.reversed().to_string(), "en-de");
        assert!("de".parse::<Direction>().is_err());
        assert!("de-de".parse::<Direction>().is_err());
        assert!("de-en-fr".parse::<Direction>().is_err());
        assert!("qq-en".parse::<Direction>().is_err());
        let list = Direction::parse_list("de-en, en-fr").unwrap();
        assert_eq!(list.len(), 2);
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["de-en","en-fr"]"#);
        let back: Vec<Direction> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn english_centric_directions() {
        let langs = parse_list("de,fr").unwrap();
        let dirs: Vec<String> = Direction::english_centric(&langs)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(dirs, ["de-en", "fr-en", "en-de", "en-fr"]);
    }
}
