//! The corpus model: English-centric pairs per language and split.
//!
//! A [`Corpus`] holds, for each non-English language and [`Split`], a list of [`Pair`]s that
//! serves both directions (`xx-en` and `en-xx`), as ALMA's train and valid files do. A set can
//! also be specific to one direction (ALMA's `test.en-de.json` may differ from
//! `test.de-en.json`); such a set takes precedence for that direction.
//! [`Corpus::pairs`] answers "the pairs for `de-en`, split test" in one call.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use datm_lang::{Direction, Lang};

use crate::error::{DataError, Result};
use crate::prompt::Example;

/// One English-centric segment pair: the English text and its translation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Pair {
    /// The non-English side.
    pub xx: String,
    /// The English side.
    pub en: String,
}

impl Pair {
    /// Builds a pair from its non-English and English sides.
    pub fn new(xx: impl Into<String>, en: impl Into<String>) -> Pair {
        Pair {
            xx: xx.into(),
            en: en.into(),
        }
    }

    /// Builds a pair from a source and target text in `direction` (English-centric).
    pub fn from_oriented(direction: Direction, src: String, tgt: String) -> Pair {
        if direction.is_to_english() {
            Pair { xx: src, en: tgt }
        } else {
            Pair { xx: tgt, en: src }
        }
    }

    /// The `(source, target)` texts of this pair in `direction`.
    pub fn oriented(&self, direction: Direction) -> (&str, &str) {
        if direction.is_to_english() {
            (&self.xx, &self.en)
        } else {
            (&self.en, &self.xx)
        }
    }

    /// This pair as an [`Example`] in `direction`.
    pub fn example(&self, direction: Direction) -> Example {
        let (src, tgt) = self.oriented(direction);
        Example {
            direction,
            src: src.to_string(),
            tgt: tgt.to_string(),
        }
    }
}

/// A corpus split.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation (development) data.
    Valid,
    /// Test data.
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// The name used in ALMA file names (`train`, `valid`, `test`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "valid" | "validation" | "dev" => Ok(Split::Valid),
            "test" | "devtest" => Ok(Split::Test),
            _ => Err(DataError::Usage(format!(
                "unknown split {s:?}; expected train, valid or test"
            ))),
        }
    }
}

/// Checks that `direction` is English-centric and returns its non-English language.
pub fn english_centric(direction: Direction) -> Result<Lang> {
    direction.non_english().ok_or_else(|| {
        DataError::Usage(format!(
            "direction {direction} is not English-centric; corpora hold xx-en / en-xx pairs"
        ))
    })
}

/// English-centric parallel data per language and split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    shared: BTreeMap<(Lang, Split), Vec<Pair>>,
    directed: BTreeMap<(Direction, Split), Vec<Pair>>,
}

/// Pair counts of one direction, one row of [`Corpus::stats`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectionStats {
    /// The direction.
    pub direction: Direction,
    /// Training pairs.
    pub train: usize,
    /// Validation pairs.
    pub valid: usize,
    /// Test pairs.
    pub test: usize,
}

impl Corpus {
    /// An empty corpus.
    pub fn new() -> Corpus {
        Corpus::default()
    }

    /// Sets the pairs of `lang` for `split`, serving both directions. English is refused.
    pub fn set(&mut self, lang: Lang, split: Split, pairs: Vec<Pair>) -> Result<()> {
        if lang.is_english() {
            return Err(DataError::Usage(
                "a corpus set is keyed by its non-English language, not en".into(),
            ));
        }
        self.shared.insert((lang, split), pairs);
        Ok(())
    }

    /// Sets pairs specific to one English-centric direction for `split`.
    pub fn set_directed(
        &mut self,
        direction: Direction,
        split: Split,
        pairs: Vec<Pair>,
    ) -> Result<()> {
        english_centric(direction)?;
        self.directed.insert((direction, split), pairs);
        Ok(())
    }

    /// The pairs for `direction` and `split`: the direction's own set if it has one, else the
    /// language's shared set, else none.
    pub fn pairs(&self, direction: Direction, split: Split) -> &[Pair] {
        if let Some(p) = self.directed.get(&(direction, split)) {
            return p;
        }
        direction
            .non_english()
            .and_then(|l| self.shared.get(&(l, split)))
            .map_or(&[], Vec::as_slice)
    }

    /// The shared (both-direction) pairs of `lang` and `split`, if set.
    pub fn shared(&self, lang: Lang, split: Split) -> Option<&[Pair]> {
        self.shared.get(&(lang, split)).map(Vec::as_slice)
    }

    /// The direction-specific pairs of `direction` and `split`, if set.
    pub fn directed(&self, direction: Direction, split: Split) -> Option<&[Pair]> {
        self.directed.get(&(direction, split)).map(Vec::as_slice)
    }

    /// The pairs for `direction` and `split` as prompt-ready examples.
    pub fn examples(&self, direction: Direction, split: Split) -> Vec<Example> {
        self.pairs(direction, split)
            .iter()
            .map(|p| p.example(direction))
            .collect()
    }

    /// The non-English languages that have any data, sorted by code.
    pub fn langs(&self) -> Vec<Lang> {
        let mut langs: Vec<Lang> = self
            .shared
            .keys()
            .map(|(l, _)| *l)
            .chain(self.directed.keys().filter_map(|(d, _)| d.non_english()))
            .collect();
        langs.sort();
        langs.dedup();
        langs
    }

    /// Pair counts for both directions of every language (`xx-en` then `en-xx`, by code).
    pub fn stats(&self) -> Vec<DirectionStats> {
        self.langs()
            .into_iter()
            .flat_map(|l| [Direction::to_english(l), Direction::from_english(l)])
            .map(|d| DirectionStats {
                direction: d,
                train: self.pairs(d, Split::Train).len(),
                valid: self.pairs(d, Split::Valid).len(),
                test: self.pairs(d, Split::Test).len(),
            })
            .collect()
    }

    /// Whether the corpus holds no sets at all.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.directed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(c: &str) -> Lang {
        Lang::from_code(c).unwrap()
    }

    #[test]
    fn pairs_per_direction_and_split() {
        let mut c = Corpus::new();
        let de = lang("de");
        c.set(
            de,
            Split::Test,
            vec![Pair::new("Hallo Welt", "Hello world")],
        )
        .unwrap();
        let de_en: Direction = "de-en".parse().unwrap();
        let en_de = de_en.reversed();
        let ex = c.examples(de_en, Split::Test);
        assert_eq!(
            (ex[0].src.as_str(), ex[0].tgt.as_str()),
            ("Hallo Welt", "Hello world")
        );
        let ex = c.examples(en_de, Split::Test);
        assert_eq!(
            (ex[0].src.as_str(), ex[0].tgt.as_str()),
            ("Hello world", "Hallo Welt")
        );
        c.set_directed(en_de, Split::Test, vec![Pair::new("Guten Tag", "Good day")])
            .unwrap();
        assert_eq!(c.pairs(en_de, Split::Test)[0].en, "Good day");
        assert_eq!(c.pairs(de_en, Split::Test)[0].en, "Hello world");
        assert!(c.pairs(de_en, Split::Train).is_empty());
        assert!(c.set(Lang::ENGLISH, Split::Train, vec![]).is_err());
        assert!(c
            .set_directed("de-fr".parse().unwrap(), Split::Test, vec![])
            .is_err());
        let stats = c.stats();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].direction, de_en);
        assert_eq!(stats[0].test, 1);
    }

    #[test]
    fn split_names() {
        assert_eq!("dev".parse::<Split>().unwrap(), Split::Valid);
        assert_eq!(Split::Test.to_string(), "test");
        assert!("xyz"
            .parse::<Split>()
            .unwrap_err()
            .to_string()
            .contains("train"));
    }
}
