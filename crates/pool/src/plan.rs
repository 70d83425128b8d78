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
    /// A hand-written manifest, or the plan of a merge ablation ([`MergeMode::PerDirection`],
    /// [`MergeMode::EnXx`]).
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
    /// Per-source weights, in source order; all 1.0 when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    /// Rank of the merged adapter in the delta space (SVD truncation, PEFT's `svd_rank`);
    /// absent: the sources' (largest) rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// TIES sign election of `ties`/`dare_ties` (PEFT's `majority_sign_method`): `total`
    /// (the default, not written) or `frequency`.
    #[serde(
        default = "default_majority_sign",
        skip_serializing_if = "is_default_majority_sign"
    )]
    pub majority_sign: String,
}

/// PEFT's default sign election.
const DEFAULT_MAJORITY_SIGN: &str = "total";

fn default_majority_sign() -> String {
    DEFAULT_MAJORITY_SIGN.into()
}

fn is_default_majority_sign(method: &str) -> bool {
    method == DEFAULT_MAJORITY_SIGN
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

/// Id of the merged En→XX adapter of a group (the `en-xx` merge mode); distinct from
/// [`dat_group_id`], the trained En→XX adapter of a group, which may share the pool folder.
pub fn merged_en_xx_group_id(group: GroupId) -> String {
    format!("en-xx.merged.g{group}")
}

/// Id of the one merged XX→En adapter of the `per-direction` merge mode.
pub const MERGED_XX_EN_ID: &str = "xx-en.all";

/// Id of the one merged En→XX adapter of the `per-direction` (and, for a DAT pool, `en-xx`)
/// merge mode.
pub const MERGED_EN_XX_ID: &str = "en-xx.all";

/// How the merges of a merge mode are made: one setting for all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSettings {
    /// Merge method name.
    pub method: String,
    /// Density for trimming methods.
    pub density: Option<f64>,
    /// `delta` or `factors`.
    pub space: String,
    /// Per-source weights, in each merge's source order; all 1.0 when empty. Every merge of
    /// the mode must then have exactly this many sources.
    pub weights: Vec<f64>,
    /// Rank of the merged adapters (delta space); `None`: the sources' rank.
    pub rank: Option<usize>,
    /// TIES sign election: `total` or `frequency`.
    pub majority_sign: String,
}

impl Default for MergeSettings {
    /// TIES in ΔW space at density 0.2 (the PEFT docs' example value), weights 1, the
    /// sources' rank, sign elected by total mass.
    fn default() -> Self {
        MergeSettings {
            method: datm_lang::paper::MERGE_METHOD.into(),
            density: Some(0.2),
            space: "delta".into(),
            weights: Vec::new(),
            rank: None,
            majority_sign: default_majority_sign(),
        }
    }
}

impl MergeSettings {
    /// The spec of one merge of `sources` with these settings.
    pub fn spec(&self, sources: Vec<String>) -> MergeSpec {
        MergeSpec {
            sources,
            method: self.method.clone(),
            density: self.density,
            space: self.space.clone(),
            weights: self.weights.clone(),
            rank: self.rank,
            majority_sign: self.majority_sign.clone(),
        }
    }
}

/// Which adapters `pool merge` combines: DATM (paper §4.3) and the ablations of its
/// preliminary experiments. Every mode merges only adapters that serve one side (all their
/// directions XX→En, or all En→XX) and never a merge of fewer than two adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// DATM: in each group, the XX→En adapters serving only that group's languages merge
    /// into `xx-en.g{N}`; En→XX is left as trained. A DAT pool becomes 2·N_G adapters.
    Groupwise,
    /// "One adapter per direction": every XX→En adapter merges into `xx-en.all` and every
    /// En→XX adapter into `en-xx.all`. A DAT (or separate) pool becomes 2 adapters.
    PerDirection,
    /// DATM plus merging on the En→XX side, one level coarser than it was trained: in each
    /// group, the En→XX adapters serving only that group's languages merge into
    /// `en-xx.merged.g{N}` (a separate pool: 2·N_G adapters); when no group has two (a DAT
    /// pool, whose En→XX adapters already are per group), all En→XX adapters merge into
    /// `en-xx.all` (a DAT pool: N_G + 1 adapters).
    EnXx,
}

impl MergeMode {
    /// Every mode, in the order `pool merge --help` lists them.
    pub const ALL: [MergeMode; 3] = [
        MergeMode::Groupwise,
        MergeMode::PerDirection,
        MergeMode::EnXx,
    ];

    /// The name used on the command line (`--groupwise`, …) and in messages.
    pub fn name(self) -> &'static str {
        match self {
            MergeMode::Groupwise => "groupwise",
            MergeMode::PerDirection => "per-direction",
            MergeMode::EnXx => "en-xx",
        }
    }

    /// The manifest the merged plan is saved as inside the pool folder.
    pub fn manifest(self) -> &'static str {
        match self {
            MergeMode::Groupwise => "datm.toml",
            MergeMode::PerDirection => "datm-per-direction.toml",
            MergeMode::EnXx => "datm-en-xx.toml",
        }
    }

    /// The strategy recorded in the merged plan: DATM for the paper's merge, `custom` for
    /// the ablations (plans no strategy of Figure 4 generates).
    pub fn strategy(self) -> Strategy {
        match self {
            MergeMode::Groupwise => Strategy::Datm,
            MergeMode::PerDirection | MergeMode::EnXx => Strategy::Custom,
        }
    }
}

impl fmt::Display for MergeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One merge a mode asks for: the merged adapter's id and the directions whose adapters it
/// may combine (an adapter qualifies when all its directions lie among them).
struct Scope {
    id: String,
    directions: Vec<Direction>,
}

/// The merges a plan's merge-mode yields: the new plan and `(merged id, spec)` to run.
pub type MergedPlan = (PoolPlan, Vec<(String, MergeSpec)>);

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
            if let Some(spec) = &a.merge {
                crate::merge::check_spec(&a.id, spec)?;
                self.check_merge_directions(a, spec)?;
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

    /// A merged adapter whose sources are all adapters of this plan (a hand-written plan
    /// that trains them) may serve only directions some source is trained on.
    fn check_merge_directions(&self, a: &AdapterSpec, spec: &MergeSpec) -> Result<(), PoolError> {
        let sources: Option<Vec<&AdapterSpec>> =
            spec.sources.iter().map(|s| self.adapter(s)).collect();
        let Some(sources) = sources else {
            return Ok(());
        };
        match a
            .directions
            .iter()
            .find(|d| !sources.iter().any(|s| s.directions.contains(d)))
        {
            Some(d) => Err(PoolError::Plan(format!(
                "merged adapter {:?} serves {d}, but none of its sources ({}) is trained on it",
                a.id,
                spec.sources.join(", ")
            ))),
            None => Ok(()),
        }
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
    /// Groups with a single XX→En adapter keep it unmerged, and a plan with nothing to merge
    /// is returned unchanged (as [`Strategy::Datm`]); [`PoolPlan::merged_by`] refuses that.
    pub fn merged_groupwise(&self, settings: &MergeSettings) -> Result<MergedPlan, PoolError> {
        let scopes = self.group_scopes(Direction::to_english, datm_group_id)?;
        self.merged_scopes(Strategy::Datm, &scopes, settings)
    }

    /// Applies a merge mode (see [`MergeMode`]): the new plan, validated, and the merges to
    /// run. A plan in which the mode finds nothing to merge is an error saying so.
    pub fn merged_by(
        &self,
        mode: MergeMode,
        settings: &MergeSettings,
    ) -> Result<MergedPlan, PoolError> {
        let scopes = match mode {
            MergeMode::Groupwise => self.group_scopes(Direction::to_english, datm_group_id)?,
            MergeMode::PerDirection => vec![
                self.side_scope(Direction::to_english, MERGED_XX_EN_ID),
                self.side_scope(Direction::from_english, MERGED_EN_XX_ID),
            ],
            MergeMode::EnXx => {
                let mut scopes = self.group_scopes(Direction::to_english, datm_group_id)?;
                scopes.extend(self.en_xx_scopes()?);
                scopes
            }
        };
        let (plan, merges) = self.merged_scopes(mode.strategy(), &scopes, settings)?;
        if merges.is_empty() {
            return Err(PoolError::Plan(format!(
                "merge mode {mode} would merge nothing: no {} has two or more adapters serving only its directions (is the plan already merged?)",
                match mode {
                    MergeMode::Groupwise => "group's XX→En side",
                    MergeMode::PerDirection => "side (XX→En, En→XX)",
                    MergeMode::EnXx => "group's XX→En or En→XX side, nor the En→XX side as a whole,",
                }
            )));
        }
        Ok((plan, merges))
    }

    /// The `en-xx` mode's En→XX merges: per group where some group has two or more En→XX
    /// adapters, else the whole En→XX side.
    fn en_xx_scopes(&self) -> Result<Vec<Scope>, PoolError> {
        let per_group = self.group_scopes(Direction::from_english, merged_en_xx_group_id)?;
        if per_group
            .iter()
            .any(|s| self.scope_sources(&s.directions).len() >= 2)
        {
            Ok(per_group)
        } else {
            Ok(vec![
                self.side_scope(Direction::from_english, MERGED_EN_XX_ID)
            ])
        }
    }

    /// One scope per group: the group's directions of one side (`side` maps a language to
    /// its direction), merged under `id(group)`.
    fn group_scopes(
        &self,
        side: fn(Lang) -> Direction,
        id: fn(GroupId) -> String,
    ) -> Result<Vec<Scope>, PoolError> {
        Ok(self
            .grouping()?
            .groups()
            .map(|(g, langs)| Scope {
                id: id(g),
                directions: langs.iter().map(|&l| side(l)).collect(),
            })
            .collect())
    }

    /// One side's directions over all languages (in the plan's language order) as one scope.
    fn side_scope(&self, side: fn(Lang) -> Direction, id: &str) -> Scope {
        Scope {
            id: id.into(),
            directions: self.languages.iter().map(|&l| side(l)).collect(),
        }
    }

    /// The distinct adapters routed for `scope`'s directions (in its order) whose own
    /// directions all lie in `scope`.
    fn scope_sources(&self, scope: &[Direction]) -> Vec<&AdapterSpec> {
        let mut sources: Vec<&AdapterSpec> = Vec::new();
        for a in scope
            .iter()
            .filter_map(|d| self.routes.get(d))
            .filter_map(|id| self.adapter(id))
        {
            if a.directions.iter().all(|d| scope.contains(d))
                && !sources.iter().any(|s| s.id == a.id)
            {
                sources.push(a);
            }
        }
        sources
    }

    /// Replaces, for each scope with two or more sources, the sources by one merged adapter
    /// (its directions the union of theirs, routes updated), then validates the new plan.
    fn merged_scopes(
        &self,
        strategy: Strategy,
        scopes: &[Scope],
        settings: &MergeSettings,
    ) -> Result<MergedPlan, PoolError> {
        let mut plan = self.clone();
        plan.strategy = strategy;
        let mut merges = Vec::new();
        for scope in scopes {
            let sources = self.scope_sources(&scope.directions);
            if sources.len() < 2 {
                continue;
            }
            if self.adapter(&scope.id).is_some() {
                return Err(PoolError::Plan(format!(
                    "the merged adapter {:?} would overwrite the plan's own adapter of that id in the pool folder; rename that adapter",
                    scope.id
                )));
            }
            let spec = settings.spec(sources.iter().map(|a| a.id.clone()).collect());
            let directions: Vec<Direction> =
                sources.iter().flat_map(|a| a.directions.clone()).collect();
            plan.adapters.retain(|a| !spec.sources.contains(&a.id));
            for d in &directions {
                plan.routes.insert(*d, scope.id.clone());
            }
            plan.adapters.push(AdapterSpec {
                id: scope.id.clone(),
                directions,
                data: Vec::new(),
                merge: Some(spec.clone()),
            });
            merges.push((scope.id.clone(), spec));
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
