//! The task-vector merge definitions of PEFT's `utils/merge_utils.py`, on flat f32 tensors.
//!
//! Every function works on one tensor (or one stack of same-shaped tensors, one per adapter) given as
//! flat row-major slices; pruning is per tensor, as in PEFT. Arithmetic is f32 in PEFT's order of
//! operations so results agree with PyTorch to rounding.

use anyhow::{bail, Result};
use rand::Rng;

/// How TIES elects the sign of each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MajoritySign {
    /// sign(Σᵢ Tᵢ): the sign with the larger total mass.
    #[default]
    Total,
    /// sign(Σᵢ sign(Tᵢ)): the sign held by more adapters.
    Frequency,
}

impl MajoritySign {
    /// Parses PEFT's name (`total`, `frequency`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "total" => MajoritySign::Total,
            "frequency" => MajoritySign::Frequency,
            _ => bail!("unknown majority-sign method {name:?} (total, frequency)"),
        })
    }
}

/// Checks a pruning density: it must lie in [0, 1]; 1 means "no pruning" (as in PEFT).
pub fn check_density(density: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&density) {
        bail!("density must be in [0, 1] (1 keeps every entry), got {density}");
    }
    Ok(())
}

/// Keeps the `int(density·len)` entries of largest magnitude and zeroes the rest (PEFT
/// `magnitude_based_pruning`). Ties at the threshold are kept in index order. `density ≥ 1` keeps all.
pub fn prune_magnitude(t: &mut [f32], density: f64) {
    if density >= 1.0 {
        return;
    }
    let k = (density * t.len() as f64) as usize;
    if k == 0 {
        t.fill(0.0);
        return;
    }
    let mut mags: Vec<f32> = t.iter().map(|v| v.abs()).collect();
    let (_, kth, _) = mags.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let threshold = *kth;
    let above = t.iter().filter(|v| v.abs() > threshold).count();
    let mut ties_left = k - above;
    for v in t.iter_mut() {
        let m = v.abs();
        if m > threshold {
            continue;
        }
        if m == threshold && ties_left > 0 {
            ties_left -= 1;
            continue;
        }
        *v = 0.0;
    }
}

/// DARE's random pruning: keeps each entry with probability `density` and divides the kept ones by
/// `density`, so the expectation is unchanged. (PEFT ≤ 0.18 dropped the rescale by mistake; this is
/// the corrected definition of PEFT ≥ 0.19.) `density ≥ 1` keeps all, unscaled.
pub fn prune_random(t: &mut [f32], density: f64, rng: &mut impl Rng) {
    if density >= 1.0 {
        return;
    }
    let inv = 1.0 / density as f32;
    for v in t.iter_mut() {
        *v = if rng.gen_bool(density) { *v * inv } else { 0.0 };
    }
}

/// The elected sign (±1) of every entry of a stack of tensors: a total (or vote count) ≥ 0 elects +1.
pub fn majority_sign(tensors: &[Vec<f32>], method: MajoritySign) -> Vec<f32> {
    let len = tensors.first().map_or(0, Vec::len);
    (0..len)
        .map(|j| {
            let total: f32 = match method {
                MajoritySign::Total => tensors.iter().map(|t| t[j]).sum(),
                MajoritySign::Frequency => tensors.iter().map(|t| sign(t[j])).sum(),
            };
            if total >= 0.0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// PEFT's `disjoint_merge` on weighted tensors: per entry, Σᵢ wᵢTᵢ over the adapters whose *unweighted*
/// entry has the elected sign (zeros never agree), divided by how many agree (at least 1).
pub fn disjoint_merge(tensors: &[Vec<f32>], weights: &[f32], elected: &[f32]) -> Vec<f32> {
    elected
        .iter()
        .enumerate()
        .map(|(j, &s)| {
            let mut sum = 0f32;
            let mut count = 0f32;
            for (t, &w) in tensors.iter().zip(weights) {
                if sign(t[j]) == s {
                    sum += t[j] * w;
                    count += 1.0;
                }
            }
            sum / count.max(1.0)
        })
        .collect()
}

/// Task arithmetic (PEFT `linear`): Σᵢ wᵢTᵢ.
pub fn task_arithmetic(tensors: &[Vec<f32>], weights: &[f32]) -> Vec<f32> {
    let len = tensors.first().map_or(0, Vec::len);
    (0..len)
        .map(|j| tensors.iter().zip(weights).map(|(t, &w)| t[j] * w).sum())
        .collect()
}

/// TIES: magnitude-prune each tensor, elect signs on the unweighted pruned tensors, weighted disjoint merge.
pub fn ties(
    mut tensors: Vec<Vec<f32>>,
    weights: &[f32],
    density: f64,
    method: MajoritySign,
) -> Vec<f32> {
    tensors.iter_mut().for_each(|t| prune_magnitude(t, density));
    let elected = majority_sign(&tensors, method);
    disjoint_merge(&tensors, weights, &elected)
}

/// DARE-TIES: random pruning with rescale, then TIES' sign election and disjoint merge.
/// `rngs[i]` drives the mask of tensor `i`.
pub fn dare_ties<R: Rng>(
    mut tensors: Vec<Vec<f32>>,
    weights: &[f32],
    density: f64,
    method: MajoritySign,
    rngs: &mut [R],
) -> Vec<f32> {
    tensors
        .iter_mut()
        .zip(rngs)
        .for_each(|(t, rng)| prune_random(t, density, rng));
    let elected = majority_sign(&tensors, method);
    disjoint_merge(&tensors, weights, &elected)
}

/// DARE-linear: random pruning with rescale, then Σᵢ wᵢTᵢ. `rngs[i]` drives the mask of tensor `i`.
pub fn dare_linear<R: Rng>(
    mut tensors: Vec<Vec<f32>>,
    weights: &[f32],
    density: f64,
    rngs: &mut [R],
) -> Vec<f32> {
    tensors
        .iter_mut()
        .zip(rngs)
        .for_each(|(t, rng)| prune_random(t, density, rng));
    task_arithmetic(&tensors, weights)
}

/// Magnitude pruning then Σᵢ wᵢTᵢ (PEFT `magnitude_prune`).
pub fn magnitude_prune(mut tensors: Vec<Vec<f32>>, weights: &[f32], density: f64) -> Vec<f32> {
    tensors.iter_mut().for_each(|t| prune_magnitude(t, density));
    task_arithmetic(&tensors, weights)
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn magnitude_pruning_keeps_top_k_per_tensor() {
        let mut t = vec![0.1, -3.0, 2.0, -0.5, 1.0];
        prune_magnitude(&mut t, 0.5); // int(2.5) = 2 entries
        assert_eq!(t, vec![0.0, -3.0, 2.0, 0.0, 0.0]);
        let mut t = vec![1.0, -1.0, 1.0];
        prune_magnitude(&mut t, 0.34); // int(1.02) = 1, ties kept in index order
        assert_eq!(t, vec![1.0, 0.0, 0.0]);
        let mut t = vec![1.0, 2.0];
        prune_magnitude(&mut t, 0.4); // int(0.8) = 0
        assert_eq!(t, vec![0.0, 0.0]);
        let mut t = vec![1.0, 2.0];
        prune_magnitude(&mut t, 1.0);
        assert_eq!(t, vec![1.0, 2.0]);
    }

    #[test]
    fn random_pruning_rescales_by_one_over_density() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = vec![2.0f32; 20_000];
        prune_random(&mut t, 0.25, &mut rng);
        let kept: Vec<f32> = t.iter().copied().filter(|&v| v != 0.0).collect();
        assert!(kept.iter().all(|&v| v == 8.0), "kept entries are 2/0.25");
        let frac = kept.len() as f64 / t.len() as f64;
        assert!((frac - 0.25).abs() < 0.02, "keep rate {frac}");
        let mean: f64 = t.iter().map(|&v| v as f64).sum::<f64>() / t.len() as f64;
        assert!((mean - 2.0).abs() < 0.15, "expectation preserved: {mean}");
    }

    #[test]
    fn majority_sign_total_and_frequency() {
        let ts = vec![
            vec![5.0, 1.0, 0.0, -1.0],
            vec![-1.0, 1.0, 0.0, 1.0],
            vec![-1.0, -3.0, 0.0, 0.0],
        ];
        // totals: 3, -1, 0, 0 → +, -, +, +
        assert_eq!(
            majority_sign(&ts, MajoritySign::Total),
            vec![1.0, -1.0, 1.0, 1.0]
        );
        // votes: -1, 1, 0, 0 → -, +, +, +
        assert_eq!(
            majority_sign(&ts, MajoritySign::Frequency),
            vec![-1.0, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn disjoint_merge_divides_by_agreeing_count() {
        let ts = vec![
            vec![2.0, 0.0, -1.0],
            vec![4.0, 0.0, 3.0],
            vec![-1.0, 0.0, -5.0],
        ];
        let w = [1.0, 0.5, 2.0];
        let out = disjoint_merge(&ts, &w, &[1.0, 1.0, -1.0]);
        // entry 0: (2·1 + 4·0.5)/2 = 2; entry 1: no agreeing entry → 0/1; entry 2: (-1 + -10)/2.
        assert_eq!(out, vec![2.0, 0.0, -5.5]);
    }

    #[test]
    fn mask_uses_unweighted_signs() {
        // a negative weight does not flip which entries agree
        let ts = vec![vec![1.0], vec![2.0]];
        assert_eq!(disjoint_merge(&ts, &[-1.0, 1.0], &[1.0]), vec![0.5]);
    }

    #[test]
    fn ties_end_to_end() {
        let ts = vec![
            vec![3.0, -0.1, 1.0, -2.0],
            vec![-1.0, 0.2, -4.0, -0.5],
            vec![2.0, 0.3, 0.1, 1.0],
        ];
        // density 0.5 keeps 2 per tensor: [3,0,0,-2], [-1,0,-4,0], [2,0,0,1]
        // totals 4, 0, -4, -1 → +, +, -, -; agreeing means: (3+2)/2, 0, -4/1, -2/1
        let out = ties(ts, &[1.0, 1.0, 1.0], 0.5, MajoritySign::Total);
        assert_eq!(out, vec![2.5, 0.0, -4.0, -2.0]);
    }

    #[test]
    fn linear_and_magnitude_prune() {
        let ts = vec![vec![1.0, 2.0], vec![3.0, -4.0]];
        assert_eq!(task_arithmetic(&ts, &[2.0, 1.0]), vec![5.0, 0.0]);
        assert_eq!(magnitude_prune(ts, &[2.0, 1.0], 0.5), vec![0.0, 0.0]);
    }

    #[test]
    fn dare_at_full_density_is_linear_or_ties() {
        let ts = vec![vec![1.0, -2.0], vec![-3.0, -4.0]];
        let mut rngs = [StdRng::seed_from_u64(1), StdRng::seed_from_u64(2)];
        assert_eq!(
            dare_linear(ts.clone(), &[1.0, 1.0], 1.0, &mut rngs),
            vec![-2.0, -6.0]
        );
        let t = dare_ties(ts.clone(), &[1.0, 1.0], 1.0, MajoritySign::Total, &mut rngs);
        assert_eq!(t, ties(ts, &[1.0, 1.0], 1.0, MajoritySign::Total));
    }

    #[test]
    fn dare_ties_uses_rescaled_entries() {
        let ts = vec![vec![1.0; 1000], vec![-0.5; 1000]];
        let mut rngs = [StdRng::seed_from_u64(3), StdRng::seed_from_u64(4)];
        let out = dare_ties(ts, &[1.0, 1.0], 0.5, MajoritySign::Total, &mut rngs);
        // each surviving entry is 2 or -1: kept-alone entries are 2 or -1; both kept → sign + → 2.
        assert!(out.iter().all(|&v| v == 2.0 || v == -1.0 || v == 0.0));
    }

    #[test]
    fn density_is_checked() {
        assert!(check_density(-0.1).is_err());
        assert!(check_density(1.5).is_err());
        assert!(check_density(f64::NAN).is_err());
        assert!(check_density(0.2).is_ok());
    }
}
