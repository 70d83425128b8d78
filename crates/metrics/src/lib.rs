//! sacreBLEU-exact metrics: BLEU, chrF/chrF++ and TER, with confidence intervals and
//! paired significance tests.
//!
//! As in sacrebleu, every metric turns one segment (a hypothesis and its references) into
//! *sufficient statistics*, a fixed-length vector of numbers; a corpus score is the
//! metric's formula applied to the element-wise sum of the segment statistics. Corpus
//! scores, sentence scores and bootstrap resampling all share that one path.
//!
//! ```
//! use datm_metrics::{corpus_score, Bleu, BleuOptions};
//! let bleu = Bleu::new(BleuOptions::default()).unwrap();
//! let hyps = ["The dog bit the man."];
//! let refs = [vec!["The dog bit the man."]];
//! assert_eq!(corpus_score(&bleu, &hyps, &refs).unwrap().score.round(), 100.0);
//! ```

// The one exception: the MeCab dictionary is memory-mapped (`mecab::dictionary`).
#![deny(unsafe_code)]

pub mod bleu;
pub mod chrf;
mod corpus;
pub mod mecab;
mod ngrams;
mod npnum;
pub mod pcg64;
pub mod pyfmt;
#[cfg(test)]
mod readme_example;
pub mod signature;
pub mod significance;
pub mod spm;
pub mod ter;
pub mod text;
pub mod tokenizers;

use anyhow::Result;

pub use bleu::{Bleu, BleuOptions, SmoothMethod};
pub use chrf::{Chrf, ChrfOptions};
pub use corpus::{corpus_score, corpus_stats, nrefs_of, sentence_score, sum_stats};
pub use signature::{NRefs, Signature, SIGNATURE_VERSION};
pub use tokenizers::Tokenizer;

/// Sufficient statistics of one segment (or the sum over many).
pub type Stats = Vec<f64>;

/// A final score with everything needed to print it the way sacrebleu does.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Metric name as sacrebleu prints it (`BLEU`, `chrF2`, `chrF2++`, `TER`).
    pub name: String,
    /// The score (0–100 for BLEU/chrF; TER may exceed 100).
    pub score: f64,
    /// Text after the rounded score in sacrebleu's verbose line, e.g. BLEU's
    /// `82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`;
    /// empty for metrics that print nothing more.
    pub verbose_tail: String,
}

/// A sacrebleu metric, defined by its per-segment statistics and its formula.
pub trait Metric: Send + Sync {
    /// Metric name as sacrebleu prints it.
    fn name(&self) -> String;

    /// Statistics of one segment. `refs` holds this segment's references (one or more).
    /// Fails only where the reference tool fails on the text (a MeCab path-cost overflow).
    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Result<Stats>;

    /// The score from statistics summed over segments.
    fn compute(&self, stats: &[f64]) -> Score;

    /// The signature without the `nrefs`/`bs`/`ar`/`seed` prefix and without `version`,
    /// as ordered `(long key, short key, value)` fields, e.g.
    /// `[("case","c","mixed"), ("eff","e","no"), ("tok","tok","13a"), ("smooth","s","exp")]`.
    fn signature_fields(&self) -> Vec<(&'static str, &'static str, String)>;

    /// Whether a lower score is better (TER).
    fn lower_is_better(&self) -> bool {
        false
    }

    /// The score sacrebleu's bootstrap resampling gets from statistics summed in float32:
    /// under numpy 2 its formulas keep numpy float32 arithmetic, and chrF/TER then return
    /// a float32 score. The default converts to f64 and applies [`Metric::compute`];
    /// metrics whose sacrebleu formula is affected override it.
    fn compute_f32(&self, stats: &[f32]) -> significance::SampleScore {
        let stats: Vec<f64> = stats.iter().map(|&x| f64::from(x)).collect();
        significance::SampleScore::F64(self.compute(&stats).score)
    }
}
