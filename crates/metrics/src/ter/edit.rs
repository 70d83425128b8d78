//! Tercom-style edit distance with shifts, exactly as sacrebleu's `metrics/lib_ter.py`.
//!
//! Words are interned `u32` ids. The beam edit distance only fills a band of cells around
//! the (length-ratio) diagonal; every other cell stays "infinite". A row depends only on
//! the hypothesis prefix above it (all hypotheses of one call have the same length), so
//! sacrebleu's prefix cache is transparent; here the rows of the current hypothesis are
//! kept and every shift candidate recomputes only the rows below its common prefix.

/// Largest number of words moved by one shift.
const MAX_SHIFT_SIZE: usize = 10;
/// Largest distance between the matched hypothesis and reference positions.
const MAX_SHIFT_DIST: usize = 50;
/// Half-width of the band of cells filled around the diagonal.
const BEAM_WIDTH: usize = 25;
/// Shift candidates evaluated per sentence (cumulative over all shift rounds).
const MAX_SHIFT_CANDIDATES: usize = 1000;
/// Cost of a cell outside the band.
const INF: u32 = u32::MAX / 2;

/// Edit operation of a cell, from the hypothesis-to-reference point of view.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// Match.
    Nop,
    /// Substitution.
    Sub,
    /// Reference word inserted.
    Ins,
    /// Hypothesis word deleted.
    Del,
    /// Cell never filled.
    Undef,
}

/// `(number of edits, reference length)` of `hyp` against `reference`, as sacrebleu's
/// `translation_edit_rate`.
pub fn translation_edit_rate(hyp: &[u32], reference: &[u32]) -> (usize, usize) {
    if reference.is_empty() {
        return (hyp.len(), 0);
    }
    let mut ter = TerSearch::new(hyp, reference);
    let mut shifts = 0;
    let mut checked = 0;
    loop {
        let best = ter.best_shift(&mut checked);
        if checked >= MAX_SHIFT_CANDIDATES {
            break;
        }
        match best {
            Some(best) if best.gain > 0 => {
                shifts += 1;
                ter.apply(best);
            }
            _ => break,
        }
    }
    (shifts + ter.distance() as usize, reference.len())
}

/// A shift candidate, ranked as sacrebleu ranks them (gain, then length, then earliest
/// start, then earliest target).
#[derive(Clone, Copy, Debug)]
struct Candidate {
    gain: i64,
    length: usize,
    start: usize,
    target: usize,
}

impl Candidate {
    fn better_than(&self, other: &Candidate) -> bool {
        let key = |c: &Candidate| (c.gain, c.length, -(c.start as i64), -(c.target as i64));
        key(self) > key(other)
    }
}

/// Where each row's band of cells `[lo, hi)` lies in a flat matrix. Row 0 (the initial
/// row) is complete; the other rows hold only sacrebleu's beam, so memory grows with
/// `n_hyp × beam` rather than `n_hyp × n_ref`.
struct Bands {
    lo: Vec<usize>,
    hi: Vec<usize>,
    /// Offset of row `i` in the flat storage; `start[rows]` is the total size.
    start: Vec<usize>,
}

impl Bands {
    /// The bands sacrebleu derives from the length ratio.
    fn new(n_hyp: usize, n_ref: usize) -> Self {
        let ratio = if n_hyp > 0 {
            n_ref as f64 / n_hyp as f64
        } else {
            1.0
        };
        let beam = if (BEAM_WIDTH as f64) < ratio / 2.0 {
            (ratio / 2.0 + BEAM_WIDTH as f64).ceil() as i64
        } else {
            BEAM_WIDTH as i64
        };
        let mut b = Bands {
            lo: vec![0],
            hi: vec![n_ref + 1],
            start: vec![0, n_ref + 1],
        };
        for i in 1..=n_hyp {
            let diag = (i as f64 * ratio).floor() as i64;
            let lo = (diag - beam).max(0) as usize;
            let hi = if i == n_hyp {
                n_ref + 1
            } else {
                (diag + beam).clamp(0, n_ref as i64 + 1) as usize
            };
            let hi = hi.max(lo);
            b.lo.push(lo);
            b.hi.push(hi);
            b.start.push(b.start[i] + hi - lo);
        }
        b
    }

    /// The flat index of cell `(i, j)`, if it is in row `i`'s band.
    fn index(&self, i: usize, j: usize) -> Option<usize> {
        (self.lo[i] <= j && j < self.hi[i]).then(|| self.start[i] + j - self.lo[i])
    }

    /// Flat range of row `i`.
    fn row(&self, i: usize) -> std::ops::Range<usize> {
        self.start[i]..self.start[i + 1]
    }
}

/// Banded edit distance matrix (costs and operations), laid out by [`Bands`].
struct Matrix {
    cost: Vec<u32>,
    op: Vec<Op>,
}

impl Matrix {
    fn new(bands: &Bands) -> Self {
        let size = *bands.start.last().expect("bands have row 0");
        let mut m = Matrix {
            cost: vec![INF; size],
            op: vec![Op::Undef; size],
        };
        for j in bands.row(0) {
            m.cost[j] = j as u32;
            m.op[j] = Op::Ins;
        }
        m
    }
}

/// A band of the previous row, read as sacrebleu's full row (infinite outside the band).
#[derive(Clone, Copy)]
struct PrevRow<'a> {
    lo: usize,
    cost: &'a [u32],
}

impl PrevRow<'_> {
    fn at(&self, j: usize) -> u32 {
        j.checked_sub(self.lo)
            .and_then(|k| self.cost.get(k))
            .copied()
            .unwrap_or(INF)
    }
}

/// The search state for one hypothesis/reference pair.
struct TerSearch<'a> {
    reference: &'a [u32],
    /// Current (shifted) hypothesis.
    hyp: Vec<u32>,
    bands: Bands,
    /// Matrix of the current hypothesis, complete with operations.
    base: Matrix,
    /// Matrix rows of the candidate being scored.
    scratch: Matrix,
    /// Candidate hypothesis buffer.
    shifted: Vec<u32>,
}

impl<'a> TerSearch<'a> {
    fn new(hyp: &[u32], reference: &'a [u32]) -> Self {
        let bands = Bands::new(hyp.len(), reference.len());
        let mut search = TerSearch {
            reference,
            hyp: hyp.to_vec(),
            base: Matrix::new(&bands),
            scratch: Matrix::new(&bands),
            bands,
            shifted: Vec::with_capacity(hyp.len()),
        };
        search.recompute_base(0);
        search
    }

    /// Edit distance of the current hypothesis.
    fn distance(&self) -> u32 {
        *self.base.cost.last().expect("matrix has cells")
    }

    /// Recomputes the rows of the current hypothesis below row `from`.
    fn recompute_base(&mut self, from: usize) {
        let b = &self.bands;
        for i in from + 1..=self.hyp.len() {
            let (prev, cur) = self.base.cost.split_at_mut(b.start[i]);
            let prev = PrevRow {
                lo: b.lo[i - 1],
                cost: &prev[b.start[i - 1]..],
            };
            let len = b.hi[i] - b.lo[i];
            fill_row(
                self.hyp[i - 1],
                self.reference,
                b.lo[i],
                prev,
                &mut cur[..len],
                &mut self.base.op[b.row(i)],
            );
        }
    }

    /// Edit distance of `self.shifted`, which shares its first `prefix` words with the
    /// current hypothesis.
    fn candidate_distance(&mut self, prefix: usize) -> u32 {
        let n = self.shifted.len();
        if prefix == n {
            return self.distance();
        }
        let b = &self.bands;
        for i in prefix + 1..=n {
            let (prev_rows, cur) = self.scratch.cost.split_at_mut(b.start[i]);
            let prev = PrevRow {
                lo: b.lo[i - 1],
                cost: if i == prefix + 1 {
                    &self.base.cost[b.row(i - 1)]
                } else {
                    &prev_rows[b.start[i - 1]..]
                },
            };
            let len = b.hi[i] - b.lo[i];
            fill_row(
                self.shifted[i - 1],
                self.reference,
                b.lo[i],
                prev,
                &mut cur[..len],
                &mut self.scratch.op[b.row(i)],
            );
        }
        *self.scratch.cost.last().expect("matrix has cells")
    }

    /// A lower bound of the edit distance of any hypothesis that shares its first
    /// `prefix` words with the current one: every path crosses row `prefix` at a filled
    /// cell and then needs at least the remaining length difference in edits.
    fn distance_lower_bound(&self, prefix: usize) -> u32 {
        let (n_h, n_r) = (self.hyp.len(), self.reference.len());
        let b = &self.bands;
        let row = &self.base.cost[b.row(prefix)];
        (b.lo[prefix]..b.hi[prefix])
            .zip(row)
            .map(|(j, &c)| c.saturating_add((n_h - prefix).abs_diff(n_r - j) as u32))
            .min()
            .unwrap_or(INF)
    }

    /// Replaces the current hypothesis by the shift `c`.
    fn apply(&mut self, c: Candidate) {
        perform_shift(&self.hyp, c.start, c.length, c.target, &mut self.shifted);
        let prefix = common_prefix(&self.hyp, &self.shifted);
        std::mem::swap(&mut self.hyp, &mut self.shifted);
        self.recompute_base(prefix);
    }

    /// sacrebleu's `_shift`: the best shift of the current hypothesis, counting evaluated
    /// candidates in `checked`.
    fn best_shift(&mut self, checked: &mut usize) -> Option<Candidate> {
        let pre_score = self.distance() as i64;
        let (n_h, n_r) = (self.hyp.len(), self.reference.len());
        if pre_score <= n_h.abs_diff(n_r) as i64 {
            // No shift can gain (the distance never drops below the length difference),
            // so sacrebleu's search ends this round without shifting either way.
            return None;
        }
        let align = self.alignment();
        let hyp_err = prefix_sums(&align.hyp_err);
        let ref_err = prefix_sums(&align.ref_err);
        let mut best: Option<Candidate> = None;
        for start_h in 0..n_h {
            let r_lo = start_h.saturating_sub(MAX_SHIFT_DIST);
            let r_hi = (start_h + MAX_SHIFT_DIST + 1).min(n_r);
            for start_r in r_lo..r_hi {
                let mut length = 0;
                while length < MAX_SHIFT_SIZE
                    && start_h + length < n_h
                    && start_r + length < n_r
                    && self.hyp[start_h + length] == self.reference[start_r + length]
                {
                    length += 1;
                    if hyp_err[start_h + length] == hyp_err[start_h]
                        || ref_err[start_r + length] == ref_err[start_r]
                    {
                        continue;
                    }
                    let aligned = align.align[start_r];
                    if start_h as i64 <= aligned && aligned < (start_h + length) as i64 {
                        continue;
                    }
                    self.try_targets(
                        start_h,
                        start_r,
                        length,
                        pre_score,
                        &align.align,
                        checked,
                        &mut best,
                    );
                    if *checked >= MAX_SHIFT_CANDIDATES {
                        return best;
                    }
                }
            }
        }
        best
    }

    /// Scores every target position of the shift of `hyp[start_h..start_h+length]`
    /// (matching `reference[start_r..]`), keeping the best candidate in `best`.
    #[allow(clippy::too_many_arguments)]
    fn try_targets(
        &mut self,
        start_h: usize,
        start_r: usize,
        length: usize,
        pre_score: i64,
        align: &[i64],
        checked: &mut usize,
        best: &mut Option<Candidate>,
    ) {
        let mut prev_idx = None;
        for offset in -1..length as i64 {
            let r = start_r as i64 + offset;
            let idx = if r == -1 {
                0
            } else {
                (align[r as usize] + 1) as usize
            };
            if prev_idx == Some(idx) {
                continue;
            }
            prev_idx = Some(idx);
            perform_shift(&self.hyp, start_h, length, idx, &mut self.shifted);
            let prefix = common_prefix(&self.hyp, &self.shifted);
            *checked += 1;
            let mut cand = Candidate {
                gain: pre_score - self.distance_lower_bound(prefix) as i64,
                length,
                start: start_h,
                target: idx,
            };
            // Only candidates that could still beat the best one are scored exactly.
            if best.is_none_or(|b| cand.better_than(&b)) {
                cand.gain = pre_score - self.candidate_distance(prefix) as i64;
                if best.is_none_or(|b| cand.better_than(&b)) {
                    *best = Some(cand);
                }
            }
        }
    }

    /// sacrebleu's flipped trace turned into an alignment: for every reference position,
    /// the hypothesis position it aligns to, and the error flags of both sides.
    fn alignment(&self) -> Alignment {
        let (mut i, mut j) = (self.hyp.len(), self.reference.len());
        let mut trace = Vec::with_capacity(i + j);
        while i > 0 || j > 0 {
            let op = self
                .bands
                .index(i, j)
                .map_or(Op::Undef, |k| self.base.op[k]);
            trace.push(op);
            match op {
                Op::Nop | Op::Sub => {
                    i -= 1;
                    j -= 1;
                }
                Op::Ins => j -= 1,
                Op::Del => i -= 1,
                Op::Undef => {
                    debug_assert!(false, "trace reached an unfilled cell");
                    break;
                }
            }
        }
        let mut a = Alignment {
            align: Vec::with_capacity(self.reference.len()),
            hyp_err: Vec::with_capacity(self.hyp.len()),
            ref_err: Vec::with_capacity(self.reference.len()),
        };
        let mut pos_hyp: i64 = -1;
        // Flipped: an insertion of a reference word becomes a deletion and vice versa.
        for &op in trace.iter().rev() {
            match op {
                Op::Nop | Op::Sub => {
                    let err = u32::from(op == Op::Sub);
                    pos_hyp += 1;
                    a.align.push(pos_hyp);
                    a.hyp_err.push(err);
                    a.ref_err.push(err);
                }
                Op::Del => {
                    pos_hyp += 1;
                    a.hyp_err.push(1);
                }
                Op::Ins => {
                    a.align.push(pos_hyp);
                    a.ref_err.push(1);
                }
                Op::Undef => {}
            }
        }
        a
    }
}

/// Alignment of the current hypothesis to the reference.
struct Alignment {
    align: Vec<i64>,
    hyp_err: Vec<u32>,
    ref_err: Vec<u32>,
}

/// Cumulative sums with a leading zero.
fn prefix_sums(v: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(0);
    let mut acc = 0;
    for &x in v {
        acc += x;
        out.push(acc);
    }
    out
}

/// Number of leading words `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Fills the band of one matrix row (columns `lo..lo + cost.len()`) for hypothesis word
/// `word`; cells outside the band are infinite, as in sacrebleu's pre-filled rows.
fn fill_row(
    word: u32,
    reference: &[u32],
    lo: usize,
    prev: PrevRow,
    cost: &mut [u32],
    op: &mut [Op],
) {
    for k in 0..cost.len() {
        let j = lo + k;
        if j == 0 {
            cost[0] = prev.at(0) + 1;
            op[0] = Op::Del;
            continue;
        }
        let (sub_cost, sub_op) = if word == reference[j - 1] {
            (0, Op::Nop)
        } else {
            (1, Op::Sub)
        };
        let left = if k > 0 { cost[k - 1] } else { INF };
        // sacrebleu's preference order: match/substitution, deletion, insertion.
        let mut best = (INF, Op::Undef);
        for (c, o) in [
            (prev.at(j - 1) + sub_cost, sub_op),
            (prev.at(j) + 1, Op::Del),
            (left + 1, Op::Ins),
        ] {
            if best.0 > c {
                best = (c, o);
            }
        }
        cost[k] = best.0;
        op[k] = best.1;
    }
}

/// sacrebleu's `_perform_shift` (with Python slice clipping) into `out`.
fn perform_shift(words: &[u32], start: usize, length: usize, target: usize, out: &mut Vec<u32>) {
    let n = words.len();
    let s = |a: usize, b: usize| &words[a.min(n)..b.min(n).max(a.min(n))];
    out.clear();
    if target < start {
        out.extend_from_slice(s(0, target));
        out.extend_from_slice(s(start, start + length));
        out.extend_from_slice(s(target, start));
        out.extend_from_slice(s(start + length, n));
    } else if target > start + length {
        out.extend_from_slice(s(0, start));
        out.extend_from_slice(s(start + length, target));
        out.extend_from_slice(s(start, start + length));
        out.extend_from_slice(s(target, n));
    } else {
        out.extend_from_slice(s(0, start));
        out.extend_from_slice(s(start + length, length + target));
        out.extend_from_slice(s(start, start + length));
        out.extend_from_slice(s(length + target, n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<u32> {
        s.split_whitespace()
            .map(|w| {
                w.bytes()
                    .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            })
            .collect()
    }

    #[test]
    fn identical_and_empty() {
        assert_eq!(translation_edit_rate(&ids("a b c"), &ids("a b c")), (0, 3));
        assert_eq!(translation_edit_rate(&ids(""), &ids("a b c")), (3, 3));
        assert_eq!(translation_edit_rate(&ids("a b"), &ids("")), (2, 0));
    }

    #[test]
    fn one_shift_fixes_a_moved_block() {
        // One shift of "d e" is cheaper than four substitutions.
        assert_eq!(
            translation_edit_rate(&ids("d e a b c"), &ids("a b c d e")),
            (1, 5)
        );
    }

    #[test]
    fn python_slice_semantics_of_shifts() {
        let w = [0, 1, 2, 3, 4];
        let mut out = Vec::new();
        perform_shift(&w, 3, 2, 0, &mut out);
        assert_eq!(out, [3, 4, 0, 1, 2]);
        perform_shift(&w, 0, 2, 4, &mut out);
        assert_eq!(out, [2, 3, 0, 1, 4]);
        perform_shift(&w, 1, 2, 3, &mut out);
        assert_eq!(out, [0, 3, 4, 1, 2]);
        perform_shift(&w, 2, 2, 4, &mut out);
        assert_eq!(out, [0, 1, 4, 2, 3]);
    }

    /// Word ids from the LCG `x = (x·1103515245 + 12345) mod 2³¹`, `(x >> 16) mod vocab`:
    /// the reference first, then the hypothesis.
    fn lcg_pair(seed: u64, n_ref: usize, n_hyp: usize, vocab: u64) -> (Vec<u32>, Vec<u32>) {
        let mut x = seed;
        let mut next = || {
            x = (x * 1103515245 + 12345) % (1 << 31);
            ((x >> 16) % vocab) as u32
        };
        let reference: Vec<u32> = (0..n_ref).map(|_| next()).collect();
        let hyp: Vec<u32> = (0..n_hyp).map(|_| next()).collect();
        (hyp, reference)
    }

    /// Expected values from sacrebleu 2.6.0's `lib_ter.translation_edit_rate` on the same
    /// LCG word streams (`str(id)` words). The comments give the number of shift candidates
    /// sacrebleu checked: the cases at ≥ 1000 stop at the cap, (3, 150, 2) and (4, 3, 160)
    /// need the widened beam.
    #[test]
    fn matches_sacrebleu_on_synthetic_pairs() {
        for (seed, n_ref, n_hyp, vocab, expected) in [
            (1, 120, 110, 8, 83),   // 1000 candidates
            (2, 80, 90, 5, 52),     // 1001
            (3, 150, 2, 4, 148),    // 0
            (4, 3, 160, 3, 157),    // 0
            (5, 60, 60, 30, 49),    // 1001
            (6, 40, 45, 12, 26),    // 578
            (7, 400, 380, 50, 367), // 1001
        ] {
            let (hyp, reference) = lcg_pair(seed, n_ref, n_hyp, vocab);
            assert_eq!(
                translation_edit_rate(&hyp, &reference),
                (expected, n_ref),
                "seed {seed}"
            );
        }
    }
}
