//! Scoring hypothesis files against one source (and reference) set: every distinct sentence
//! of any role is tokenized and embedded once, in batches of similar length (sorted, each
//! padded only to its own longest row), then the estimator runs per hypothesis file.

use anyhow::{bail, ensure, Result};
use std::collections::HashMap;

use crate::model::Comet;

/// Segment scores of one hypothesis file and their mean, as `predict` returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemScore {
    /// One score per segment, in input order.
    pub scores: Vec<f64>,
    /// Mean of the scores, summed in COMET's order (segments sorted by source length).
    pub system_score: f64,
}

/// Rows per estimator call.
const ESTIMATOR_CHUNK: usize = 256;

/// Scores every file of `hyps` against `src` and (for reference-based models) `refs`;
/// `batch_size` sentences go through the encoder at a time.
pub fn score(
    model: &Comet,
    src: &[String],
    refs: Option<&[String]>,
    hyps: &[Vec<String>],
    batch_size: usize,
) -> Result<Vec<SystemScore>> {
    ensure!(batch_size > 0, "the batch size must be positive");
    ensure!(!src.is_empty(), "no source segments to score");
    match (model.needs_references(), refs) {
        (true, None) => bail!("this COMET model needs references (-r)"),
        (false, Some(_)) => bail!("this COMET model is reference-free: drop -r"),
        (_, Some(r)) => ensure!(
            r.len() == src.len(),
            "{} references for {} sources",
            r.len(),
            src.len()
        ),
        _ => {}
    }
    for (i, h) in hyps.iter().enumerate() {
        ensure!(
            h.len() == src.len(),
            "hypothesis file {} has {} segments for {} sources",
            i + 1,
            h.len(),
            src.len()
        );
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    let src_ids: Vec<usize> = src
        .iter()
        .map(|s| intern(&mut index, &mut unique, s))
        .collect();
    let ref_ids: Option<Vec<usize>> = refs.map(|r| {
        r.iter()
            .map(|s| intern(&mut index, &mut unique, s))
            .collect()
    });
    let hyp_ids: Vec<Vec<usize>> = hyps
        .iter()
        .map(|h| {
            h.iter()
                .map(|s| intern(&mut index, &mut unique, s))
                .collect()
        })
        .collect();
    let emb = embed_all(model, &unique, batch_size)?;
    let order = comet_order(src);
    hyp_ids
        .iter()
        .map(|mt| {
            let rows: Vec<_> = (0..src.len())
                .map(|i| {
                    let r = ref_ids.as_ref().map(|r| emb[r[i]].as_slice());
                    (emb[mt[i]].as_slice(), emb[src_ids[i]].as_slice(), r)
                })
                .collect();
            let mut scores = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(ESTIMATOR_CHUNK) {
                scores.extend(model.estimate(chunk)?.into_iter().map(f64::from));
            }
            let total: f64 = order.iter().map(|&i| scores[i]).sum();
            Ok(SystemScore {
                system_score: total / scores.len() as f64,
                scores,
            })
        })
        .collect()
}

fn intern<'a>(index: &mut HashMap<&'a str, usize>, unique: &mut Vec<&'a str>, s: &'a str) -> usize {
    *index.entry(s).or_insert_with(|| {
        unique.push(s);
        unique.len() - 1
    })
}

/// Embeddings of `sentences`, longest first in batches of `batch_size`.
fn embed_all(model: &Comet, sentences: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let ids = model.tokenize(sentences)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let mut out = vec![Vec::new(); ids.len()];
    for chunk in order.chunks(batch_size) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        for (&i, e) in chunk.iter().zip(model.embed_batch(&batch)?) {
            out[i] = e;
        }
    }
    Ok(out)
}

/// The order `predict` sums scores in: sources sorted by length in characters.
fn comet_order(src: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..src.len()).collect();
    order.sort_by_key(|&i| src[i].chars().count());
    order
}
