//! TER (translation edit rate), exactly as sacrebleu's `metrics/ter.py`: tercom tokenization,
//! tercom-style edit distance with shifts, the minimum number of edits over the references
//! and the average reference length.
//!
//! Segment statistics are `[edits, average reference length]`; the score is
//! `100 · Σedits / Σref_len`, 100 when the references are empty but edits are needed,
//! 0 when both are empty.

mod edit;
mod tokenizer;

use std::collections::HashMap;

use anyhow::Result;

pub use edit::translation_edit_rate;
pub use tokenizer::TercomTokenizer;

use crate::significance::SampleScore;
use crate::text::{py_rstrip, py_split};
use crate::{Metric, Score, Stats};

/// TER options, named as sacrebleu's `TER(...)` arguments (all off by default, so TER
/// lowercases unless `case_sensitive`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TerOptions {
    /// Normalize punctuation, XML entities and line breaks (`--ter-normalized`).
    pub normalized: bool,
    /// Remove punctuation (`--ter-no-punct`).
    pub no_punct: bool,
    /// Split CJK characters (with `normalized`) and drop CJK punctuation (with
    /// `no_punct`) (`--ter-asian-support`).
    pub asian_support: bool,
    /// Keep case (`--ter-case-sensitive`).
    pub case_sensitive: bool,
}

/// The TER metric.
pub struct Ter {
    opts: TerOptions,
    tokenizer: TercomTokenizer,
}

impl Ter {
    /// TER with the given options.
    pub fn new(opts: TerOptions) -> Self {
        Ter {
            opts,
            tokenizer: TercomTokenizer::new(opts),
        }
    }

    /// The options this metric was built with.
    pub fn options(&self) -> TerOptions {
        self.opts
    }

    /// sacrebleu's segment preprocessing: strip trailing whitespace, then tokenize.
    pub fn preprocess(&self, sent: &str) -> String {
        self.tokenizer.tokenize(py_rstrip(sent))
    }

    /// `(edits, reference length)` of one tokenized hypothesis against one tokenized
    /// reference (tokens separated by single spaces).
    pub fn edits(hyp: &str, reference: &str) -> (usize, usize) {
        let mut vocab = Vocab::default();
        let h = vocab.ids(hyp);
        let r = vocab.ids(reference);
        translation_edit_rate(&h, &r)
    }
}

/// Word interning for one segment.
#[derive(Default)]
struct Vocab<'a> {
    ids: HashMap<&'a str, u32>,
}

impl<'a> Vocab<'a> {
    fn ids(&mut self, tokenized: &'a str) -> Vec<u32> {
        py_split(tokenized)
            .map(|w| {
                let next = self.ids.len() as u32;
                *self.ids.entry(w).or_insert(next)
            })
            .collect()
    }
}

/// The TER formula on `[Σedits, Σref_len]`.
fn ter_formula(edits: f64, ref_len: f64) -> f64 {
    let ratio = if ref_len > 0.0 {
        edits / ref_len
    } else if edits > 0.0 {
        1.0
    } else {
        0.0
    };
    100.0 * ratio
}

impl Metric for Ter {
    fn name(&self) -> String {
        "TER".to_string()
    }

    /// `[min edits over refs, average ref length]`. A segment without references is
    /// scored like one with an empty reference (sacrebleu divides by zero there).
    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Result<Stats> {
        let hyp = self.preprocess(hyp);
        let refs: Vec<String> = refs.iter().map(|r| self.preprocess(r)).collect();
        let mut vocab = Vocab::default();
        let hyp_ids = vocab.ids(&hyp);
        if refs.is_empty() {
            return Ok(vec![hyp_ids.len() as f64, 0.0]);
        }
        let mut best = usize::MAX;
        let mut ref_lengths = 0usize;
        for r in &refs {
            let (edits, len) = translation_edit_rate(&hyp_ids, &vocab.ids(r));
            ref_lengths += len;
            best = best.min(edits);
        }
        Ok(vec![best as f64, ref_lengths as f64 / refs.len() as f64])
    }

    fn compute(&self, stats: &[f64]) -> Score {
        Score {
            name: self.name(),
            score: ter_formula(stats[0], stats[1]),
            verbose_tail: String::new(),
        }
    }

    /// sacrebleu under numpy 2 divides the float32 sums in float32: `f32(100 · f32(e/r))`;
    /// its zero-reference branches yield Python floats.
    fn compute_f32(&self, stats: &[f32]) -> SampleScore {
        let (edits, ref_len) = (stats[0], stats[1]);
        if ref_len > 0.0 {
            SampleScore::F32(100.0 * (edits / ref_len))
        } else {
            SampleScore::F64(ter_formula(edits.into(), 0.0))
        }
    }

    fn signature_fields(&self) -> Vec<(&'static str, &'static str, String)> {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let o = self.opts;
        vec![
            (
                "case",
                "c",
                if o.case_sensitive { "mixed" } else { "lc" }.to_string(),
            ),
            ("tok", "t", "tercom".to_string()),
            ("norm", "nr", yes_no(o.normalized)),
            ("punct", "pn", yes_no(!o.no_punct)),
            ("asian", "as", yes_no(o.asian_support)),
        ]
    }

    fn lower_is_better(&self) -> bool {
        true
    }
}
