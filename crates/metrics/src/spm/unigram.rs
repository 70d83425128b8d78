//! Unigram segmentation: the Viterbi best path over piece log probabilities, as
//! SentencePiece 0.2.3's `unigram::Model::EncodeOptimized` computes it, in `f32`, with
//! its tie-breaking (an equal-scoring later candidate never replaces an earlier one)
//! and its re-basing of path scores that drift beyond ±100000.

use anyhow::{bail, Result};

use super::normalizer::first_char_len;
use super::proto::PieceType;
use super::trie::Trie;
use super::vocab::{Id, Vocab};

/// Penalty below the lowest piece score given to an unknown character.
const UNK_PENALTY: f32 = 10.0;

/// Path scores beyond this magnitude are re-based to zero.
const SCORE_RESET_THRESHOLD: f32 = 100_000.0;

/// A unigram model's lookup structures.
#[derive(Debug, Clone)]
pub(crate) struct Unigram {
    trie: Trie,
    min_score: f32,
}

/// The best path found so far to one byte position.
#[derive(Clone, Copy)]
struct Best {
    score: f32,
    /// Where the path's last piece starts; `None` while no path reaches here.
    start: Option<usize>,
    id: Id,
}

impl Unigram {
    /// Builds the piece trie (normal, user-defined and unused pieces) and the lowest
    /// normal score; like the reference, refuses NaN or infinite scores.
    pub(crate) fn new(vocab: &Vocab) -> Result<Self> {
        let mut min_score = f32::MAX;
        for (id, entry) in vocab.entries().iter().enumerate() {
            if !entry.score.is_finite() {
                bail!(
                    "piece {id} has the score {}, which is not finite",
                    entry.score
                );
            }
            if entry.kind == PieceType::Normal {
                min_score = min_score.min(entry.score);
            }
        }
        let trie = Trie::new(vocab.segmentable());
        if vocab.segmentable().next().is_none() {
            bail!("the model has no normal, user-defined or unused pieces");
        }
        Ok(Self { trie, min_score })
    }

    /// Segments a normalized line into `(piece, id)` pairs.
    pub(crate) fn encode<'a>(&self, vocab: &Vocab, text: &'a str) -> Vec<(&'a str, Id)> {
        let bytes = text.as_bytes();
        let unk_score = self.min_score - UNK_PENALTY;
        let unset = Best {
            score: 0.0,
            start: None,
            id: -1,
        };
        let mut best = vec![unset; bytes.len() + 1];
        let mut frontier = 0;
        let mut start = 0;
        while start < bytes.len() {
            let here = rebase(&mut best, start, frontier);
            let char_len = first_char_len(&text[start..]);
            let mut has_single = false;
            for (len, id) in self.trie.prefixes(&bytes[start..]) {
                let id = id as Id;
                let kind = vocab.kind(id);
                if kind == PieceType::Unused {
                    continue;
                }
                frontier = frontier.max(start + len);
                let score = if kind == PieceType::UserDefined {
                    (0.1 * (len as f64 - 1.0)) as f32
                } else {
                    vocab.score(id)
                };
                relax(&mut best[start + len], score + here, start, id);
                has_single |= len == char_len;
            }
            if !has_single {
                frontier = frontier.max(start + char_len);
                relax(
                    &mut best[start + char_len],
                    unk_score + here,
                    start,
                    vocab.unk_id(),
                );
            }
            start += char_len;
        }
        backtrack(text, &best)
    }
}

/// The best score at `start`, after re-basing every reached position up to
/// `frontier` when it has drifted beyond the threshold.
fn rebase(best: &mut [Best], start: usize, frontier: usize) -> f32 {
    let here = best[start].score;
    if (-SCORE_RESET_THRESHOLD..=SCORE_RESET_THRESHOLD).contains(&here) {
        return here;
    }
    for (i, b) in best.iter_mut().enumerate().take(frontier + 1).skip(start) {
        if i == start || b.start.is_some() {
            b.score -= here;
        }
    }
    0.0
}

/// Records a candidate path to a position when it beats the current one.
fn relax(slot: &mut Best, score: f32, start: usize, id: Id) {
    if slot.start.is_none() || score > slot.score {
        *slot = Best {
            score,
            start: Some(start),
            id,
        };
    }
}

/// Reads the best path back from the end of the line.
fn backtrack<'a>(text: &'a str, best: &[Best]) -> Vec<(&'a str, Id)> {
    let mut pieces = Vec::new();
    let mut end = text.len();
    while let Some(start) = best[end].start.filter(|_| end > 0) {
        pieces.push((&text[start..end], best[end].id));
        end = start;
    }
    pieces.reverse();
    pieces
}
