//! Comparisons of two systems on one test set: per-direction deltas with their paired
//! bootstrap p-values, and deltas of averages over columns of directions.

use anyhow::{Context, Result};
use datm_lang::Direction;
use datm_results::Output;
use serde::Serialize;

use crate::metric::MetricKind;
use crate::section::Input;
use crate::select::Selection;
use crate::significance::{Issues, Tester, ALPHA};
use crate::views::{Class, Column};

/// What a comparison measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// A system against the chosen baseline.
    Baseline,
    /// `separate − multilingual` (paper §3.1): positive in a direction class means
    /// multilingual training loses (conflict), negative that it wins (synergy).
    ConflictSynergy,
    /// `datm − dat`: what merging each group's XX→En adapters costs.
    MergeCost,
}

impl Measure {
    /// `baseline`, `conflict-synergy` or `merge-cost` (CSV, JSON).
    pub fn key(self) -> &'static str {
        match self {
            Measure::Baseline => "baseline",
            Measure::ConflictSynergy => "conflict-synergy",
            Measure::MergeCost => "merge-cost",
        }
    }

    /// The label of a delta of this measure in `class`: `conflict` or `synergy` for
    /// `separate − multilingual` in one direction class, else none.
    pub fn label(self, delta: f64, class: Option<Class>) -> Option<&'static str> {
        match (self, class) {
            (Measure::ConflictSynergy, Some(_)) if delta > 0.0 => Some("conflict"),
            (Measure::ConflictSynergy, Some(_)) if delta < 0.0 => Some("synergy"),
            _ => None,
        }
    }
}

/// One metric's delta on one direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricDelta {
    /// System − reference, in display units.
    pub delta: f64,
    /// The paired bootstrap p-value, when tested.
    pub p_value: Option<f64>,
}

impl MetricDelta {
    /// Whether the delta is significant (p < [`ALPHA`]).
    pub fn significant(&self) -> bool {
        self.p_value.is_some_and(|p| p < ALPHA)
    }
}

/// The deltas of one direction both systems have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionDelta {
    /// The direction.
    pub direction: Direction,
    /// One per shown metric.
    pub metrics: Vec<MetricDelta>,
}

/// One metric's mean delta over a column's directions, with how many were significant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AggregateDelta {
    /// Mean of the per-direction deltas.
    pub delta: f64,
    /// Directions tested for significance.
    pub tested: usize,
    /// Directions with a significant delta.
    pub significant: usize,
}

/// Mean deltas over one column's directions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeltaAggregate {
    /// Directions averaged.
    pub n: usize,
    /// One per shown metric.
    pub metrics: Vec<AggregateDelta>,
}

/// `system − reference` on one test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The system's display name.
    pub system: String,
    /// The reference system's display name.
    pub reference: String,
    /// What the comparison measures.
    pub measure: Measure,
    /// Per direction both systems have, in row order.
    pub directions: Vec<DirectionDelta>,
    /// One cell per column of the section's `delta_columns`.
    pub cells: Vec<Option<DeltaAggregate>>,
}

impl Comparison {
    /// `system − reference`, as tables name it.
    pub fn title(&self) -> String {
        format!("{} − {}", self.system, self.reference)
    }

    /// Compares the pair on the directions both have in `input`, averaging over
    /// `columns`; why a delta went untested is counted in `issues`.
    pub(crate) fn build(
        pair: Pair,
        input: &Input,
        columns: &[Column],
        issues: &mut Issues,
    ) -> Result<Comparison> {
        let names = input.selection.all();
        let (system, reference) = (&names[pair.system].name, &names[pair.reference].name);
        let mut directions = Vec::new();
        for sys in input.outputs_of(pair.system) {
            let Some(refo) = input.output(pair.reference, sys.direction) else {
                continue;
            };
            let delta = direction_delta(refo, sys, &input.metrics, input.tester, issues)
                .with_context(|| format!("testing {system} − {reference} on {}", sys.direction))?;
            directions.push(delta);
        }
        let cells = columns
            .iter()
            .map(|c| {
                aggregate(
                    &directions,
                    |d| c.contains(d, input.grouping),
                    input.metrics.len(),
                )
            })
            .collect();
        Ok(Comparison {
            system: system.clone(),
            reference: reference.clone(),
            measure: pair.measure,
            directions,
            cells,
        })
    }
}

/// The deltas of one direction, tested.
fn direction_delta(
    reference: &Output,
    system: &Output,
    metrics: &[MetricKind],
    tester: &Tester,
    issues: &mut Issues,
) -> Result<DirectionDelta> {
    let p = tester.p_values(metrics, reference, system, issues)?;
    let metrics = metrics
        .iter()
        .zip(p)
        .map(|(m, p_value)| MetricDelta {
            delta: m.value(system).unwrap_or(f64::NAN) - m.value(reference).unwrap_or(f64::NAN),
            p_value,
        })
        .collect();
    Ok(DirectionDelta {
        direction: system.direction,
        metrics,
    })
}

/// The mean delta of each metric over the directions `keep` accepts.
fn aggregate(
    directions: &[DirectionDelta],
    keep: impl Fn(Direction) -> bool,
    n_metrics: usize,
) -> Option<DeltaAggregate> {
    let chosen: Vec<&DirectionDelta> = directions.iter().filter(|d| keep(d.direction)).collect();
    if chosen.is_empty() {
        return None;
    }
    let n = chosen.len();
    let metrics = (0..n_metrics)
        .map(|m| {
            let ds = chosen.iter().map(|d| d.metrics[m]);
            AggregateDelta {
                delta: ds.clone().map(|d| d.delta).sum::<f64>() / n as f64,
                tested: ds.clone().filter(|d| d.p_value.is_some()).count(),
                significant: ds.filter(MetricDelta::significant).count(),
            }
        })
        .collect();
    Some(DeltaAggregate { n, metrics })
}

/// Which entries a comparison pairs, and what it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    pub system: usize,
    pub reference: usize,
    pub measure: Measure,
}

/// Every comparison of the selection: each system against its baseline, then the paper's
/// measures (`separate − multilingual`, `datm − dat`) within an experiment and point. A
/// pair that is both keeps the paper's measure.
pub(crate) fn pairs(selection: &Selection) -> Vec<Pair> {
    let n = selection.all().len();
    let mut out: Vec<Pair> = (0..n)
        .filter_map(|i| {
            Some(Pair {
                system: i,
                reference: selection.baseline_of(i)?,
                measure: Measure::Baseline,
            })
        })
        .collect();
    for (system, reference, measure) in [
        ("separate", "multilingual", Measure::ConflictSynergy),
        ("datm", "dat", Measure::MergeCost),
    ] {
        for i in (0..n).filter(|&i| selection.all()[i].info.system == system) {
            let Some(r) = selection.counterpart(i, reference) else {
                continue;
            };
            match out.iter_mut().find(|p| p.system == i && p.reference == r) {
                Some(p) => p.measure = measure,
                None => out.push(Pair {
                    system: i,
                    reference: r,
                    measure,
                }),
            }
        }
    }
    out
}
