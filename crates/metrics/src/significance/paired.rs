//! sacrebleu's `PairedTest`: paired bootstrap resampling and approximate randomization of
//! several systems against a baseline.

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::numeric::{np_mean, Scores};
use super::resample::{IndexRows, MaskRows, StatsF32};
use super::{Seed, DEFAULT_AR_TRIALS, DEFAULT_BOOTSTRAP};
use crate::{sum_stats, Metric, Stats};

/// The paired significance test to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairedMethod {
    /// Paired bootstrap resampling (`--paired-bs`).
    Bootstrap,
    /// Approximate randomization (`--paired-ar`).
    ApproxRandomization,
}

impl PairedMethod {
    /// sacrebleu's default number of samples/trials.
    pub fn default_samples(&self) -> usize {
        match self {
            PairedMethod::Bootstrap => DEFAULT_BOOTSTRAP,
            PairedMethod::ApproxRandomization => DEFAULT_AR_TRIALS,
        }
    }

    /// The signature key that records the number of samples (`bs` or `ar`).
    pub fn signature_key(&self) -> &'static str {
        match self {
            PairedMethod::Bootstrap => "bs",
            PairedMethod::ApproxRandomization => "ar",
        }
    }
}

/// One system's result for one metric (sacrebleu's `Result`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedResult {
    /// The actual corpus score.
    pub score: f64,
    /// The p-value against the baseline (none for the baseline itself).
    pub p_value: Option<f64>,
    /// Bootstrap mean (paired bootstrap only).
    pub mean: Option<f64>,
    /// Bootstrap 95% half-interval (paired bootstrap only).
    pub ci: Option<f64>,
}

/// Segment statistics of one system for every metric: `stats[m][segment]`.
#[derive(Debug, Clone)]
pub struct SystemStats {
    /// The system name as printed (sacrebleu prefixes the baseline with `Baseline: `).
    pub name: String,
    /// Per metric, per segment statistics.
    pub stats: Vec<Vec<Stats>>,
}

/// Results of a paired test: the baseline first, then every system.
#[derive(Debug, Clone)]
pub struct PairedResults {
    /// The method that produced them.
    pub method: PairedMethod,
    /// Samples or trials used.
    pub n: usize,
    /// Metric names (column headers), in the order of the metrics given.
    pub metric_names: Vec<String>,
    /// System names, the baseline first.
    pub system_names: Vec<String>,
    /// `results[system][metric]`.
    pub results: Vec<Vec<PairedResult>>,
}

/// sacrebleu's `PairedTest`: compares every system of `systems[1..]` with the baseline
/// `systems[0]` on every metric. `n = 0` takes the method's default. The baseline's
/// bootstrap estimate (paired bootstrap only) uses `seed`; the systems use `seed` too,
/// except that sacrebleu turns a seed of 0 into OS entropy for them.
pub fn paired_test(
    metrics: &[&dyn Metric],
    systems: &[SystemStats],
    method: PairedMethod,
    n: usize,
    seed: Seed,
) -> Result<PairedResults> {
    let n = if n > 0 { n } else { method.default_samples() };
    if systems.len() < 2 {
        bail!("paired tests need a baseline and at least one other system");
    }
    let n_segments = check_shapes(metrics.len(), systems)?;
    let baseline = System::new(metrics, &systems[0])?;
    let mut results = vec![baseline.results(method, n, seed, n_segments)?];
    for system in &systems[1..] {
        let system = System::new(metrics, system)?;
        let sys_seed = seed.for_systems();
        results.push(match method {
            PairedMethod::Bootstrap => paired_bs(&baseline, &system, n, sys_seed, n_segments)?,
            PairedMethod::ApproxRandomization => {
                paired_ar(&baseline, &system, n, sys_seed, n_segments)?
            }
        });
    }
    Ok(PairedResults {
        method,
        n,
        metric_names: metrics.iter().map(|m| m.name()).collect(),
        system_names: systems.iter().map(|s| s.name.clone()).collect(),
        results,
    })
}

/// Checks that every system has statistics for every metric and the same number of
/// segments; returns that number.
fn check_shapes(n_metrics: usize, systems: &[SystemStats]) -> Result<usize> {
    let n_segments = systems[0].stats.first().map_or(0, Vec::len);
    if n_segments == 0 {
        bail!("paired tests need at least one segment");
    }
    for s in systems {
        if s.stats.len() != n_metrics {
            bail!(
                "system {:?} has statistics for {} metrics, expected {n_metrics}",
                s.name,
                s.stats.len()
            );
        }
        if let Some(bad) = s.stats.iter().find(|m| m.len() != n_segments) {
            bail!(
                "system {:?} has {} segments, the baseline has {n_segments}",
                s.name,
                bad.len()
            );
        }
    }
    for m in 0..n_metrics {
        let width = systems[0].stats[m][0].len();
        for s in systems {
            if let Some(i) = s.stats[m].iter().position(|row| row.len() != width) {
                bail!(
                    "system {:?}, metric {m}, segment {i}: {} statistics, expected {width}",
                    s.name,
                    s.stats[m][i].len()
                );
            }
        }
    }
    Ok(n_segments)
}

/// One system prepared for testing: per metric, its statistics (as given and as float32)
/// and its actual corpus score.
struct System<'a> {
    metrics: &'a [&'a dyn Metric],
    stats: &'a [Vec<Stats>],
    stats_f32: Vec<StatsF32>,
    scores: Vec<f64>,
}

impl<'a> System<'a> {
    fn new(metrics: &'a [&'a dyn Metric], system: &'a SystemStats) -> Result<Self> {
        Ok(System {
            metrics,
            stats: &system.stats,
            stats_f32: system
                .stats
                .iter()
                .map(|s| StatsF32::new(s))
                .collect::<Result<_>>()?,
            scores: metrics
                .iter()
                .zip(&system.stats)
                .map(|(m, s)| m.compute(&sum_stats(s)).score)
                .collect(),
        })
    }

    /// The baseline row: its scores, plus the bootstrap estimate in paired bootstrap mode.
    fn results(
        &self,
        method: PairedMethod,
        n: usize,
        seed: Seed,
        n_segments: usize,
    ) -> Result<Vec<PairedResult>> {
        let estimates = match method {
            PairedMethod::Bootstrap => bootstrap_scores(&[self], n, seed, n_segments)?
                .remove(0)
                .into_iter()
                .map(|s| Some(numpy_estimate_ci(s)))
                .collect(),
            PairedMethod::ApproxRandomization => vec![None; self.metrics.len()],
        };
        Ok(self
            .scores
            .iter()
            .zip(estimates)
            .map(|(&score, est)| PairedResult {
                score,
                p_value: None,
                mean: est.map(|e| e.0),
                ci: est.map(|e| e.1),
            })
            .collect())
    }
}

/// Scores of every bootstrap resample, `[system][metric]`; all systems are resampled
/// with the same index rows (one generator, even when seeded from OS entropy).
fn bootstrap_scores(
    systems: &[&System],
    n: usize,
    seed: Seed,
    n_segments: usize,
) -> Result<Vec<Vec<Scores>>> {
    let n_metrics = systems[0].metrics.len();
    let mut samples = vec![vec![Vec::with_capacity(n); n_metrics]; systems.len()];
    for rows in IndexRows::new(seed, n_segments, n)? {
        for (system, per_metric) in systems.iter().zip(&mut samples) {
            for ((metric, stats), out) in
                system.metrics.iter().zip(&system.stats_f32).zip(per_metric)
            {
                stats.score_rows(*metric, &rows, n_segments, out);
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|s| s.into_iter().map(Scores::from_samples).collect())
        .collect())
}

/// sacrebleu's `significance.estimate_ci`: the numpy mean of the *sorted* scores (the
/// order matters to numpy's pairwise summation) and half of the 95% range.
fn numpy_estimate_ci(scores: Scores) -> (f64, f64) {
    let sorted = scores.sorted();
    let (lo, hi) = sorted.bounds();
    (np_mean(&sorted), sorted.half_range(lo, hi))
}

/// `_paired_bs_test` for one system: the same resamples for the baseline and the system.
fn paired_bs(
    bl: &System,
    sys: &System,
    n: usize,
    seed: Seed,
    n_segments: usize,
) -> Result<Vec<PairedResult>> {
    let mut scores = bootstrap_scores(&[bl, sys], n, seed, n_segments)?;
    let sys_scores = scores.pop().expect("two systems");
    let bl_scores = scores.pop().expect("two systems");
    let mut row = Vec::with_capacity(sys.metrics.len());
    for (m, (sys_s, bl_s)) in sys_scores.into_iter().zip(bl_scores).enumerate() {
        let diff = (bl.scores[m] - sys.scores[m]).abs();
        // sample_diffs = |sys - bl|; stats = sample_diffs - sample_diffs.mean()
        let sample_diffs = sys_s.abs_diff(&bl_s);
        let centred = sample_diffs.minus_scalar(np_mean(&sample_diffs));
        let (mean, ci) = numpy_estimate_ci(sys_s);
        row.push(PairedResult {
            score: sys.scores[m],
            p_value: Some(p_value(centred.count_greater(diff), n)),
            mean: Some(mean),
            ci: Some(ci),
        });
    }
    Ok(row)
}

/// `_paired_ar_test` for one system. In every trial pseudo-system A takes the baseline's
/// segment where the mask is set and the system's elsewhere, B the opposite. With
/// D = Σ_{mask} (bl − sys), A = Σsys + D and B = Σbl − D: numpy's two matrix products,
/// exact (hence identical) for the integer statistics of BLEU and chrF; for TER's
/// fractional average reference lengths numpy's BLAS summation order is not reproduced.
fn paired_ar(
    bl: &System,
    sys: &System,
    n: usize,
    seed: Seed,
    n_segments: usize,
) -> Result<Vec<PairedResult>> {
    let trials: Vec<ArTrials> = (0..sys.metrics.len())
        .map(|m| ArTrials::new(sys.metrics[m], &bl.stats[m], &sys.stats[m]))
        .collect();
    let mut counts = vec![0usize; trials.len()];
    for mask in MaskRows::new(seed, n_segments, n)? {
        for (m, (t, count)) in trials.iter().zip(&mut counts).enumerate() {
            let diff = (bl.scores[m] - sys.scores[m]).abs();
            *count += mask
                .par_chunks(n_segments)
                .map_init(
                    || vec![0f64; t.width],
                    |acc, sel| usize::from(t.difference(sel, acc) > diff),
                )
                .sum::<usize>();
        }
    }
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(m, count)| PairedResult {
            score: sys.scores[m],
            p_value: Some(p_value(count, n)),
            mean: None,
            ci: None,
        })
        .collect())
}

/// Approximate-randomization trials of one metric.
struct ArTrials<'a> {
    metric: &'a dyn Metric,
    width: usize,
    /// Segments whose statistics differ between baseline and system (swapping the
    /// others changes nothing).
    segments: Vec<usize>,
    /// Their `bl − sys`, flat.
    delta: Vec<f64>,
    bl_total: Stats,
    sys_total: Stats,
}

impl<'a> ArTrials<'a> {
    fn new(metric: &'a dyn Metric, bl: &[Stats], sys: &[Stats]) -> Self {
        let mut segments = Vec::new();
        let mut delta = Vec::new();
        for (i, (b, s)) in bl.iter().zip(sys).enumerate() {
            if b != s {
                segments.push(i);
                delta.extend(b.iter().zip(s).map(|(x, y)| x - y));
            }
        }
        ArTrials {
            metric,
            width: bl[0].len(),
            segments,
            delta,
            bl_total: sum_stats(bl),
            sys_total: sum_stats(sys),
        }
    }

    /// `|score(A) − score(B)|` of the trial with swap mask `sel`.
    fn difference(&self, sel: &[bool], acc: &mut Stats) -> f64 {
        acc.fill(0.0);
        for (&i, d) in self
            .segments
            .iter()
            .zip(self.delta.chunks_exact(self.width))
        {
            if sel[i] {
                for (a, x) in acc.iter_mut().zip(d) {
                    *a += x;
                }
            }
        }
        let a: Stats = self
            .sys_total
            .iter()
            .zip(acc.iter())
            .map(|(t, d)| t + d)
            .collect();
        let b: Stats = self
            .bl_total
            .iter()
            .zip(acc.iter())
            .map(|(t, d)| t - d)
            .collect();
        (self.metric.compute(&a).score - self.metric.compute(&b).score).abs()
    }
}

/// sacrebleu's `_compute_p_value`: `(count + 1) / (n + 1)`.
fn p_value(count: usize, n: usize) -> f64 {
    (count as f64 + 1.0) / (n as f64 + 1.0)
}
