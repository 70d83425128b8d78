//! One test set's part of a report: its rows, views, comparisons and notes.

use anyhow::Result;
use datm_lang::{Direction, Grouping};
use datm_results::Output;
use serde::Serialize;

use crate::compare::{self, Comparison};
use crate::metric::MetricKind;
use crate::select::Selection;
use crate::significance::{Issues, Tester};
use crate::views::{Breakdown, Class, Column, ScoreRow, Table2Line};

/// Where a fine-tuned system does not beat the untuned base model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseCheck {
    /// The system's display name.
    pub system: String,
    /// The base model's display name.
    pub base: String,
    /// The metric compared.
    pub metric: MetricKind,
    /// Directions both have.
    pub directions: usize,
    /// Directions where the system's score is not above the base model's.
    pub not_above: Vec<Direction>,
}

/// Everything reported about one test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// The test set's name.
    pub test_set: String,
    /// The metrics shown (those every output of the test set has), in display order.
    pub metrics: Vec<MetricKind>,
    /// The metric figures and the base check use: COMET when shown, else chrF, else BLEU.
    pub primary: Option<MetricKind>,
    /// One row per system × direction.
    pub scores: Vec<ScoreRow>,
    /// Paper Table 1: group × class, then the XX→En, En→XX and overall averages.
    pub table1: Breakdown,
    /// Per group, both classes together.
    pub groups: Breakdown,
    /// Resource level × class.
    pub resources: Breakdown,
    /// Paper Table 2: quality averages and parameter counts.
    pub table2: Vec<Table2Line>,
    /// The columns of every comparison's `cells`: Table 1's, then the resource levels'.
    pub delta_columns: Vec<Column>,
    /// Against the baseline, and the paper's measures.
    pub comparisons: Vec<Comparison>,
    /// Fine-tuned systems against the base model (`base`).
    pub base_checks: Vec<BaseCheck>,
    /// What the reader should know about this test set.
    pub notes: Vec<String>,
}

/// The outputs of one test set, and what comparing them needs.
pub(crate) struct Input<'s, 'a> {
    pub selection: &'s Selection<'a>,
    /// (entry index, output), one per entry and direction, entry-major, direction order.
    pub outputs: Vec<(usize, &'a Output)>,
    pub metrics: Vec<MetricKind>,
    pub grouping: &'s Grouping,
    pub tester: &'s Tester,
}

impl<'a> Input<'_, 'a> {
    /// The outputs of entry `i`.
    pub fn outputs_of(&self, i: usize) -> impl Iterator<Item = &'a Output> + '_ {
        self.outputs
            .iter()
            .filter(move |(e, _)| *e == i)
            .map(|(_, o)| *o)
    }

    /// Entry `i`'s output for `direction`.
    pub fn output(&self, i: usize, direction: Direction) -> Option<&'a Output> {
        self.outputs_of(i).find(|o| o.direction == direction)
    }

    /// Whether entry `i` has outputs here.
    fn has(&self, i: usize) -> bool {
        self.outputs.iter().any(|(e, _)| *e == i)
    }
}

impl Section {
    /// The section of test set `name`.
    pub(crate) fn build(
        selection: &Selection,
        name: &str,
        grouping: &Grouping,
        tester: &Tester,
    ) -> Result<Section> {
        let mut notes = Vec::new();
        let outputs = outputs_of_test_set(selection, name, &mut notes);
        let metrics = shown_metrics(outputs.iter().map(|(_, o)| *o), &mut notes);
        let input = Input {
            selection,
            outputs,
            metrics,
            grouping,
            tester,
        };
        let scores = score_rows(&input);
        let systems: Vec<String> = (0..selection.all().len())
            .filter(|&i| input.has(i))
            .map(|i| selection.all()[i].name.clone())
            .collect();
        let table1 = Breakdown::build(&scores, &systems, Column::table1(grouping), grouping);
        let groups = Breakdown::build(&scores, &systems, Column::groups(grouping), grouping);
        let resources = Breakdown::build(&scores, &systems, Column::resources(), grouping);
        let table2 = (0..selection.all().len())
            .filter(|&i| input.has(i))
            .map(|i| {
                let e = &selection.all()[i];
                Table2Line::build(&e.name, &table1, e.info.params)
            })
            .collect();
        let delta_columns: Vec<Column> = table1
            .columns
            .iter()
            .chain(&resources.columns)
            .copied()
            .collect();
        let mut issues = Issues::default();
        let comparisons = compare::pairs(selection)
            .into_iter()
            .filter(|p| input.has(p.system) && input.has(p.reference))
            .map(|p| Comparison::build(p, &input, &delta_columns, &mut issues))
            .collect::<Result<Vec<_>>>()?;
        notes.extend(issues.notes());
        notes.extend(ungrouped_note(&scores, grouping));
        let primary = primary_metric(&input.metrics);
        Ok(Section {
            test_set: name.to_string(),
            base_checks: primary.map_or_else(Vec::new, |m| base_checks(&input, m)),
            metrics: input.metrics,
            primary,
            scores,
            table1,
            groups,
            resources,
            table2,
            delta_columns,
            comparisons,
            notes,
        })
    }

    /// The index of `metric` among the shown metrics.
    pub fn metric_index(&self, metric: MetricKind) -> Option<usize> {
        self.metrics.iter().position(|&m| m == metric)
    }
}

/// Each entry's outputs of test set `name`, one per direction (a later duplicate wins,
/// noted), XX→En first, then En→XX, then other pairs.
fn outputs_of_test_set<'a>(
    selection: &Selection<'a>,
    name: &str,
    notes: &mut Vec<String>,
) -> Vec<(usize, &'a Output)> {
    let mut out = Vec::new();
    for (i, e) in selection.all().iter().enumerate() {
        let mut mine: Vec<&Output> = Vec::new();
        for o in e.outputs.iter().filter(|o| o.test_set.name == name) {
            match mine.iter_mut().find(|m| m.direction == o.direction) {
                Some(m) => {
                    notes.push(format!(
                        "{} {}: two versions of test set {name:?}; the later one is used.",
                        e.name, o.direction
                    ));
                    *m = o;
                }
                None => mine.push(o),
            }
        }
        mine.sort_by_key(|o| direction_order(o.direction));
        out.extend(mine.into_iter().map(|o| (i, o)));
    }
    out
}

/// Sort key: XX→En, then En→XX, then other pairs; by direction within each.
pub(crate) fn direction_order(d: Direction) -> (u8, Direction) {
    let class = match Class::of(d) {
        Some(Class::XxEn) => 0,
        Some(Class::EnXx) => 1,
        None => 2,
    };
    (class, d)
}

/// The metrics every output has; notes the ones left out.
fn shown_metrics<'a>(
    outputs: impl Iterator<Item = &'a Output> + Clone,
    notes: &mut Vec<String>,
) -> Vec<MetricKind> {
    let total = outputs.clone().count();
    let mut shown = Vec::new();
    for m in MetricKind::ALL {
        let have = outputs
            .clone()
            .filter(|o| o.score(m.key()).is_some())
            .count();
        if have == total {
            shown.push(m);
        } else if have == 0 && m == MetricKind::Comet {
            notes.push(
                "COMET was not computed: give a COMET model (`[comet] model = \"DIR\"` in the \
                 experiment, or `datm pool translate --comet DIR`)."
                    .to_string(),
            );
        } else {
            notes.push(format!(
                "{} is missing for {} of {total} outputs and is not shown.",
                m.label(),
                total - have
            ));
        }
    }
    shown
}

/// COMET when shown, else chrF, else BLEU.
fn primary_metric(metrics: &[MetricKind]) -> Option<MetricKind> {
    [MetricKind::Comet, MetricKind::Chrf, MetricKind::Bleu]
        .into_iter()
        .find(|m| metrics.contains(m))
}

fn score_rows(input: &Input) -> Vec<ScoreRow> {
    input
        .outputs
        .iter()
        .map(|&(i, o)| ScoreRow {
            system: input.selection.all()[i].name.clone(),
            direction: o.direction,
            adapter: o.adapter.clone(),
            adapter_languages: o.adapter_languages,
            segments: o.hypotheses.len(),
            values: input
                .metrics
                .iter()
                .map(|m| m.value(o).expect("shown metrics are in every output"))
                .collect(),
        })
        .collect()
}

/// Every system with a `base` counterpart: the directions where `metric` is not above it.
fn base_checks(input: &Input, metric: MetricKind) -> Vec<BaseCheck> {
    let entries = input.selection.all();
    (0..entries.len())
        .filter(|&i| entries[i].info.system != "base" && input.has(i))
        .filter_map(|i| {
            let b = input
                .selection
                .counterpart(i, "base")
                .filter(|&b| input.has(b))?;
            let pairs: Vec<(Direction, f64, f64)> = input
                .outputs_of(i)
                .filter_map(|o| {
                    let base = input.output(b, o.direction)?;
                    Some((o.direction, metric.value(o)?, metric.value(base)?))
                })
                .collect();
            Some(BaseCheck {
                system: entries[i].name.clone(),
                base: entries[b].name.clone(),
                metric,
                directions: pairs.len(),
                not_above: pairs
                    .iter()
                    .filter(|(_, s, b)| s <= b)
                    .map(|(d, ..)| *d)
                    .collect(),
            })
        })
        .collect()
}

/// A note naming the languages no group has (left out of the group columns).
fn ungrouped_note(rows: &[ScoreRow], grouping: &Grouping) -> Option<String> {
    let mut langs: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.direction.non_english())
        .filter(|l| grouping.group_of(*l).is_none())
        .map(|l| l.code())
        .collect();
    langs.sort();
    langs.dedup();
    (!langs.is_empty()).then(|| {
        format!(
            "Languages in no group (left out of the group columns): {}.",
            langs.join(", ")
        )
    })
}
