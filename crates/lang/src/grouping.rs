//! Language groups: the X-ALMA default, or a TOML override.
//!
//! A grouping file looks like
//! ```toml
//! [groups]
//! 1 = ["de", "nl"]
//! 2 = ["fr", "es"]
//! ```
//! Group ids are positive integers; every language appears at most once and English never.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Lang, LangError};

/// A group number (1-based, as in the paper).
pub type GroupId = u8;

/// An assignment of non-English languages to groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    groups: BTreeMap<GroupId, Vec<Lang>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupingFile {
    groups: BTreeMap<String, Vec<String>>,
}

impl Default for Grouping {
    /// The X-ALMA grouping of the 49 non-English languages into 8 groups.
    fn default() -> Self {
        let mut groups: BTreeMap<GroupId, Vec<Lang>> = BTreeMap::new();
        for lang in crate::non_english() {
            let g = lang
                .info()
                .default_group
                .expect("non-English languages have a group");
            groups.entry(g).or_default().push(lang);
        }
        Grouping { groups }
    }
}

impl Grouping {
    /// Builds a grouping, checking that no language is English or listed twice.
    pub fn new(groups: BTreeMap<GroupId, Vec<Lang>>, origin: &str) -> Result<Self, LangError> {
        let bad = |message: String| LangError::BadGrouping {
            origin: origin.to_string(),
            message,
        };
        let mut seen = BTreeMap::new();
        for (&g, langs) in &groups {
            if g == 0 {
                return Err(bad("group ids start at 1".into()));
            }
            for &l in langs {
                if l.is_english() {
                    return Err(bad(format!(
                        "group {g} lists English, which belongs to no group"
                    )));
                }
                if let Some(prev) = seen.insert(l, g) {
                    return Err(bad(format!("{l} is in group {prev} and group {g}")));
                }
            }
        }
        Ok(Grouping { groups })
    }

    /// Parses the TOML form (see the module docs).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, LangError> {
        let bad = |message: String| LangError::BadGrouping {
            origin: origin.to_string(),
            message,
        };
        let file: GroupingFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut groups = BTreeMap::new();
        for (id, codes) in file.groups {
            let g: GroupId = id
                .parse()
                .map_err(|_| bad(format!("group id {id:?} is not a number from 1 to 255")))?;
            let langs = codes
                .iter()
                .map(|c| Lang::from_code(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            groups.insert(g, langs);
        }
        Grouping::new(groups, origin)
    }

    /// Reads a TOML grouping file.
    pub fn from_file(path: &Path) -> Result<Self, LangError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LangError::BadGrouping {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        Grouping::from_toml(&text, &origin)
    }

    /// The TOML form of this grouping.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("[groups]\n");
        for (g, langs) in &self.groups {
            let codes: Vec<String> = langs.iter().map(|l| format!("{:?}", l.code())).collect();
            out.push_str(&format!("{g} = [{}]\n", codes.join(", ")));
        }
        out
    }

    /// The group of a language, if it has one.
    pub fn group_of(&self, lang: Lang) -> Option<GroupId> {
        self.groups
            .iter()
            .find(|(_, ls)| ls.contains(&lang))
            .map(|(&g, _)| g)
    }

    /// Languages of a group, in file order.
    pub fn members(&self, group: GroupId) -> &[Lang] {
        self.groups.get(&group).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All groups in id order.
    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &[Lang])> {
        self.groups.iter().map(|(&g, ls)| (g, ls.as_slice()))
    }

    /// The grouping restricted to the given languages; empty groups are dropped.
    pub fn restricted_to(&self, langs: &[Lang]) -> Grouping {
        let groups = self
            .groups
            .iter()
            .map(|(&g, ls)| {
                (
                    g,
                    ls.iter()
                        .copied()
                        .filter(|l| langs.contains(l))
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, ls)| !ls.is_empty())
            .collect();
        Grouping { groups }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_xalma() {
        let g = Grouping::default();
        assert_eq!(g.groups().count(), 8);
        let codes = |id| g.members(id).iter().map(|l| l.code()).collect::<Vec<_>>();
        let mut g1 = codes(1);
        g1.sort();
        assert_eq!(g1, ["af", "da", "de", "is", "nl", "no", "sv"]);
        assert_eq!(codes(8).len(), 8);
        assert_eq!(g.groups().map(|(_, l)| l.len()).sum::<usize>(), 49);
        assert_eq!(g.group_of(Lang::from_code("ja").unwrap()), Some(6));
        assert_eq!(g.group_of(Lang::ENGLISH), None);
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let g = Grouping::from_toml("[groups]\n1 = [\"de\", \"fr\"]\n2 = [\"ru\"]\n", "t").unwrap();
        assert_eq!(g.group_of(Lang::from_code("fr").unwrap()), Some(1));
        assert_eq!(Grouping::from_toml(&g.to_toml(), "t").unwrap(), g);
        let dup = Grouping::from_toml("[groups]\n1 = [\"de\"]\n2 = [\"de\"]\n", "g.toml");
        assert!(dup
            .unwrap_err()
            .to_string()
            .contains("g.toml: de is in group 1 and group 2"));
        assert!(Grouping::from_toml("[groups]\n1 = [\"en\"]\n", "t").is_err());
        assert!(Grouping::from_toml("[groups]\nx = [\"de\"]\n", "t").is_err());
        assert!(Grouping::from_toml("[groups]\n1 = [\"qq\"]\n", "t").is_err());
    }

    #[test]
    fn restriction_drops_empty_groups() {
        let langs = crate::parse_list("de,fr,es").unwrap();
        let g = Grouping::default().restricted_to(&langs);
        assert_eq!(g.groups().map(|(id, _)| id).collect::<Vec<_>>(), [1, 2, 4]);
    }
}
