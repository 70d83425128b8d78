//! The order of training: epochs of shuffled sequences cut into optimizer steps, each step's
//! sequences sorted by length into micro-batches.
//!
//! The whole plan is a pure function of the sequences, the batch sizes and the seed, so a run
//! resumed at step `k` consumes exactly the data an uninterrupted run would: the data position
//! is the step number. Sorting by length inside a step (length bucketing) keeps padding small
//! without changing the step's gradient, because the loss is normalised by the step's total
//! number of target tokens (see [`Step::target_tokens`]).

use anyhow::{ensure, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::sequences::Sequence;

/// Batch shape and length of training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchConfig {
    /// Sequences per optimizer step (effective batch).
    pub batch_size: usize,
    /// Sequences per forward/backward pass.
    pub micro_batch_size: usize,
    /// Passes over the data (ignored when `max_steps` is set).
    pub epochs: usize,
    /// Stop after this many optimizer steps, cycling epochs if needed.
    pub max_steps: Option<usize>,
    /// Shuffling seed.
    pub seed: u64,
}

/// One optimizer step: micro-batches of sequence indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Epoch this step belongs to (0-based).
    pub epoch: usize,
    /// Indices into the sequence list, one vector per micro-batch, longest first.
    pub micro_batches: Vec<Vec<usize>>,
    /// Target tokens (loss terms) over the whole step: HF's `num_items_in_batch`.
    pub target_tokens: usize,
}

/// Every optimizer step of a run, in order.
pub fn plan(seqs: &[Sequence], cfg: &BatchConfig) -> Result<Vec<Step>> {
    ensure!(!seqs.is_empty(), "no training sequences");
    ensure!(
        cfg.batch_size > 0 && cfg.micro_batch_size > 0,
        "batch sizes must be positive"
    );
    ensure!(
        cfg.max_steps.is_some() || cfg.epochs > 0,
        "--epochs must be positive"
    );
    let per_epoch = seqs.len().div_ceil(cfg.batch_size);
    let total = cfg.max_steps.unwrap_or(per_epoch * cfg.epochs);
    ensure!(total > 0, "--max-steps must be positive");
    let mut steps = Vec::with_capacity(total);
    for epoch in 0.. {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch_size) {
            if steps.len() == total {
                return Ok(steps);
            }
            steps.push(make_step(seqs, chunk, cfg.micro_batch_size, epoch));
        }
        if steps.len() == total {
            return Ok(steps);
        }
    }
    unreachable!("the epoch loop returns once `total` steps are planned")
}

fn make_step(seqs: &[Sequence], chunk: &[usize], micro: usize, epoch: usize) -> Step {
    let mut idx = chunk.to_vec();
    idx.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
    let target_tokens = idx.iter().map(|&i| seqs[i].target_len()).sum();
    let micro_batches = idx.chunks(micro).map(<[usize]>::to_vec).collect();
    Step {
        epoch,
        micro_batches,
        target_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(lens: &[usize]) -> Vec<Sequence> {
        lens.iter()
            .map(|&n| Sequence {
                ids: vec![7; n],
                prompt_len: 1,
                direction: "de-en".parse().unwrap(),
            })
            .collect()
    }

    fn cfg(batch_size: usize, micro_batch_size: usize, max_steps: Option<usize>) -> BatchConfig {
        BatchConfig {
            batch_size,
            micro_batch_size,
            epochs: 1,
            max_steps,
            seed: 42,
        }
    }

    #[test]
    fn one_epoch_covers_every_sequence_once_sorted_within_steps() {
        let s = seqs(&[3, 9, 4, 8, 5, 7, 6]);
        let p = plan(&s, &cfg(3, 2, None)).unwrap();
        assert_eq!(p.len(), 3);
        let mut all: Vec<usize> = p.iter().flat_map(|st| st.micro_batches.concat()).collect();
        all.sort();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        for st in &p {
            let lens: Vec<usize> = st
                .micro_batches
                .concat()
                .iter()
                .map(|&i| s[i].ids.len())
                .collect();
            assert!(lens.windows(2).all(|w| w[0] >= w[1]));
            assert_eq!(st.target_tokens, lens.iter().map(|l| l - 1).sum::<usize>());
        }
    }

    #[test]
    fn max_steps_cycles_epochs_and_is_reproducible() {
        let s = seqs(&[3, 4, 5, 6, 7]);
        let p = plan(&s, &cfg(2, 1, Some(7))).unwrap();
        assert_eq!(p.len(), 7);
        assert_eq!(
            p.iter().map(|st| st.epoch).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 2]
        );
        assert_eq!(p, plan(&s, &cfg(2, 1, Some(7))).unwrap());
        let other = plan(
            &s,
            &BatchConfig {
                seed: 7,
                ..cfg(2, 1, Some(7))
            },
        )
        .unwrap();
        assert_ne!(p, other);
    }
}
