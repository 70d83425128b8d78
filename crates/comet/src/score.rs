//! Scoring hypothesis files against one source (and reference) set: every distinct sentence
//! of any role is tokenized and embedded once, in batches of similar length (sorted by
//! length), then the estimator runs per hypothesis file.
//!
//! An [`EmbeddingCache`] carries the embeddings from one call to the next, keyed by text:
//! systems scored one after another on the same test set (a pipeline's base, multilingual,
//! DAT and DATM outputs) embed its sources and references once. A sentence's embedding does
//! not depend on the batch it was computed in, so cached and fresh scores are the same.

use anyhow::{bail, ensure, Result};
use std::collections::HashMap;
use std::sync::Arc;

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

/// Bytes an entry costs besides its embedding and text (map slot, counters, allocations).
const ENTRY_OVERHEAD: usize = 96;

/// Sentence embeddings kept across scoring calls, keyed by text, within a memory bound:
/// after a call leaves more than `max_bytes` cached, the least recently used embeddings are
/// dropped down to three quarters of it (a call's own sentences are the last to go).
#[derive(Debug)]
pub struct EmbeddingCache {
    entries: HashMap<String, Entry>,
    max_bytes: usize,
    bytes: usize,
    clock: u64,
    embedded: usize,
    reused: usize,
}

#[derive(Debug)]
struct Entry {
    embedding: Arc<[f32]>,
    /// The call that last used it.
    used: u64,
}

impl EmbeddingCache {
    /// An empty cache that holds at most about `max_bytes` between calls.
    pub fn new(max_bytes: usize) -> Self {
        EmbeddingCache {
            entries: HashMap::new(),
            max_bytes,
            bytes: 0,
            clock: 0,
            embedded: 0,
            reused: 0,
        }
    }

    /// Sentences the encoder has embedded for this cache's calls (each distinct text once
    /// while it stays cached).
    pub fn embedded(&self) -> usize {
        self.embedded
    }

    /// Distinct sentences of calls that were found here instead of embedded.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Sentences cached now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the cached embeddings and texts take, about.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The embeddings of `sentences` (distinct), from the cache or embedded by `model` (in
    /// batches of `batch_size`, each reported to `progress`) and cached; then the cache is
    /// trimmed to its bound.
    fn embeddings(
        &mut self,
        model: &Comet,
        sentences: &[&str],
        batch_size: usize,
        progress: Progress,
    ) -> Result<Vec<Arc<[f32]>>> {
        self.clock += 1;
        let mut out: Vec<Option<Arc<[f32]>>> = Vec::with_capacity(sentences.len());
        let mut missing = Vec::new();
        for (i, s) in sentences.iter().enumerate() {
            match self.entries.get_mut(*s) {
                Some(e) => {
                    e.used = self.clock;
                    out.push(Some(e.embedding.clone()));
                }
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        self.reused += sentences.len() - missing.len();
        let texts: Vec<&str> = missing.iter().map(|&i| sentences[i]).collect();
        for (&i, embedding) in missing
            .iter()
            .zip(embed_all(model, &texts, batch_size, progress)?)
        {
            let embedding: Arc<[f32]> = embedding.into();
            self.bytes += entry_bytes(sentences[i], &embedding);
            self.entries.insert(
                sentences[i].to_string(),
                Entry {
                    embedding: embedding.clone(),
                    used: self.clock,
                },
            );
            out[i] = Some(embedding);
        }
        self.embedded += missing.len();
        self.trim();
        Ok(out.into_iter().map(|e| e.expect("filled above")).collect())
    }

    /// Drops the least recently used entries down to 3/4 of the bound once it is exceeded.
    fn trim(&mut self) {
        if self.bytes <= self.max_bytes {
            return;
        }
        let mut by_age: Vec<(u64, String)> = self
            .entries
            .iter()
            .map(|(k, e)| (e.used, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age {
            if self.bytes <= self.max_bytes / 4 * 3 {
                break;
            }
            if let Some(e) = self.entries.remove(&key) {
                self.bytes -= entry_bytes(&key, &e.embedding);
            }
        }
    }
}

fn entry_bytes(text: &str, embedding: &[f32]) -> usize {
    text.len() + std::mem::size_of_val(embedding) + ENTRY_OVERHEAD
}

/// Told how far the encoder is, after each batch: `(sentences embedded, sentences to embed)`
/// in this call (the distinct sentences not found in the cache).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Scores every file of `hyps` against `src` and (for reference-based models) `refs`;
/// `batch_size` sentences (or more, [`Comet::min_batch_tokens`]) go through the encoder at
/// a time.
pub fn score(
    model: &Comet,
    src: &[String],
    refs: Option<&[String]>,
    hyps: &[Vec<String>],
    batch_size: usize,
) -> Result<Vec<SystemScore>> {
    score_cached(
        model,
        &mut EmbeddingCache::new(usize::MAX),
        src,
        refs,
        hyps,
        batch_size,
        &mut |_, _| {},
    )
}

/// [`score`], taking the embeddings of sentences already in `cache` from there and
/// leaving the new ones in it, and reporting the encoder's work to `progress`.
pub fn score_cached(
    model: &Comet,
    cache: &mut EmbeddingCache,
    src: &[String],
    refs: Option<&[String]>,
    hyps: &[Vec<String>],
    batch_size: usize,
    progress: Progress,
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
    let emb = cache.embeddings(model, &unique, batch_size, progress)?;
    let order = comet_order(src);
    hyp_ids
        .iter()
        .map(|mt| {
            let rows: Vec<_> = (0..src.len())
                .map(|i| {
                    let r = ref_ids.as_ref().map(|r| &emb[r[i]][..]);
                    (&emb[mt[i]][..], &emb[src_ids[i]][..], r)
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

/// Embeddings of `sentences`, longest first in batches of `batch_size` sentences or more
/// ([`batches`], [`Comet::min_batch_tokens`]), each reported to `progress`.
fn embed_all(
    model: &Comet,
    sentences: &[&str],
    batch_size: usize,
    progress: Progress,
) -> Result<Vec<Vec<f32>>> {
    if sentences.is_empty() {
        return Ok(Vec::new());
    }
    let ids = model.tokenize(sentences)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let mut out = vec![Vec::new(); ids.len()];
    let mut done = 0;
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    for chunk in batches(&order, &lens, batch_size, model.min_batch_tokens()) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        for (&i, e) in chunk.iter().zip(model.embed_batch(&batch)?) {
            out[i] = e;
        }
        done += chunk.len();
        progress(done, ids.len());
    }
    Ok(out)
}

/// `order` cut into batches in order, each of `batch_size` sentences or more, extended
/// until its sentences (of `lens[i]` tokens) hold `min_tokens` tokens (the last batch
/// takes what is left).
fn batches<'a>(
    order: &'a [usize],
    lens: &[usize],
    batch_size: usize,
    min_tokens: usize,
) -> Vec<&'a [usize]> {
    let mut out = Vec::new();
    let mut rest = order;
    while !rest.is_empty() {
        let (mut take, mut tokens) = (0, 0);
        while take < rest.len() && (take < batch_size || tokens < min_tokens) {
            tokens += lens[rest[take]];
            take += 1;
        }
        let (batch, tail) = rest.split_at(take);
        out.push(batch);
        rest = tail;
    }
    out
}

/// The order `predict` sums scores in: sources sorted by length in characters.
fn comet_order(src: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..src.len()).collect();
    order.sort_by_key(|&i| src[i].chars().count());
    order
}

#[cfg(test)]
mod tests {
    use super::batches;

    /// Batches keep the order, hold `batch_size` sentences or more, and grow until they
    /// hold the minimum of tokens; the last takes the rest.
    #[test]
    fn batches_grow_to_the_minimum_of_tokens() {
        let order = [3, 0, 1, 2, 4];
        let lens = [5, 4, 3, 9, 1];
        assert_eq!(
            batches(&order, &lens, 2, 0),
            [&[3, 0][..], &[1, 2][..], &[4][..]]
        );
        assert_eq!(batches(&order, &lens, 1, 12), [&[3, 0][..], &[1, 2, 4][..]]);
        assert_eq!(
            batches(&order, &lens, 1, 9),
            [&[3][..], &[0, 1][..], &[2, 4][..]]
        );
        assert_eq!(batches(&order, &lens, 4, 1), [&[3, 0, 1, 2][..], &[4][..]]);
        assert!(batches(&[], &lens, 4, 100).is_empty());
    }
}
