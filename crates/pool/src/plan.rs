//! Pool plans: which adapters a strategy trains, on which directions, and the routing
//! table that sends each direction to exactly one adapter.
//!
//! A plan is written as a TOML manifest (`plan.toml`); see [`PoolPlan`] for its fields.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use datm_lang::{Direction, GroupId, Grouping, Lang};
use serde::{Deserialize, Serialize};

use crate::PoolError;

/// How a pool divides translation directions among adapters (paper §3.3, Figure 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// One adapter shared by every direction (N = 1).
    Multilingual,
    /// One adapter per language group covering both directions (N = N_G).
    Group,
    /// One adapter per direction (N = 2·N_L).
    Separate,
    /// Direction-aware training: one adapter per language for XX→En, one per group for
    /// En→XX (N = N_L + N_G; paper §4.2).
    Dat,
    /// DAT followed by group-wise merging of the XX→En adapters (N = 2·N_G; paper §4.3).
    Datm,
    /// A hand-written manifest.
    Custom,
}

impl Strategy {
    /// Every strategy, in the order reports list them.
    pub const ALL: [Strategy; 6] = [
        Strategy::Multilingual,
        Strategy::Group,
        Strategy::Separate,
        Strategy::Dat,
        Strategy::Datm,
        Strategy::Custom,
    ];

    /// The lowercase name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Multilingual => "multilingual",
            Strategy::Group => "group",
            Strategy::Separate => "separate",
            Strategy::Dat => "dat",
            Strategy::Datm => "datm",
            Strategy::Custom => "custom",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = PoolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                PoolError::Plan(format!(
                    "unknown strategy {s:?}; expected one of multilingual, group, separate, dat, datm, custom"
                ))
            })
    }
}

/// How a merged adapter is made from adapters of another pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeSpec {
    /// Ids of the source adapters (in the pool the merge reads from).
    pub sources: Vec<String>,
    /// Merge method (`ties`, `linear`, `dare_ties`, `dare_linear`, `magnitude_prune`).
    pub method: String,
    /// Fraction of entries kept by trimming methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<f64>,
    /// `delta` (merge ΔW, then SVD) or `factors` (PEFT-compatible A/B merge).
    pub space: String,
    /// Per-source weights; all 1.0 when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
}

/// One adapter of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSpec {
    /// Identifier, also the adapter's directory name inside the pool (`xx-en.de`,
    /// `en-xx.g1`, `all`, `group.g1`, `de-en`).
    pub id: String,
    /// The directions the adapter is trained on (or, for a merged adapter, the union of
    /// its sources' directions).
    pub directions: Vec<Direction>,
    /// Training files, relative to the data directory, in the ALMA layout
    /// (`deen/train.de-en.json`); empty for merged adapters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PathBuf>,
    /// Present when the adapter is made by merging instead of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeSpec>,
}

impl AdapterSpec {
    /// An adapter trained on the given directions.
    pub fn trained(id: impl Into<String>, directions: Vec<Direction>) -> AdapterSpec {
        let data = train_files(&directions);
        AdapterSpec {
            id: id.into(),
            directions,
            data,
            merge: None,
        }
    }

    /// Whether the adapter is produced by training (not by merging).
    pub fn is_trained(&self) -> bool {
        self.merge.is_none()
    }
}

/// A pool manifest: the adapters of one strategy and the routing table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolPlan {
    /// The strategy that produced the plan.
    pub strategy: Strategy,
    /// The non-English languages served (every direction is English-centric).
    pub languages: Vec<Lang>,
    /// Language groups by id (string keys, as in grouping files).
    pub groups: BTreeMap<String, Vec<Lang>>,
    /// Route table: direction → adapter id.
    pub routes: BTreeMap<Direction, String>,
    /// The adapters.
    pub adapters: Vec<AdapterSpec>,
}

/// The ALMA-layout training file of a direction: `{xx}en/train.{xx}-en.json` (one file
/// serves both directions of a language).
pub fn train_file(direction: Direction) -> Option<PathBuf> {
    let xx = direction.non_english()?.code();
    Some(PathBuf::from(format!("{xx}en")).join(format!("train.{xx}-en.json")))
}

/// The ALMA-layout test file of a direction: `{xx}en/test.{src}-{tgt}.json`.
pub fn test_file(direction: Direction) -> Option<PathBuf> {
    let xx = direction.non_english()?.code();
    Some(PathBuf::from(format!("{xx}en")).join(format!("test.{direction}.json")))
}

/// Distinct training files of a set of directions, in first-seen order.
fn train_files(directions: &[Direction]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for file in directions.iter().filter_map(|&d| train_file(d)) {
        if !out.contains(&file) {
            out.push(file);
        }
    }
    out
}

/// Id of the XX→En adapter of one language under DAT.
pub fn dat_language_id(lang: Lang) -> String {
    format!("xx-en.{lang}")
}

/// Id of the merged XX→En adapter of a group under DATM.
pub fn datm_group_id(group: GroupId) -> String {
    format!("xx-en.g{group}")
}

/// Id of the En→XX adapter of a group under DAT/DATM.
pub fn dat_group_id(group: GroupId) -> String {
    format!("en-xx.g{group}")
}

/// Merge settings used by group-wise merging.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSettings {
    /// Merge method name.
    pub method: String,
    /// Density for trimming methods.
    pub density: Option<f64>,
    /// `delta` or `factors`.
    pub space: String,
}

impl Default for MergeSettings {
    /// TIES in ΔW space at density 0.2 (the PEFT docs' example value).
    fn default() -> Self {
        MergeSettings {
            method: datm_lang::paper::MERGE_METHOD.into(),
            density: Some(0.2),
            space: "delta".into(),
        }
    }
}

impl PoolPlan {
    /// Builds the plan of a strategy for the given languages and grouping. `Custom` has no
    /// generated form; use [`PoolPlan::from_toml`] for it.
    pub fn build(
        strategy: Strategy,
        languages: &[Lang],
        grouping: &Grouping,
    ) -> Result<PoolPlan, PoolError> {
        let languages = check_languages(languages)?;
        let grouping = grouping.restricted_to(&languages);
        if let Some(l) = languages.iter().find(|&&l| grouping.group_of(l).is_none()) {
            return Err(PoolError::Plan(format!(
                "language {l} is in no group; add it to the grouping file"
            )));
        }
        let adapters = match strategy {
            Strategy::Multilingual => vec![AdapterSpec::trained(
                "all",
                Direction::english_centric(&languages),
            )],
            Strategy::Group => grouping
                .groups()
                .map(|(g, ls)| {
                    AdapterSpec::trained(format!("group.g{g}"), Direction::english_centric(ls))
                })
                .collect(),
            Strategy::Separate => Direction::english_centric(&languages)
                .into_iter()
                .map(|d| AdapterSpec::trained(d.to_string(), vec![d]))
                .collect(),
            Strategy::Dat => dat_adapters(&languages, &grouping),
            Strategy::Datm => {
                let dat = PoolPlan::build(Strategy::Dat, &languages, &grouping)?;
                return Ok(dat.merged_groupwise(&MergeSettings::default())?.0);
            }
            Strategy::Custom => {
                return Err(PoolError::Plan(
                    "a custom plan is written by hand; pass it with --plan (see examples/custom-plan.toml)"
                        .into(),
                ))
            }
        };
        let routes = adapters
            .iter()
            .flat_map(|a| a.directions.iter().map(|&d| (d, a.id.clone())))
            .collect();
        let plan = PoolPlan {
            strategy,
            languages,
            groups: groups_map(&grouping),
            routes,
            adapters,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Parses and validates a manifest.
    pub fn from_toml(text: &str, origin: &str) -> Result<PoolPlan, PoolError> {
        let plan: PoolPlan = toml::from_str(text)
            .map_err(|e| PoolError::Plan(format!("{origin}: {}", e.to_string().trim())))?;
        plan.validate()
            .map_err(|e| PoolError::Plan(format!("{origin}: {e}")))?;
        Ok(plan)
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<PoolPlan, PoolError> {
        let text = std::fs::read_to_string(path).map_err(|source| PoolError::Io {
            action: "read plan",
            path: path.to_path_buf(),
            source,
        })?;
        PoolPlan::from_toml(&text, &path.display().to_string())
    }

    /// The TOML manifest.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a pool plan always serializes to TOML")
    }

    /// Writes the manifest crash-safely ([`datm_fsio`]).
    pub fn save(&self, path: &Path) -> Result<(), PoolError> {
        Ok(datm_fsio::write_atomic(path, self.to_toml().as_bytes())?)
    }

    /// Every direction the plan serves: both English-centric directions of each language.
    pub fn directions(&self) -> Vec<Direction> {
        Direction::english_centric(&self.languages)
    }

    /// The grouping recorded in the plan.
    pub fn grouping(&self) -> Result<Grouping, PoolError> {
        let mut groups = BTreeMap::new();
        for (id, langs) in &self.groups {
            let g: GroupId = id.parse().map_err(|_| {
                PoolError::Plan(format!("group id {id:?} is not a number from 1 to 255"))
            })?;
            groups.insert(g, langs.clone());
        }
        Grouping::new(groups, "plan groups").map_err(|e| PoolError::Plan(e.to_string()))
    }

    /// An adapter by id.
    pub fn adapter(&self, id: &str) -> Option<&AdapterSpec> {
        self.adapters.iter().find(|a| a.id == id)
    }

    /// Checks the plan: unique adapter ids, every served direction routed exactly once
    /// (the table is a map, so "once" means present and no extra routes), and every route
    /// pointing at an adapter that covers that direction.
    pub fn validate(&self) -> Result<(), PoolError> {
        check_languages(&self.languages)?;
        self.grouping()?;
        let mut ids = BTreeSet::new();
        for a in &self.adapters {
            if a.id.is_empty() || a.id.contains(['/', '\\']) || a.id.starts_with('.') {
                return Err(PoolError::Plan(format!(
                    "adapter id {:?} cannot be used as a directory name",
                    a.id
                )));
            }
            if !ids.insert(a.id.as_str()) {
                return Err(PoolError::Plan(format!(
                    "adapter id {:?} appears twice",
                    a.id
                )));
            }
            if a.directions.is_empty() {
                return Err(PoolError::Plan(format!(
                    "adapter {:?} has no directions",
                    a.id
                )));
            }
        }
        let served = self.directions();
        for d in &served {
            let id = self.routes.get(d).ok_or_else(|| {
                PoolError::Plan(format!("direction {d} is not routed to any adapter"))
            })?;
            let adapter = self.adapter(id).ok_or_else(|| {
                PoolError::Plan(format!("direction {d} is routed to unknown adapter {id:?}"))
            })?;
            if !adapter.directions.contains(d) {
                return Err(PoolError::Plan(format!(
                    "direction {d} is routed to adapter {id:?}, which is not trained on {d}"
                )));
            }
        }
        if let Some(d) = self.routes.keys().find(|d| !served.contains(d)) {
            return Err(PoolError::Plan(format!(
                "direction {d} is routed but {} is not one of the plan's languages",
                d.non_english().unwrap_or(d.src)
            )));
        }
        Ok(())
    }

    /// Checks that every trained adapter's data exists and is non-empty under `data_dir`.
    pub fn check_data(&self, data_dir: &Path) -> Result<(), PoolError> {
        for a in self.adapters.iter().filter(|a| a.is_trained()) {
            for &d in &a.directions {
                let rel = train_file(d).ok_or_else(|| {
                    PoolError::Plan(format!("direction {d} is not English-centric"))
                })?;
                let path = data_dir.join(&rel);
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len == 0 || crate::fsutil::is_empty_json_array(&path) {
                    return Err(PoolError::Plan(format!(
                        "direction {d} (adapter {:?}): training data {} is missing or empty",
                        a.id,
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// DATM: merges the XX→En adapters inside each group. Returns the new plan (sources
    /// replaced by one merged adapter per group, routes updated) and the merges to run.
    /// Groups with a single XX→En adapter keep it unmerged. Only XX→En adapters that serve
    /// exactly one language are merged.
    pub fn merged_groupwise(
        &self,
        settings: &MergeSettings,
    ) -> Result<(PoolPlan, Vec<(String, MergeSpec)>), PoolError> {
        let grouping = self.grouping()?;
        let mut plan = self.clone();
        plan.strategy = Strategy::Datm;
        let mut merges = Vec::new();
        for (g, langs) in grouping.groups() {
            let sources: Vec<&AdapterSpec> = langs
                .iter()
                .filter_map(|&l| self.routes.get(&Direction::to_english(l)))
                .filter_map(|id| self.adapter(id))
                .filter(|a| a.directions.iter().all(|d| d.is_to_english()))
                .collect();
            let mut unique: Vec<&AdapterSpec> = Vec::new();
            for a in sources {
                if !unique.iter().any(|u| u.id == a.id) {
                    unique.push(a);
                }
            }
            if unique.len() < 2 {
                continue;
            }
            let id = datm_group_id(g);
            let spec = MergeSpec {
                sources: unique.iter().map(|a| a.id.clone()).collect(),
                method: settings.method.clone(),
                density: settings.density,
                space: settings.space.clone(),
                weights: Vec::new(),
            };
            let directions: Vec<Direction> =
                unique.iter().flat_map(|a| a.directions.clone()).collect();
            plan.adapters.retain(|a| !spec.sources.contains(&a.id));
            for d in &directions {
                plan.routes.insert(*d, id.clone());
            }
            plan.adapters.push(AdapterSpec {
                id: id.clone(),
                directions,
                data: Vec::new(),
                merge: Some(spec.clone()),
            });
            merges.push((id, spec));
        }
        plan.validate()?;
        Ok((plan, merges))
    }
}

fn dat_adapters(languages: &[Lang], grouping: &Grouping) -> Vec<AdapterSpec> {
    let mut adapters: Vec<AdapterSpec> = languages
        .iter()
        .map(|&l| AdapterSpec::trained(dat_language_id(l), vec![Direction::to_english(l)]))
        .collect();
    adapters.extend(grouping.groups().map(|(g, ls)| {
        AdapterSpec::trained(
            dat_group_id(g),
            ls.iter().map(|&l| Direction::from_english(l)).collect(),
        )
    }));
    adapters
}

fn groups_map(grouping: &Grouping) -> BTreeMap<String, Vec<Lang>> {
    grouping
        .groups()
        .map(|(g, ls)| (g.to_string(), ls.to_vec()))
        .collect()
}

fn check_languages(languages: &[Lang]) -> Result<Vec<Lang>, PoolError> {
    if languages.is_empty() {
        return Err(PoolError::Plan("no languages given".into()));
    }
    let mut seen = BTreeSet::new();
    for &l in languages {
        if l.is_english() {
            return Err(PoolError::Plan(
                "English is the pivot of every direction; list only the other languages".into(),
            ));
        }
        if !seen.insert(l) {
            return Err(PoolError::Plan(format!("language {l} is listed twice")));
        }
    }
    Ok(languages.to_vec())
}
