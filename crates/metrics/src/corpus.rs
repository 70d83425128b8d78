//! Corpus and sentence scoring shared by all metrics: parallel per-segment statistics,
//! summed in segment order as sacrebleu does.

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::{Metric, NRefs, Score, Stats};

/// Statistics of every segment, computed in parallel. `refs[i]` holds the references of
/// segment `i` (any number, which may vary between segments).
pub fn corpus_stats<H, R>(metric: &dyn Metric, hyps: &[H], refs: &[Vec<R>]) -> Result<Vec<Stats>>
where
    H: AsRef<str> + Sync,
    R: AsRef<str> + Sync,
{
    if hyps.len() != refs.len() {
        bail!(
            "System and reference streams have different lengths ({} hypotheses, {} reference segments).",
            hyps.len(),
            refs.len()
        );
    }
    hyps.par_iter()
        .zip(refs.par_iter())
        .enumerate()
        .map(|(i, (h, r))| {
            let r: Vec<&str> = r.iter().map(AsRef::as_ref).collect();
            metric
                .segment_stats(h.as_ref(), &r)
                .with_context(|| format!("segment {}", i + 1))
        })
        .collect()
}

/// The element-wise sum of segment statistics, added in segment order.
pub fn sum_stats(stats: &[Stats]) -> Stats {
    let mut total = match stats.first() {
        Some(s) => vec![0.0; s.len()],
        None => return Stats::new(),
    };
    for s in stats {
        for (t, v) in total.iter_mut().zip(s) {
            *t += v;
        }
    }
    total
}

/// The corpus score: the metric's formula on the summed segment statistics.
pub fn corpus_score<H, R>(metric: &dyn Metric, hyps: &[H], refs: &[Vec<R>]) -> Result<Score>
where
    H: AsRef<str> + Sync,
    R: AsRef<str> + Sync,
{
    if hyps.is_empty() {
        bail!("no hypotheses to score");
    }
    Ok(metric.compute(&sum_stats(&corpus_stats(metric, hyps, refs)?)))
}

/// The score of one segment against its references (the same path as a corpus of one).
pub fn sentence_score(metric: &dyn Metric, hyp: &str, refs: &[&str]) -> Result<Score> {
    Ok(metric.compute(&metric.segment_stats(hyp, refs)?))
}

/// The `nrefs` signature value: the common reference count, or `var` if it varies.
pub fn nrefs_of<R>(refs: &[Vec<R>]) -> NRefs {
    let first = refs.first().map_or(0, Vec::len);
    if refs.iter().all(|r| r.len() == first) {
        NRefs::Fixed(first)
    } else {
        NRefs::Var
    }
}
