//! Building English-centric corpora from a tree of gettext catalogs.
//!
//! The steps, each deterministic:
//! 1. [`discover`]: walk the tree (`{locale}/LC_MESSAGES/{domain}.mo|.po`, or `{locale}.po`
//!    files), skip `iso_*` code lists, map locales to paper languages ([`super::locale`]).
//! 2. [`extract`]: per catalog (in parallel), turn messages into cleaned `(en, xx)` pairs.
//!    Header, fuzzy and obsolete entries are skipped, contexts are dropped from the text.
//!    Plural messages give `msgid ↔ msgstr[i]` with `i` the form for n = 1 under the
//!    catalog's `Plural-Forms`, and also `msgid_plural ↔ msgstr[j]` with `j` the form for
//!    n = 5 when `j ≠ i` (languages with one form, like Chinese, give only the singular).
//!    If the `Plural-Forms` header is unusable (real catalogs have typos such as
//!    `nulurals=1`), the plural messages are skipped and the catalog is listed with a
//!    warning; its other messages are used. Untranslated, identical-to-source, too-short
//!    (English words) and too-long pairs are dropped and counted. A catalog that fails to
//!    parse is reported and skipped whole; an import that reads no catalog at all is an
//!    error listing every refused catalog with its reason.
//! 3. Merge: per language and English sentence, the translation from the most preferred
//!    locale (see [`super::locale`]), then the most frequent, ties to the smallest string.
//! 4. Split: by SHA-256 of the sentence's [`split_key`], a function of the English side only,
//!    so a sentence is in the same split for every language. Optional caps drop the excess
//!    of the valid/test zones (never moving it to train).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use datm_lang::Lang;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::clean::{clean_text, split_key, word_count};
use super::locale::{map_locale, Unmapped};
use super::{read_catalog, Catalog};
use crate::corpus::{Corpus, Pair, Split};
use crate::error::{DataError, Result};

/// Options of a gettext import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// Only these languages (all 49 when `None`).
    pub langs: Option<Vec<Lang>>,
    /// Minimum number of English words (placeholders do not count).
    pub min_words: usize,
    /// Maximum characters on either side.
    pub max_chars: usize,
    /// Fraction of English sentences (by hash) in the validation zone.
    pub valid_fraction: f64,
    /// Fraction of English sentences (by hash) in the test zone.
    pub test_fraction: f64,
    /// At most this many validation pairs per language (the rest of the zone is dropped).
    pub max_valid: Option<usize>,
    /// At most this many test pairs per language (the rest of the zone is dropped).
    pub max_test: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            langs: None,
            min_words: 3,
            max_chars: 400,
            valid_fraction: 0.05,
            test_fraction: 0.05,
            max_valid: None,
            max_test: None,
        }
    }
}

impl ImportOptions {
    /// Checks the fractions.
    fn validate(&self) -> Result<()> {
        let ok = |f: f64| (0.0..=1.0).contains(&f);
        if !ok(self.valid_fraction)
            || !ok(self.test_fraction)
            || self.valid_fraction + self.test_fraction > 1.0
        {
            return Err(DataError::Usage(format!(
                "valid ({}) and test ({}) fractions must lie in [0, 1] and sum to at most 1",
                self.valid_fraction, self.test_fraction
            )));
        }
        Ok(())
    }
}

/// One catalog file found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFile {
    /// The file.
    pub path: PathBuf,
    /// Its locale name (`pt_BR`).
    pub locale: String,
    /// The paper language it maps to.
    pub lang: Lang,
    /// Locale preference (0 best).
    pub priority: u8,
}

/// A locale that was not used, with its reason and how many catalogs it had.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnmappedLocale {
    /// Why it is not used.
    pub reason: Unmapped,
    /// Catalog files under it.
    pub catalogs: usize,
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Catalogs to import, sorted by path.
    pub catalogs: Vec<CatalogFile>,
    /// `iso_*` code-list catalogs skipped.
    pub code_lists: usize,
    /// Catalogs under a locale category other than `LC_MESSAGES` (coreutils installs copies
    /// under `LC_TIME`), skipped so they do not count twice.
    pub other_categories: usize,
    /// Catalogs of other languages (not asked for with `--langs`) skipped.
    pub other_langs: usize,
    /// Locales not used, by name.
    pub unmapped: BTreeMap<String, UnmappedLocale>,
    /// Tree entries that could not be read (broken links, permissions), with the reason.
    pub unreadable: Vec<FailedCatalog>,
}

/// Entries dropped during extraction, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounts {
    /// Flagged fuzzy.
    pub fuzzy: usize,
    /// Empty translation.
    pub untranslated: usize,
    /// Translation identical to the English text.
    pub identical: usize,
    /// Fewer English words than the minimum.
    pub too_short: usize,
    /// Longer than the maximum on either side.
    pub too_long: usize,
    /// Plural message whose needed form is missing.
    pub missing_plural_form: usize,
    /// Plural message in a catalog whose `Plural-Forms` header is unusable.
    pub bad_plural_rule: usize,
}

impl DropCounts {
    /// Adds another count into this one.
    fn add(&mut self, o: &DropCounts) {
        self.fuzzy += o.fuzzy;
        self.untranslated += o.untranslated;
        self.identical += o.identical;
        self.too_short += o.too_short;
        self.too_long += o.too_long;
        self.missing_plural_form += o.missing_plural_form;
        self.bad_plural_rule += o.bad_plural_rule;
    }
}

/// Per-language figures of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LangSummary {
    /// Catalogs read for the language.
    pub catalogs: usize,
    /// Locales that contributed, sorted.
    pub locales: Vec<String>,
    /// Pairs extracted before merging duplicates.
    pub extracted: usize,
    /// English sentences with more than one distinct translation in the preferred locale
    /// (resolved by frequency, then by the smallest string).
    pub conflicts: usize,
    /// Training pairs.
    pub train: usize,
    /// Validation pairs.
    pub valid: usize,
    /// Test pairs.
    pub test: usize,
    /// Pairs of the valid/test zones dropped by the caps.
    pub capped: usize,
}

/// A catalog that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedCatalog {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The outcome of an import, apart from the corpus itself. Deterministic (no timings), so
/// it can be written next to the corpus.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Catalogs read successfully.
    pub catalogs_read: usize,
    /// Catalogs reported and skipped.
    pub failed: Vec<FailedCatalog>,
    /// Catalogs used, but with a problem reported (an unusable `Plural-Forms` header).
    pub warnings: Vec<FailedCatalog>,
    /// `iso_*` code lists skipped.
    pub code_lists_skipped: usize,
    /// Catalogs under `LC_*` categories other than `LC_MESSAGES`, skipped.
    pub other_categories_skipped: usize,
    /// Catalogs of languages not asked for.
    pub other_langs_skipped: usize,
    /// Locales not used.
    pub unmapped_locales: BTreeMap<String, UnmappedLocale>,
    /// Entries dropped, by reason.
    pub dropped: DropCounts,
    /// Figures per language code.
    pub langs: BTreeMap<String, LangSummary>,
}

/// Whether a path is an `iso_*` code-list catalog (iso-codes' `iso_639`, `iso_3166`, …).
fn is_code_list(path: &Path) -> bool {
    path.iter()
        .filter_map(|c| c.to_str())
        .any(|c| c.starts_with("iso_") || c.starts_with("iso-"))
}

/// Where a catalog file sits in the tree.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// A message catalog of this locale: `{locale}/LC_MESSAGES/x.mo` or `{locale}.po`.
    Locale(String),
    /// Under another locale category (`{locale}/LC_TIME/x.mo`).
    OtherCategory,
}

/// The locale a catalog path belongs to.
fn place_of(path: &Path) -> Option<Place> {
    let parent = path.parent()?;
    let parent_name = parent.file_name()?.to_str()?;
    if parent_name == "LC_MESSAGES" {
        return Some(Place::Locale(
            parent.parent()?.file_name()?.to_str()?.to_string(),
        ));
    }
    if parent_name.starts_with("LC_") {
        return Some(Place::OtherCategory);
    }
    Some(Place::Locale(path.file_stem()?.to_str()?.to_string()))
}

/// Finds the catalogs under `root` (sorted by path) and maps their locales.
pub fn discover(root: &Path, langs: Option<&[Lang]>) -> Result<Discovery> {
    if !root.is_dir() {
        return Err(DataError::Usage(format!(
            "locale directory {} does not exist",
            root.display()
        )));
    }
    let mut found = Discovery::default();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                found.unreadable.push(FailedCatalog {
                    path: e.path().unwrap_or(root).display().to_string(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if !entry.file_type().is_file() || !matches!(ext, Some("mo" | "po" | "gmo")) {
            continue;
        }
        if is_code_list(path.strip_prefix(root).unwrap_or(path)) {
            found.code_lists += 1;
            continue;
        }
        let locale = match place_of(path) {
            Some(Place::Locale(l)) => l,
            Some(Place::OtherCategory) => {
                found.other_categories += 1;
                continue;
            }
            None => continue,
        };
        match map_locale(&locale) {
            Ok(m) if langs.is_none_or(|l| l.contains(&m.lang)) => {
                found.catalogs.push(CatalogFile {
                    path: path.to_path_buf(),
                    locale,
                    lang: m.lang,
                    priority: m.priority,
                })
            }
            Ok(_) => found.other_langs += 1,
            Err(reason) => {
                let u = found.unmapped.entry(locale).or_insert(UnmappedLocale {
                    reason,
                    catalogs: 0,
                });
                u.catalogs += 1;
            }
        }
    }
    Ok(found)
}

/// Length and content filters applied to each pair.
#[derive(Debug, Clone, Copy)]
pub struct Filters {
    /// Minimum English words.
    pub min_words: usize,
    /// Maximum characters on either side.
    pub max_chars: usize,
}

/// What [`extract`] gets from one catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Cleaned `(en, xx)` pairs, in catalog order.
    pub pairs: Vec<(String, String)>,
    /// Entries dropped, by reason.
    pub drops: DropCounts,
    /// A problem that did not stop extraction (an unusable `Plural-Forms` header).
    pub warning: Option<String>,
}

/// The cleaned `(en, xx)` pairs of one catalog, what was dropped, and any warning.
pub fn extract(catalog: &Catalog, filters: Filters) -> Extracted {
    let mut ex = Extracted::default();
    let forms = match catalog.plural_forms() {
        Ok(p) => Some((p.index(1), p.index(5))),
        Err(e) => {
            ex.warning = Some(format!(
                "bad Plural-Forms header ({e}); plural messages skipped"
            ));
            None
        }
    };
    for m in catalog.messages.iter().filter(|m| !m.is_header()) {
        if m.fuzzy {
            ex.drops.fuzzy += 1;
            continue;
        }
        let mut candidates: Vec<(&str, Option<&String>)> = Vec::new();
        match (&m.msgid_plural, forms) {
            (None, _) => candidates.push((&m.msgid, m.msgstr.first())),
            (Some(_), None) => ex.drops.bad_plural_rule += 1,
            (Some(p), Some((one, many))) => {
                candidates.push((&m.msgid, one.and_then(|i| m.msgstr.get(i))));
                if many != one {
                    candidates.push((p, many.and_then(|i| m.msgstr.get(i))));
                }
            }
        }
        for (en, xx) in candidates {
            let Some(xx) = xx else {
                ex.drops.missing_plural_form += 1;
                continue;
            };
            match filter_pair(clean_text(en), clean_text(xx), filters) {
                Ok(pair) => ex.pairs.push(pair),
                Err(reason) => *reason.counter(&mut ex.drops) += 1,
            }
        }
    }
    ex
}

/// Why a pair was dropped by [`filter_pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    Untranslated,
    Identical,
    TooShort,
    TooLong,
}

impl Drop {
    /// The counter this reason increments.
    fn counter(self, d: &mut DropCounts) -> &mut usize {
        match self {
            Drop::Untranslated => &mut d.untranslated,
            Drop::Identical => &mut d.identical,
            Drop::TooShort => &mut d.too_short,
            Drop::TooLong => &mut d.too_long,
        }
    }
}

/// Applies the content and length filters to one cleaned pair.
fn filter_pair(en: String, xx: String, f: Filters) -> std::result::Result<(String, String), Drop> {
    if xx.is_empty() {
        Err(Drop::Untranslated)
    } else if en == xx {
        Err(Drop::Identical)
    } else if word_count(&en) < f.min_words {
        Err(Drop::TooShort)
    } else if en.chars().count() > f.max_chars || xx.chars().count() > f.max_chars {
        Err(Drop::TooLong)
    } else {
        Ok((en, xx))
    }
}

/// The split hash of an English sentence: the first 8 bytes (big-endian) of the SHA-256 of
/// its [`split_key`] (the sentence itself if the key is empty).
pub fn split_hash(english: &str) -> u64 {
    let key = split_key(english);
    let key = if key.is_empty() { english } else { &key };
    let digest = Sha256::digest(key.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The split an English sentence belongs to, for given valid and test fractions: the hash,
/// read as a fraction of 2^64, below `test` is test, below `test + valid` is valid.
pub fn assign_split(english: &str, valid_fraction: f64, test_fraction: f64) -> Split {
    split_for_hash(split_hash(english), valid_fraction, test_fraction)
}

/// The split for a [`split_hash`] value (see [`assign_split`]).
fn split_for_hash(hash: u64, valid_fraction: f64, test_fraction: f64) -> Split {
    let u = hash as f64 / 18_446_744_073_709_551_616.0; // 2^64
    if u < test_fraction {
        Split::Test
    } else if u < test_fraction + valid_fraction {
        Split::Valid
    } else {
        Split::Train
    }
}

/// Per language: English sentence → (priority, translation) → count.
type Tally = BTreeMap<Lang, HashMap<String, BTreeMap<(u8, String), usize>>>;

/// Picks the translation: best priority, then most frequent, then smallest string. Also
/// says whether the best priority offered more than one distinct translation.
fn choose(candidates: &BTreeMap<(u8, String), usize>) -> (&str, bool) {
    let best = candidates
        .iter()
        .min_by(|((pa, xa), ca), ((pb, xb), cb)| pa.cmp(pb).then(cb.cmp(ca)).then(xa.cmp(xb)))
        .expect("at least one candidate");
    let priority = best.0 .0;
    let rivals = candidates.keys().filter(|(p, _)| *p == priority).count();
    (&best.0 .1, rivals > 1)
}

/// Imports the catalogs under `root`. `on_catalog` is called once per catalog processed
/// (from worker threads), for progress display.
pub fn import_gettext(
    root: &Path,
    opts: &ImportOptions,
    on_catalog: &(dyn Fn(&Path) + Sync),
) -> Result<(Corpus, ImportReport)> {
    opts.validate()?;
    let found = discover(root, opts.langs.as_deref())?;
    import_catalogs(&found, opts, on_catalog)
}

/// Imports already discovered catalogs (see [`import_gettext`]).
pub fn import_catalogs(
    found: &Discovery,
    opts: &ImportOptions,
    on_catalog: &(dyn Fn(&Path) + Sync),
) -> Result<(Corpus, ImportReport)> {
    opts.validate()?;
    let filters = Filters {
        min_words: opts.min_words,
        max_chars: opts.max_chars,
    };
    let results: Vec<_> = found
        .catalogs
        .par_iter()
        .map(|c| {
            let r = read_catalog(&c.path).map(|cat| extract(&cat, filters));
            on_catalog(&c.path);
            r
        })
        .collect();
    let mut report = ImportReport {
        code_lists_skipped: found.code_lists,
        other_categories_skipped: found.other_categories,
        other_langs_skipped: found.other_langs,
        unmapped_locales: found.unmapped.clone(),
        failed: found.unreadable.clone(),
        ..ImportReport::default()
    };
    let mut tally: Tally = BTreeMap::new();
    for (c, r) in found.catalogs.iter().zip(results) {
        match r {
            Err(e) => report.failed.push(FailedCatalog {
                path: c.path.display().to_string(),
                reason: e.to_string(),
            }),
            Ok(Extracted {
                pairs,
                drops,
                warning,
            }) => {
                report.catalogs_read += 1;
                report.dropped.add(&drops);
                if let Some(reason) = warning {
                    report.warnings.push(FailedCatalog {
                        path: c.path.display().to_string(),
                        reason,
                    });
                }
                let summary = report.langs.entry(c.lang.code().to_string()).or_default();
                summary.catalogs += 1;
                summary.extracted += pairs.len();
                if !summary.locales.contains(&c.locale) {
                    summary.locales.push(c.locale.clone());
                    summary.locales.sort();
                }
                let sentences = tally.entry(c.lang).or_default();
                for (en, xx) in pairs {
                    *sentences
                        .entry(en)
                        .or_default()
                        .entry((c.priority, xx))
                        .or_default() += 1;
                }
            }
        }
    }
    if report.catalogs_read == 0 {
        return Err(nothing_read(&report.failed));
    }
    let corpus = build_corpus(&tally, opts, &mut report)?;
    Ok((corpus, report))
}

/// The error of an import that read no catalog: each refused one with its reason.
fn nothing_read(failed: &[FailedCatalog]) -> DataError {
    if failed.is_empty() {
        return DataError::Usage(
            "no catalogs to import: expected {locale}/LC_MESSAGES/*.mo|.po or {locale}.po files of the languages asked for".into(),
        );
    }
    let list: String = failed
        .iter()
        .map(|f| format!("\n  {}: {}", f.path, f.reason))
        .collect();
    DataError::Usage(format!(
        "none of the {} catalogs could be read:{list}",
        failed.len()
    ))
}

/// Merges the tally, splits it and applies the caps.
fn build_corpus(tally: &Tally, opts: &ImportOptions, report: &mut ImportReport) -> Result<Corpus> {
    let mut corpus = Corpus::new();
    for (&lang, sentences) in tally {
        let summary = report.langs.entry(lang.code().to_string()).or_default();
        let mut rows: Vec<(u64, Pair)> = sentences
            .iter()
            .map(|(en, cands)| {
                let (xx, conflict) = choose(cands);
                summary.conflicts += usize::from(conflict);
                (split_hash(en), Pair::new(xx, en.clone()))
            })
            .collect();
        rows.sort();
        let mut sets: BTreeMap<Split, Vec<Pair>> =
            Split::ALL.iter().map(|&s| (s, Vec::new())).collect();
        for (hash, pair) in rows {
            let split = split_for_hash(hash, opts.valid_fraction, opts.test_fraction);
            sets.get_mut(&split).expect("all splits present").push(pair);
        }
        for (split, cap) in [(Split::Valid, opts.max_valid), (Split::Test, opts.max_test)] {
            let set = sets.get_mut(&split).expect("all splits present");
            if let Some(cap) = cap.filter(|&c| set.len() > c) {
                summary.capped += set.len() - cap;
                set.truncate(cap);
            }
        }
        summary.train = sets[&Split::Train].len();
        summary.valid = sets[&Split::Valid].len();
        summary.test = sets[&Split::Test].len();
        for (split, pairs) in sets {
            corpus.set(lang, split, pairs)?;
        }
    }
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gettext::Message;

    fn m(id: &str, plural: Option<&str>, strs: &[&str]) -> Message {
        Message {
            msgid: id.into(),
            msgid_plural: plural.map(str::to_string),
            msgstr: strs.iter().map(|s| s.to_string()).collect(),
            ..Message::default()
        }
    }

    const F: Filters = Filters {
        min_words: 3,
        max_chars: 40,
    };

    #[test]
    fn extract_filters_and_plurals() {
        let header = m("", None, &["Plural-Forms: nplurals=6; plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5;\n"]);
        let mut fuzzy = m("A fuzzy entry here", None, &["x"]);
        fuzzy.fuzzy = true;
        let cat = Catalog {
            messages: vec![
                header,
                m("_Open the  file", None, &["افتح _الملف"]),
                m("Not translated yet", None, &[""]),
                m("Same text in both", None, &["Same text in both"]),
                m("Too short", None, &["قصير"]),
                m(
                    "This one is far too long to keep in the corpus",
                    None,
                    &["طويل"],
                ),
                fuzzy,
                m(
                    "%d file was copied",
                    Some("%d files were copied"),
                    &["z", "one", "two", "few", "many", "other"],
                ),
                m(
                    "%d item was removed",
                    Some("%d items were removed"),
                    &["z", "one"],
                ),
            ],
        };
        let Extracted {
            pairs,
            drops,
            warning,
        } = extract(&cat, F);
        assert_eq!(warning, None);
        assert_eq!(
            pairs,
            [
                ("Open the file".to_string(), "افتح الملف".to_string()),
                ("%d file was copied".into(), "one".into()),
                ("%d files were copied".into(), "few".into()),
                ("%d item was removed".into(), "one".into()),
            ]
        );
        let want = DropCounts {
            fuzzy: 1,
            untranslated: 1,
            identical: 1,
            too_short: 1,
            too_long: 1,
            missing_plural_form: 1,
            bad_plural_rule: 0,
        };
        assert_eq!(drops, want);
        // A typo in the header (as in real catalogs): plurals skipped, the rest kept.
        let bad = Catalog {
            messages: vec![
                m("", None, &["Plural-Forms: nulurals=1; plural=0;\n"]),
                m("%d thing was found", Some("%d things were found"), &["x"]),
                m("One normal message here", None, &["y"]),
            ],
        };
        let ex = extract(&bad, F);
        assert!(ex.warning.unwrap().contains("lacks nplurals"));
        assert_eq!(
            ex.pairs,
            [("One normal message here".to_string(), "y".to_string())]
        );
        assert_eq!(ex.drops.bad_plural_rule, 1);
    }

    #[test]
    fn choose_prefers_priority_then_count_then_smallest() {
        let mut c = BTreeMap::new();
        c.insert((1, "a".to_string()), 5);
        c.insert((0, "c".to_string()), 2);
        c.insert((0, "b".to_string()), 2);
        c.insert((0, "d".to_string()), 1);
        assert_eq!(choose(&c), ("b", true));
        c.insert((0, "e".to_string()), 3);
        assert_eq!(choose(&c), ("e", true));
        let single: BTreeMap<_, _> = [((0, "x".to_string()), 1), ((2, "y".to_string()), 9)].into();
        assert_eq!(choose(&single), ("x", false));
    }

    #[test]
    fn split_is_stable_and_english_only() {
        // Pinned values: SHA-256 is the same on every machine and Rust version.
        assert_eq!(split_hash("Open the file"), split_hash("open the FILE…"));
        assert_eq!(split_hash("Open the file"), 0xcc5b_682e_634f_d442);
        let n = 2000;
        let tests = (0..n)
            .filter(|i| assign_split(&format!("sentence number {i}"), 0.1, 0.1) == Split::Test)
            .count();
        assert!((120..280).contains(&tests), "{tests}");
        assert_eq!(assign_split("anything at all", 0.0, 0.0), Split::Train);
        assert_eq!(assign_split("anything at all", 0.0, 1.0), Split::Test);
    }
}
