//! Paired bootstrap significance of per-direction deltas, from the stored segment
//! statistics (BLEU, chrF) and segment scores (COMET), with
//! [`datm_metrics::significance::paired_test`].
//!
//! BLEU and chrF need only their formulas here: the statistics were computed at scoring
//! time (with whatever tokenizer the target language needed), so the default `Bleu` (13a:
//! no tokenizer resources) and `Chrf` recompute corpus scores from summed statistics. A
//! stored score that its statistics do not reproduce (other metric options) is not tested.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use datm_metrics::significance::{paired_test, PairedMethod, Seed, SystemStats};
use datm_metrics::{sum_stats, Bleu, BleuOptions, Chrf, ChrfOptions, Metric, Score, Stats};
use datm_results::Output;

use crate::metric::MetricKind;
use crate::SignificanceSettings;

/// The significance level of the marks: p < 0.05.
pub const ALPHA: f64 = 0.05;

/// COMET as a sacrebleu-style metric: a segment's statistics are `[score, 1]`, and the
/// corpus score is their mean (COMET's system score).
pub(crate) struct MeanScore;

impl Metric for MeanScore {
    fn name(&self) -> String {
        "COMET".to_string()
    }

    fn segment_stats(&self, _hyp: &str, _refs: &[&str]) -> Result<Stats> {
        bail!("COMET segment scores come from the results store")
    }

    fn compute(&self, stats: &[f64]) -> Score {
        let score = match stats {
            [sum, n] if *n > 0.0 => sum / n,
            _ => 0.0,
        };
        Score {
            name: self.name(),
            score,
            verbose_tail: String::new(),
        }
    }

    fn signature_fields(&self) -> Vec<(&'static str, &'static str, String)> {
        Vec::new()
    }
}

/// Runs the paired tests of a report.
pub(crate) struct Tester {
    bleu: Bleu,
    chrf: Chrf,
    comet: MeanScore,
    samples: usize,
    seed: u64,
}

impl Tester {
    /// A tester with `samples` resamples (0: no tests) and `seed`.
    pub fn new(samples: usize, seed: u64) -> Result<Tester> {
        Ok(Tester {
            bleu: Bleu::new(BleuOptions::default())?,
            chrf: Chrf::new(ChrfOptions::default())?,
            comet: MeanScore,
            samples,
            seed,
        })
    }

    /// The settings as the report states them.
    pub fn settings(&self) -> SignificanceSettings {
        SignificanceSettings {
            test: "paired bootstrap resampling (sacrebleu --paired-bs)".to_string(),
            samples: self.samples,
            seed: self.seed,
            alpha: ALPHA,
        }
    }

    /// The metric that recomputes `kind`'s corpus score from statistics.
    pub fn metric(&self, kind: MetricKind) -> &dyn Metric {
        match kind {
            MetricKind::Comet => &self.comet,
            MetricKind::Bleu => &self.bleu,
            MetricKind::Chrf => &self.chrf,
        }
    }

    /// The p-value of `system` against `reference` for each metric of `metrics` (none
    /// where not tested: tests off, different test sets, statistics missing or not
    /// reproducing the stored score). Why a metric went untested is counted in `issues`.
    pub fn p_values(
        &self,
        metrics: &[MetricKind],
        reference: &Output,
        system: &Output,
        issues: &mut Issues,
    ) -> Result<Vec<Option<f64>>> {
        let mut out = vec![None; metrics.len()];
        if self.samples == 0 {
            return Ok(out);
        }
        if reference.test_set.hash() != system.test_set.hash() {
            issues.add("the test sets differ in content (sources or references)");
            return Ok(out);
        }
        if reference.hypotheses == system.hypotheses {
            // sacrebleu counts resampled differences strictly above the observed one, so
            // two equal outputs (0 everywhere) would get p = 1/(n+1): "significant".
            issues.add(
                "identical outputs (no difference to test; e.g. DATM's En→XX adapters are DAT's)",
            );
            return Ok(out);
        }
        let (mut tested, mut kinds) = (Vec::new(), Vec::new());
        let (mut ref_stats, mut sys_stats) = (Vec::new(), Vec::new());
        for (i, &m) in metrics.iter().enumerate() {
            let Some(r) = self.checked_stats(m, reference, issues) else {
                continue;
            };
            let Some(s) = self.checked_stats(m, system, issues) else {
                continue;
            };
            tested.push(i);
            kinds.push(self.metric(m));
            ref_stats.push(r);
            sys_stats.push(s);
        }
        if tested.is_empty() {
            return Ok(out);
        }
        let systems = [
            SystemStats {
                name: "Baseline: reference".to_string(),
                stats: ref_stats,
            },
            SystemStats {
                name: "system".to_string(),
                stats: sys_stats,
            },
        ];
        let seed = Seed::Fixed(self.seed);
        let res = paired_test(
            &kinds,
            &systems,
            PairedMethod::Bootstrap,
            self.samples,
            seed,
        )?;
        for (j, &i) in tested.iter().enumerate() {
            out[i] = res.results[1][j].p_value;
        }
        Ok(out)
    }

    /// The segment statistics of `kind` in `output`, when stored and reproducing the
    /// stored corpus score.
    fn checked_stats(
        &self,
        kind: MetricKind,
        output: &Output,
        issues: &mut Issues,
    ) -> Option<Vec<Stats>> {
        let score = output.score(kind.key())?;
        let Some(stats) = segment_stats(kind, score) else {
            issues.add(&format!("{} has no segment statistics", kind.label()));
            return None;
        };
        if stats.is_empty() {
            issues.add("an output has no segments");
            return None;
        }
        let again = self.metric(kind).compute(&sum_stats(&stats)).score;
        if (again - score.score).abs() > 1e-6 * score.score.abs().max(1.0) {
            issues.add(&format!(
                "the stored {} score is not what its segment statistics give (other metric options?)",
                kind.label()
            ));
            return None;
        }
        Some(stats)
    }
}

/// Per-segment statistics of one metric score: BLEU/chrF's stored statistics, COMET's
/// segment scores as `[score, 1]`.
pub(crate) fn segment_stats(
    kind: MetricKind,
    score: &datm_results::MetricScore,
) -> Option<Vec<Stats>> {
    match kind {
        MetricKind::Comet => score
            .segments
            .as_ref()
            .map(|s| s.iter().map(|&x| vec![x, 1.0]).collect()),
        MetricKind::Bleu | MetricKind::Chrf => score.stats.clone(),
    }
}

/// Reasons a delta went untested, with how often each occurred.
#[derive(Debug, Default)]
pub(crate) struct Issues(BTreeMap<String, usize>);

impl Issues {
    /// Counts one occurrence of `why`.
    pub fn add(&mut self, why: &str) {
        *self.0.entry(why.to_string()).or_default() += 1;
    }

    /// One note per reason.
    pub fn notes(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(why, n)| format!("Not tested for significance ({n}×): {why}."))
            .collect()
    }
}
