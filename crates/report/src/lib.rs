//! Reports over one or more results stores (`datm-results`): the paper's tables, deltas
//! against a baseline with paired-bootstrap significance, and SVG figures, rendered as
//! Markdown, CSV, LaTeX, JSON or a self-contained HTML page.
//!
//! [`Report::build`] takes the systems of any number of stores (concatenated in the order
//! the stores were given) and computes, per test set, plain data views:
//! - the Table-1 view (paper Table 1): system × group × direction class (XX→En, En→XX),
//!   plus the XX→En, En→XX and overall averages;
//! - the Table-2 view (paper Table 2): quality averages and parameter counts;
//! - per-resource-level and per-group averages;
//! - comparisons: every system against the baseline (default `multilingual`), and the
//!   paper's own measures where those systems exist: `separate − multilingual` (§3.1: a
//!   positive delta in a direction class means conflict, a negative one synergy) and
//!   `datm − dat` (the cost of merging); each per-direction delta carries the p-value of
//!   sacrebleu's paired bootstrap test, recomputed from the stored segment statistics.
//!
//! A system is identified by its experiment and [`datm_results::SystemInfo::label`]
//! (`system` or `system@point`); when several stores hold the same one, the one read last
//! is used and the report says so. Every view is `Serialize`; the JSON format is the whole
//! [`Report`].

#![forbid(unsafe_code)]

mod cells;
mod compare;
mod doc;
mod figures;
mod metric;
mod render;
mod section;
mod select;
mod significance;
mod views;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use datm_lang::{Direction, GroupId, Grouping};
use datm_results::{Store, SystemInfo, SystemResults};
use serde::Serialize;

pub use compare::{
    AggregateDelta, Comparison, DeltaAggregate, DirectionDelta, Measure, MetricDelta,
};
pub use figures::{Figure, Figures, Skipped};
pub use metric::MetricKind;
pub use section::{BaseCheck, Section};
pub use significance::ALPHA;
pub use views::{
    Aggregate, Breakdown, Class, Column, Line, ParamCounts, Scope, ScoreRow, Table2Line,
};

/// The baseline when none is given (and such a system exists).
pub const DEFAULT_BASELINE: &str = "multilingual";
/// The number of bootstrap resamples when none is given (sacrebleu's default).
pub const DEFAULT_BOOTSTRAP: usize = datm_metrics::significance::DEFAULT_BOOTSTRAP;
/// The resampling seed when none is given (sacrebleu's default `SACREBLEU_SEED`).
pub const DEFAULT_SEED: u64 = 12345;

/// What to report and how.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The report's title.
    pub title: String,
    /// The system every other one is compared with: a system name (`multilingual`: the
    /// system of that name in the same experiment and sweep point), or a full label
    /// (`multilingual@languages=8`, `exp/multilingual`) for one fixed system. `None`:
    /// `multilingual` when present.
    pub baseline: Option<String>,
    /// The language groups; `None`: X-ALMA's. Either is restricted to the languages present.
    pub grouping: Option<Grouping>,
    /// Only these experiments (empty: all).
    pub experiments: Vec<String>,
    /// Only these systems, by name, label or display name (empty: all).
    pub systems: Vec<String>,
    /// Only these directions (empty: all).
    pub directions: Vec<Direction>,
    /// Bootstrap resamples of the paired significance test; 0 turns the test off.
    pub bootstrap: usize,
    /// The resampling seed.
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "datm report".to_string(),
            baseline: None,
            grouping: None,
            experiments: Vec::new(),
            systems: Vec::new(),
            directions: Vec::new(),
            bootstrap: DEFAULT_BOOTSTRAP,
            seed: DEFAULT_SEED,
        }
    }
}

/// A system as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemEntry {
    /// The name in tables: its label, prefixed with `experiment/` when the report covers
    /// several experiments.
    pub name: String,
    /// Who it is and how it was made, as stored.
    #[serde(flatten)]
    pub info: SystemInfo,
}

/// How significance was tested.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignificanceSettings {
    /// The test's name.
    pub test: String,
    /// Bootstrap resamples (0: not tested).
    pub samples: usize,
    /// The resampling seed.
    pub seed: u64,
    /// The significance level of the marks.
    pub alpha: f64,
}

/// A whole report: one [`Section`] per test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The title.
    pub title: String,
    /// The baseline's name as given or defaulted, when one was found.
    pub baseline: Option<String>,
    /// Group id → member language codes, as used for the group columns.
    pub groups: BTreeMap<GroupId, Vec<String>>,
    /// The systems reported, in the order first read.
    pub systems: Vec<SystemEntry>,
    /// How significance was tested.
    pub significance: SignificanceSettings,
    /// One section per test set, in the order first met.
    pub sections: Vec<Section>,
    /// What the reader should know: replaced duplicates, a missing baseline.
    pub notes: Vec<String>,
}

impl Report {
    /// Builds the report over `systems` (the systems of one or more stores, in reading
    /// order). Fails when a filter or the requested baseline matches nothing, or when
    /// nothing is left to report.
    pub fn build(systems: &[SystemResults], opts: &ReportOptions) -> Result<Report> {
        let mut notes = Vec::new();
        let selection = select::Selection::new(systems, opts, &mut notes)?;
        let grouping = selection.grouping(opts.grouping.as_ref());
        let tester = significance::Tester::new(opts.bootstrap, opts.seed)?;
        let sections = selection
            .test_sets()
            .iter()
            .map(|name| Section::build(&selection, name, &grouping, &tester))
            .collect::<Result<Vec<_>>>()?;
        Ok(Report {
            title: opts.title.clone(),
            baseline: selection.baseline_name().map(str::to_string),
            groups: grouping
                .groups()
                .map(|(g, ls)| (g, ls.iter().map(|l| l.code().to_string()).collect()))
                .collect(),
            systems: selection.entries(),
            significance: tester.settings(),
            sections,
            notes,
        })
    }

    /// The report as pretty JSON (the whole [`Report`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize (finite numbers)")
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        render::markdown(&doc::document(self))
    }

    /// The report as a LaTeX fragment of booktabs tables (`\usepackage{booktabs}`).
    pub fn to_latex(&self) -> String {
        render::latex(&doc::document(self))
    }

    /// The report as tidy CSV: one row per system × direction × metric (`view` = `score`),
    /// then the rows of every view (`table1`, `groups`, `resources`, `table2`, `delta`).
    pub fn to_csv(&self) -> String {
        render::csv(self)
    }

    /// The report as one self-contained HTML page: the tables, the figures as inline SVG,
    /// a little CSS, no external resources.
    pub fn to_html(&self) -> String {
        render::html(&doc::document(self), &self.title, &self.figures())
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.to_markdown(),
            Format::Csv => self.to_csv(),
            Format::Latex => self.to_latex(),
            Format::Json => self.to_json(),
            Format::Html => self.to_html(),
        }
    }

    /// The SVG figures this report's data allows, and a note for each one skipped.
    pub fn figures(&self) -> Figures {
        figures::all(self)
    }
}

/// An output format of [`Report::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown tables.
    Markdown,
    /// Tidy CSV.
    Csv,
    /// LaTeX booktabs tables.
    Latex,
    /// The whole report as JSON.
    Json,
    /// A self-contained HTML page with inline SVG figures.
    Html,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Format::Markdown,
            "csv" => Format::Csv,
            "latex" | "tex" => Format::Latex,
            "json" => Format::Json,
            "html" => Format::Html,
            _ => {
                anyhow::bail!("unknown report format {s:?}: expected md, csv, latex, json or html")
            }
        })
    }
}

/// Reads every system of the stores at `paths`, in order (read-only; a missing file or one
/// that is not a datm results store is an error naming it).
pub fn read_stores<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<SystemResults>> {
    let mut all = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let store = Store::open_read_only(path)?;
        all.extend(
            store
                .systems()
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok(all)
}

/// Writes each figure as `dir/<name>` (creating `dir`); returns the paths written.
pub fn write_figures(dir: &Path, figures: &Figures) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    figures
        .figures
        .iter()
        .map(|f| {
            let path = dir.join(&f.name);
            datm_fsio::write_atomic(&path, f.svg.as_bytes())?;
            Ok(path)
        })
        .collect()
}
