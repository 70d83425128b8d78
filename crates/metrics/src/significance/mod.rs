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
mod paired;
mod resample;

use anyhow::{bail, Context, Result};

use crate::pcg64::Pcg64;
use crate::pyfmt::Confidence;
use crate::{Metric, Stats};

pub use format::{fancy_grid, paired_json, paired_text};
use numeric::{fsum, Scores};
pub use paired::{paired_test, PairedMethod, PairedResult, PairedResults, SystemStats};
use resample::{IndexRows, StatsF32};

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
    let mut samples = Vec::with_capacity(n);
    for rows in IndexRows::new(seed, seg_stats.len(), n)? {
        stats.score_rows(metric, &rows, seg_stats.len(), &mut samples);
    }
    let scores = Scores::from_samples(samples).sorted();
    let (lo, hi) = scores.bounds();
    // `statistics.mean`: the exact mean, rounded to the scores' type.
    let mean = scores.round_to_type(fsum(&scores.as_f64()) / n as f64);
    Ok(Confidence {
        mean,
        ci: scores.half_range(lo, hi),
    })
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

    /// Three-reference TER averages (thirds) are inexact in float32, so this checks that
    /// resampled sums accumulate in numpy's order. Expected: sacrebleu 2.6.0,
    /// `_bootstrap_resample([[i % 7, (9 + 7i % 50) / 3] for i in range(300)], TER(), 1000)`
    /// then `Score.estimate_ci`.
    #[test]
    fn float32_sums_follow_numpy_order() {
        let ter = Ter::new(TerOptions::default());
        let stats: Vec<Stats> = (0..300)
            .map(|i| vec![(i % 7) as f64, (9 + (i * 7) % 50) as f64 / 3.0])
            .collect();
        let conf = bootstrap_ci(&ter, &stats, 1000, Seed::default()).unwrap();
        assert_eq!(
            (conf.mean, conf.ci),
            (26.795413970947266, 2.438488006591797)
        );
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
