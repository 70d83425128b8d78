//! Bootstrap confidence intervals, paired bootstrap resampling and approximate
//! randomization, reproducing sacrebleu's `significance.py` (numpy PCG64 streams included).
//!
//! sacrebleu resamples segment statistics converted to float32; under numpy 2 the metric
//! formulas then run in float32 arithmetic and chrF/TER return float32 scores (BLEU returns
//! a Python float). [`crate::Metric::compute_f32`] reproduces each metric's behaviour, and
//! the means, intervals and p-values here follow numpy's dtype rules and its pairwise
//! summation, so the printed numbers are sacrebleu's.

mod format;
mod numeric;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::pcg64::Pcg64;
use crate::pyfmt::Confidence;
use crate::{Metric, Stats};

pub use format::{fancy_grid, paired_json, paired_text};
use numeric::{fsum, np_mean, Scores};

/// Default number of bootstrap resamples (`-ci`, `--paired-bs`).
pub const DEFAULT_BOOTSTRAP: usize = 1000;
/// Default number of approximate-randomization trials (`--paired-ar`).
pub const DEFAULT_AR_TRIALS: usize = 10000;

/// The score of one resample, with the numeric type sacrebleu's formula produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleScore {
    /// A Python float.
    F64(f64),
    /// A numpy float32.
    F32(f32),
}

/// The resampling seed, with the semantics of sacrebleu's `SACREBLEU_SEED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// `np.random.default_rng(value)`.
    Fixed(u64),
    /// `np.random.default_rng(None)`: fresh OS entropy.
    Os,
}

impl Default for Seed {
    fn default() -> Self {
        Seed::Fixed(12345)
    }
}

impl Seed {
    /// Parses a `SACREBLEU_SEED` value: a non-negative integer, or `none` (any case).
    pub fn parse(s: &str) -> Result<Seed> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Seed::Os);
        }
        s.trim().parse().map(Seed::Fixed).with_context(|| {
            format!("invalid seed {s:?}: expected a non-negative integer or `none`")
        })
    }

    /// The seed from the `SACREBLEU_SEED` environment variable (default 12345).
    pub fn from_env() -> Result<Seed> {
        match std::env::var("SACREBLEU_SEED") {
            Ok(v) => Seed::parse(&v).context("SACREBLEU_SEED"),
            Err(_) => Ok(Seed::default()),
        }
    }

    /// The value sacrebleu prints in signatures (`seed:12345`, `seed:none`).
    pub fn label(&self) -> String {
        match self {
            Seed::Fixed(v) => v.to_string(),
            Seed::Os => "none".to_string(),
        }
    }

    /// A fresh generator.
    fn rng(&self) -> Result<Pcg64> {
        match self {
            Seed::Fixed(v) => Ok(Pcg64::new(u128::from(*v))),
            Seed::Os => {
                Pcg64::from_os_entropy().context("reading OS entropy for the resampling seed")
            }
        }
    }

    /// The seed sacrebleu hands to each compared system: `seed if seed else None`, so a
    /// seed of 0 means OS entropy there.
    fn for_systems(self) -> Seed {
        match self {
            Seed::Fixed(0) => Seed::Os,
            s => s,
        }
    }
}

/// Segment statistics of one system as flat float32 rows (`rows × width`), the form
/// sacrebleu resamples.
struct StatsF32 {
    values: Vec<f32>,
    width: usize,
}

impl StatsF32 {
    fn new(stats: &[Stats]) -> Result<Self> {
        let width = stats.first().map_or(0, Vec::len);
        if stats.is_empty() || width == 0 {
            bail!("resampling needs at least one segment with statistics");
        }
        if stats.iter().any(|s| s.len() != width) {
            bail!("segment statistics have different lengths");
        }
        Ok(StatsF32 {
            values: stats.iter().flatten().map(|&v| v as f32).collect(),
            width,
        })
    }

    /// `stats[idx].sum(0)` in float32, accumulated in index order as numpy does.
    fn resampled_sum(&self, idx: &[usize], out: &mut [f32]) {
        out.fill(0.0);
        for &i in idx {
            let row = &self.values[i * self.width..(i + 1) * self.width];
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    }

    /// The metric's score on every resample (rows of `idxs`, `n_segments` indices each).
    fn resampled_scores(&self, metric: &dyn Metric, idxs: &[usize], n_segments: usize) -> Scores {
        let scores: Vec<SampleScore> = idxs
            .par_chunks(n_segments)
            .map_init(
                || vec![0f32; self.width],
                |buf, idx| {
                    self.resampled_sum(idx, buf);
                    metric.compute_f32(buf)
                },
            )
            .collect();
        Scores::from_samples(scores)
    }
}

/// The bootstrap index matrix, `rng.choice(N, size=(n, N), replace=True)`, row-major.
fn bootstrap_indices(rng: &mut Pcg64, n_segments: usize, n_samples: usize) -> Vec<usize> {
    rng.choice(n_segments, n_samples * n_segments)
}

/// sacrebleu's `-ci`: the bootstrap mean and 95% half-interval of one system's score,
/// from its segment statistics (`corpus_score(..., n_bootstrap=n)` with `Score.estimate_ci`).
pub fn bootstrap_ci(
    metric: &dyn Metric,
    seg_stats: &[Stats],
    n: usize,
    seed: Seed,
) -> Result<Confidence> {
    if n < 2 {
        bail!("bootstrap resampling needs at least 2 samples (got {n})");
    }
    let stats = StatsF32::new(seg_stats)?;
    let idxs = bootstrap_indices(&mut seed.rng()?, seg_stats.len(), n);
    let scores = stats
        .resampled_scores(metric, &idxs, seg_stats.len())
        .sorted();
    let (lo, hi) = scores.bounds();
    // `statistics.mean`: the exact mean, rounded to the scores' type.
    let mean = scores.round_to_type(fsum(&scores.as_f64()) / n as f64);
    Ok(Confidence {
        mean,
        ci: scores.half_range(lo, hi),
    })
}

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
/// bootstrap estimate (paired bootstrap only) uses `seed`; the systems use
/// `seed` too, except that sacrebleu turns a seed of 0 into OS entropy for them.
pub fn paired_test(
    metrics: &[&dyn Metric],
    systems: &[SystemStats],
    method: PairedMethod,
    n: usize,
    seed: Seed,
) -> Result<PairedResults> {
    let n = if n > 0 { n } else { method.default_samples() };
    let Some(baseline) = systems.first() else {
        bail!("paired tests need a baseline system");
    };
    if systems.len() < 2 {
        bail!("paired tests require at least one system besides the baseline");
    }
    let n_segments = check_shapes(metrics.len(), systems)?;
    let bl_scores: Vec<f64> = metrics
        .iter()
        .zip(&baseline.stats)
        .map(|(m, s)| m.compute(&crate::sum_stats(s)).score)
        .collect();

    let mut results = vec![baseline_results(
        metrics, baseline, &bl_scores, method, n, seed,
    )?];
    for system in &systems[1..] {
        let mut rng = seed.for_systems().rng()?;
        let row = match method {
            PairedMethod::Bootstrap => {
                let idxs = bootstrap_indices(&mut rng, n_segments, n);
                paired_bs_system(metrics, baseline, system, &bl_scores, &idxs, n_segments)?
            }
            PairedMethod::ApproxRandomization => {
                let mask = rng.bools(n * n_segments);
                paired_ar_system(metrics, baseline, system, &bl_scores, &mask, n_segments)
            }
        };
        results.push(row);
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

/// The baseline row: its scores, plus the bootstrap estimate in paired bootstrap mode.
fn baseline_results(
    metrics: &[&dyn Metric],
    baseline: &SystemStats,
    bl_scores: &[f64],
    method: PairedMethod,
    n: usize,
    seed: Seed,
) -> Result<Vec<PairedResult>> {
    let n_segments = baseline.stats[0].len();
    let mut row = Vec::with_capacity(metrics.len());
    for ((metric, stats), &score) in metrics.iter().zip(&baseline.stats).zip(bl_scores) {
        let mut r = PairedResult {
            score,
            p_value: None,
            mean: None,
            ci: None,
        };
        if method == PairedMethod::Bootstrap {
            let idxs = bootstrap_indices(&mut seed.rng()?, n_segments, n);
            let scores = StatsF32::new(stats)?.resampled_scores(*metric, &idxs, n_segments);
            let (mean, ci) = numpy_estimate_ci(scores);
            r.mean = Some(mean);
            r.ci = Some(ci);
        }
        row.push(r);
    }
    Ok(row)
}

/// sacrebleu's `significance.estimate_ci`: the numpy mean of the *sorted* scores (the
/// order matters to numpy's pairwise summation) and half of the 95% range.
fn numpy_estimate_ci(scores: Scores) -> (f64, f64) {
    let sorted = scores.sorted();
    let (lo, hi) = sorted.bounds();
    (np_mean(&sorted), sorted.half_range(lo, hi))
}

/// `_paired_bs_test` for one system.
fn paired_bs_system(
    metrics: &[&dyn Metric],
    baseline: &SystemStats,
    system: &SystemStats,
    bl_scores: &[f64],
    idxs: &[usize],
    n_segments: usize,
) -> Result<Vec<PairedResult>> {
    let mut row = Vec::with_capacity(metrics.len());
    for (m, metric) in metrics.iter().enumerate() {
        let score = metric.compute(&crate::sum_stats(&system.stats[m])).score;
        let sys = StatsF32::new(&system.stats[m])?.resampled_scores(*metric, idxs, n_segments);
        let bl = StatsF32::new(&baseline.stats[m])?.resampled_scores(*metric, idxs, n_segments);
        let diff = (bl_scores[m] - score).abs();
        let (mean, ci) = numpy_estimate_ci(sys.clone());
        // sample_diffs = |sys - bl|; stats = sample_diffs - sample_diffs.mean()
        let sample_diffs = sys.abs_diff(&bl);
        let centred = sample_diffs.minus_scalar(np_mean(&sample_diffs));
        let count = centred.count_greater(diff);
        row.push(PairedResult {
            score,
            p_value: Some(p_value(count, centred.len())),
            mean: Some(mean),
            ci: Some(ci),
        });
    }
    Ok(row)
}

/// `_paired_ar_test` for one system. `mask[t * n_segments + i]` selects the baseline's
/// segment `i` for pseudo-system A in trial `t` (and the system's for B).
fn paired_ar_system(
    metrics: &[&dyn Metric],
    baseline: &SystemStats,
    system: &SystemStats,
    bl_scores: &[f64],
    mask: &[bool],
    n_segments: usize,
) -> Vec<PairedResult> {
    let mut row = Vec::with_capacity(metrics.len());
    for (m, metric) in metrics.iter().enumerate() {
        let (bl, sys) = (&baseline.stats[m], &system.stats[m]);
        let score = metric.compute(&crate::sum_stats(sys)).score;
        let diff = (bl_scores[m] - score).abs();
        let width = bl[0].len();
        let count = mask
            .par_chunks(n_segments)
            .map_init(
                || {
                    [
                        vec![0f64; width],
                        vec![0f64; width],
                        vec![0f64; width],
                        vec![0f64; width],
                    ]
                },
                |[bl_sel, sys_rest, bl_rest, sys_sel], sel| {
                    for acc in [&mut *bl_sel, &mut *sys_rest, &mut *bl_rest, &mut *sys_sel] {
                        acc.fill(0.0);
                    }
                    for (i, &pick_bl) in sel.iter().enumerate() {
                        if pick_bl {
                            add_into(bl_sel, &bl[i]);
                            add_into(sys_sel, &sys[i]);
                        } else {
                            add_into(sys_rest, &sys[i]);
                            add_into(bl_rest, &bl[i]);
                        }
                    }
                    // A = mask @ bl + ~mask @ sys; B = ~mask @ bl + mask @ sys
                    let a: Vec<f64> = bl_sel
                        .iter()
                        .zip(sys_rest.iter())
                        .map(|(x, y)| x + y)
                        .collect();
                    let b: Vec<f64> = bl_rest
                        .iter()
                        .zip(sys_sel.iter())
                        .map(|(x, y)| x + y)
                        .collect();
                    let delta = (metric.compute(&a).score - metric.compute(&b).score).abs();
                    usize::from(delta > diff)
                },
            )
            .sum();
        row.push(PairedResult {
            score,
            p_value: Some(p_value(count, mask.len() / n_segments)),
            mean: None,
            ci: None,
        });
    }
    row
}

fn add_into(acc: &mut [f64], v: &[f64]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a += x;
    }
}

/// sacrebleu's `_compute_p_value`: `(count + 1) / (n + 1)`.
fn p_value(count: usize, n: usize) -> f64 {
    (count as f64 + 1.0) / (n as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ter::{Ter, TerOptions};

    /// TER statistics `[i % 4, 3 + 7i % 11]` (baseline) and `[3i % 5, 3 + 7i % 11]`
    /// (system) for 25 segments.
    fn toy_stats() -> (Vec<Stats>, Vec<Stats>) {
        let ref_len = |i: usize| (3 + (i * 7) % 11) as f64;
        let bl = (0..25).map(|i| vec![(i % 4) as f64, ref_len(i)]).collect();
        let sys = (0..25)
            .map(|i| vec![((i * 3) % 5) as f64, ref_len(i)])
            .collect();
        (bl, sys)
    }

    /// Expected values from sacrebleu 2.6.0 / numpy 2.4.6 on the same statistics:
    /// `_bootstrap_resample(stats, TER(), 200)` then `Score.estimate_ci`, and
    /// `PairedTest(..., test_type='bs', n_samples=200)` / `('ar', 500)` with the metric's
    /// `_extract_corpus_statistics` returning these statistics.
    #[test]
    fn toy_example_matches_sacrebleu() {
        let ter = Ter::new(TerOptions::default());
        let (bl, sys) = toy_stats();
        let conf = bootstrap_ci(&ter, &bl, 200, Seed::default()).unwrap();
        assert_eq!((conf.mean, conf.ci), (18.298954010009766, 5.65482234954834));

        let systems = [
            SystemStats {
                name: "Baseline: b".into(),
                stats: vec![bl],
            },
            SystemStats {
                name: "s".into(),
                stats: vec![sys],
            },
        ];
        let bs = paired_test(
            &[&ter],
            &systems,
            PairedMethod::Bootstrap,
            200,
            Seed::default(),
        )
        .unwrap();
        let want_bl = PairedResult {
            score: 18.461538461538463,
            p_value: None,
            mean: Some(18.298954010009766),
            ci: Some(5.65482234954834),
        };
        let want_sys = PairedResult {
            score: 25.64102564102564,
            p_value: Some(0.05472636815920398),
            mean: Some(25.933637619018555),
            ci: Some(7.444516181945801),
        };
        assert_eq!(bs.results, vec![vec![want_bl], vec![want_sys]]);

        let ar = paired_test(
            &[&ter],
            &systems,
            PairedMethod::ApproxRandomization,
            500,
            Seed::default(),
        )
        .unwrap();
        assert_eq!(ar.results[0][0].p_value, None);
        assert_eq!(ar.results[0][0].mean, None);
        assert_eq!(ar.results[1][0].p_value, Some(0.09780439121756487));
    }

    #[test]
    fn seeds_follow_sacrebleu_seed_semantics() {
        assert_eq!(Seed::parse("12345").unwrap(), Seed::Fixed(12345));
        assert_eq!(Seed::parse("None").unwrap(), Seed::Os);
        assert_eq!(Seed::Os.label(), "none");
        assert_eq!(Seed::default().label(), "12345");
        assert!(Seed::parse("-3").is_err());
        assert!(Seed::parse("abc").is_err());
        assert_eq!(Seed::Fixed(0).for_systems(), Seed::Os);
    }

    #[test]
    fn bad_input_is_an_error() {
        let ter = Ter::new(TerOptions::default());
        assert!(bootstrap_ci(&ter, &[], 100, Seed::default()).is_err());
        assert!(bootstrap_ci(&ter, &[vec![1.0, 2.0], vec![1.0]], 100, Seed::default()).is_err());
        let one = SystemStats {
            name: "Baseline: b".into(),
            stats: vec![vec![vec![1.0, 2.0]]],
        };
        assert!(paired_test(
            &[&ter],
            std::slice::from_ref(&one),
            PairedMethod::Bootstrap,
            10,
            Seed::default()
        )
        .is_err());
        let short = SystemStats {
            name: "s".into(),
            stats: vec![vec![]],
        };
        assert!(paired_test(
            &[&ter],
            &[one, short],
            PairedMethod::Bootstrap,
            10,
            Seed::default()
        )
        .is_err());
    }
}
