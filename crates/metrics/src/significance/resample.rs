//! Resampling machinery: float32 statistics, and the bootstrap index matrix and the
//! approximate-randomization swap mask streamed a chunk of rows at a time (numpy draws the
//! whole `n × N` matrix at once; producing the same stream in pieces keeps memory bounded
//! for large corpora).

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::{SampleScore, Seed};
use crate::pcg64::{BoolFill, Pcg64};
use crate::{Metric, Stats};

/// Matrix cells (indices or mask bits) generated per chunk.
const CHUNK_CELLS: usize = 1 << 22;

/// Rows per chunk of at most `cells` cells for `n_segments` columns (at least one row).
fn chunk_rows(cells: usize, n_segments: usize) -> usize {
    (cells / n_segments.max(1)).max(1)
}

/// Segment statistics of one system as flat float32 rows (`rows × width`), the form
/// sacrebleu resamples.
pub(crate) struct StatsF32 {
    values: Vec<f32>,
    width: usize,
}

impl StatsF32 {
    pub(crate) fn new(stats: &[Stats]) -> Result<Self> {
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

    /// The metric's score on every resample in `rows` (`n_segments` indices each),
    /// appended to `out`.
    pub(crate) fn score_rows(
        &self,
        metric: &dyn Metric,
        rows: &[usize],
        n_segments: usize,
        out: &mut Vec<SampleScore>,
    ) {
        let scores: Vec<SampleScore> = rows
            .par_chunks(n_segments)
            .map_init(
                || vec![0f32; self.width],
                |buf, idx| {
                    self.resampled_sum(idx, buf);
                    metric.compute_f32(buf)
                },
            )
            .collect();
        out.extend(scores);
    }
}

/// The bootstrap index matrix `rng.choice(N, size=(n, N), replace=True)`, row-major,
/// produced a chunk of rows at a time.
pub(crate) struct IndexRows {
    rng: Pcg64,
    n_segments: usize,
    rows_left: usize,
    chunk_rows: usize,
}

impl IndexRows {
    pub(crate) fn new(seed: Seed, n_segments: usize, n_samples: usize) -> Result<Self> {
        Self::with_chunk_cells(seed, n_segments, n_samples, CHUNK_CELLS)
    }

    fn with_chunk_cells(
        seed: Seed,
        n_segments: usize,
        n_samples: usize,
        cells: usize,
    ) -> Result<Self> {
        Ok(IndexRows {
            rng: seed.rng()?,
            n_segments,
            rows_left: n_samples,
            chunk_rows: chunk_rows(cells, n_segments),
        })
    }
}

impl Iterator for IndexRows {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let rows = self.chunk_rows.min(self.rows_left);
        if rows == 0 {
            return None;
        }
        self.rows_left -= rows;
        Some(self.rng.choice(self.n_segments, rows * self.n_segments))
    }
}

/// The swap mask `rng.integers(2, size=(n, N), dtype=bool)`, row-major, produced a chunk
/// of rows at a time.
pub(crate) struct MaskRows {
    rng: Pcg64,
    fill: BoolFill,
    n_segments: usize,
    rows_left: usize,
    chunk_rows: usize,
}

impl MaskRows {
    pub(crate) fn new(seed: Seed, n_segments: usize, n_trials: usize) -> Result<Self> {
        Self::with_chunk_cells(seed, n_segments, n_trials, CHUNK_CELLS)
    }

    fn with_chunk_cells(
        seed: Seed,
        n_segments: usize,
        n_trials: usize,
        cells: usize,
    ) -> Result<Self> {
        Ok(MaskRows {
            rng: seed.rng()?,
            fill: BoolFill::default(),
            n_segments,
            rows_left: n_trials,
            chunk_rows: chunk_rows(cells, n_segments),
        })
    }
}

impl Iterator for MaskRows {
    type Item = Vec<bool>;

    fn next(&mut self) -> Option<Vec<bool>> {
        let rows = self.chunk_rows.min(self.rows_left);
        if rows == 0 {
            return None;
        }
        self.rows_left -= rows;
        let mut mask = vec![false; rows * self.n_segments];
        self.fill.fill(&mut self.rng, &mut mask);
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunked streams are the single numpy call, whatever the chunk size.
    #[test]
    fn chunks_concatenate_to_one_call() {
        let seed = Seed::Fixed(99);
        let whole_idx = Pcg64::new(99).choice(7, 30 * 7);
        let whole_mask = Pcg64::new(99).bools(30 * 7);
        for cells in [1, 7, 20, 64, 1000] {
            let idx: Vec<usize> = IndexRows::with_chunk_cells(seed, 7, 30, cells)
                .unwrap()
                .flatten()
                .collect();
            assert_eq!(idx, whole_idx, "chunk of {cells} cells");
            let mask: Vec<bool> = MaskRows::with_chunk_cells(seed, 7, 30, cells)
                .unwrap()
                .flatten()
                .collect();
            assert_eq!(mask, whole_mask, "chunk of {cells} cells");
        }
    }
}
