//! Merging several LoRA adapters of one base into one adapter.
//!
//! Two spaces:
//! - [`Space::Delta`] (exact): per module ΔWᵢ = Bᵢ·Aᵢ·scalingᵢ, merge the ΔWᵢ with the method, then a
//!   truncated SVD back to the output rank (PEFT's `*_svd` combination types, with the scaling applied
//!   once as in PEFT ≥ 0.21).
//! - [`Space::Factors`]: PEFT's `add_weighted_adapter` for the non-SVD types: weights wᵢ·scalingᵢ split
//!   as √|w′|·sign on A and √|w′| on B, the stacked A's and stacked B's merged separately. Cheap, but
//!   B·A is not the merge of the ΔW's.
//!
//! The result is a PEFT adapter with `r = lora_alpha = rank` (scaling 1).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::config::{LoraConfig, TargetModules};
use crate::format::{Adapter, LoraPair};
use crate::merge_utils::{self, MajoritySign};
use crate::svd;

/// The combination method (PEFT `combination_type` without the `_svd` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Task arithmetic: Σ wᵢTᵢ.
    Linear,
    /// TIES: magnitude trim, sign election, disjoint mean.
    #[default]
    Ties,
    /// DARE (random drop with 1/density rescale), then Σ wᵢTᵢ.
    DareLinear,
    /// DARE, then TIES' sign election and disjoint mean.
    DareTies,
    /// Magnitude trim, then Σ wᵢTᵢ.
    MagnitudePrune,
}

impl Method {
    /// Parses the PEFT/CLI name (`linear`, `ties`, `dare_linear`, `dare_ties`, `magnitude_prune`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" => Method::Linear,
            "ties" => Method::Ties,
            "dare_linear" => Method::DareLinear,
            "dare_ties" => Method::DareTies,
            "magnitude_prune" => Method::MagnitudePrune,
            _ => bail!("unknown merge method {name:?} (linear, ties, dare_linear, dare_ties, magnitude_prune)"),
        })
    }

    /// Whether the method prunes, i.e. reads `density`.
    pub fn uses_density(self) -> bool {
        self != Method::Linear
    }
}

/// Where the merge happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Space {
    /// Merge ΔW = B·A·scaling per module, then truncated SVD (exact).
    #[default]
    Delta,
    /// Merge the A's and the B's separately (PEFT `add_weighted_adapter`, non-SVD types).
    Factors,
}

impl Space {
    /// Parses the CLI name (`delta`, `factors`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "delta" => Space::Delta,
            "factors" => Space::Factors,
            _ => bail!("unknown merge space {name:?} (delta, factors)"),
        })
    }
}

/// Options of [`merge`].
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOptions {
    /// Combination method.
    pub method: Method,
    /// Merge space.
    pub space: Space,
    /// Fraction of entries kept by pruning methods, in [0, 1] (default 0.2, the TIES paper's top-20 %).
    pub density: f64,
    /// TIES sign election.
    pub majority_sign: MajoritySign,
    /// Seed of DARE's random masks.
    pub seed: u64,
    /// Output rank in the delta space (PEFT's `svd_rank`; default: the largest input rank). The
    /// factors space keeps the inputs' rank, so a rank there is refused rather than ignored.
    pub rank: Option<usize>,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            method: Method::Ties,
            space: Space::Delta,
            density: 0.2,
            majority_sign: MajoritySign::Total,
            seed: 0,
            rank: None,
        }
    }
}

/// Merges `adapters` (all of one base, same modules and shapes) with one weight each.
pub fn merge(adapters: &[Adapter], weights: &[f64], opts: &MergeOptions) -> Result<Adapter> {
    check_compatible(adapters, weights)?;
    if opts.method.uses_density() {
        merge_utils::check_density(opts.density)?;
    }
    let names: Vec<&String> = adapters[0].modules.keys().collect();
    let rank = output_rank(adapters, opts)?;
    let pairs: Vec<(String, LoraPair)> = names
        .par_iter()
        .map(|name| {
            let pair = match opts.space {
                Space::Delta => merge_delta(adapters, weights, name, rank, opts),
                Space::Factors => merge_factors(adapters, weights, name, opts),
            };
            pair.map(|p| ((*name).clone(), p))
                .with_context(|| format!("merging module {name}"))
        })
        .collect::<Result<_>>()?;
    let modules: BTreeMap<String, LoraPair> = pairs.into_iter().collect();
    let config = merged_config(adapters, &modules)?;
    Adapter::new(config, modules)
}

/// The rank of a delta-space merge (0 for the factors space, which keeps the inputs' rank).
fn output_rank(adapters: &[Adapter], opts: &MergeOptions) -> Result<usize> {
    match (opts.space, opts.rank) {
        (Space::Factors, None) => Ok(0),
        (Space::Factors, Some(r)) => bail!(
            "a rank ({r}) applies to the delta space only: a factors-space merge keeps its inputs' rank"
        ),
        (Space::Delta, Some(0)) => bail!("the merged rank must be at least 1"),
        (Space::Delta, Some(r)) => Ok(r),
        (Space::Delta, None) => Ok(max_rank(adapters)),
    }
}

fn max_rank(adapters: &[Adapter]) -> usize {
    adapters
        .iter()
        .flat_map(|a| a.modules.values().map(LoraPair::rank))
        .max()
        .unwrap_or(0)
}

/// Refuses adapters that are not of one base: different `base_model_name_or_path`, module sets or shapes.
fn check_compatible(adapters: &[Adapter], weights: &[f64]) -> Result<()> {
    ensure!(!adapters.is_empty(), "nothing to merge: no adapters given");
    ensure!(
        weights.len() == adapters.len(),
        "{} weights for {} adapters",
        weights.len(),
        adapters.len()
    );
    ensure!(
        weights.iter().all(|w| w.is_finite()),
        "weights must be finite numbers: {weights:?}"
    );
    let first = &adapters[0];
    for (i, other) in adapters.iter().enumerate().skip(1) {
        let (b0, bi) = (
            &first.config.base_model_name_or_path,
            &other.config.base_model_name_or_path,
        );
        if let (Some(b0), Some(bi)) = (b0, bi) {
            ensure!(
                b0 == bi,
                "adapter #{} is for base {bi:?} but adapter #1 is for {b0:?}; adapters of different bases cannot be merged",
                i + 1
            );
        }
        let (m0, mi): (BTreeSet<_>, BTreeSet<_>) = (
            first.modules.keys().collect(),
            other.modules.keys().collect(),
        );
        if let Some(missing) = m0.symmetric_difference(&mi).next() {
            let holder = if m0.contains(missing) { 1 } else { i + 1 };
            bail!(
                "module {missing} is adapted by adapter #{holder} only; adapters #1 and #{} target different module sets",
                i + 1
            );
        }
        for (name, pair) in &other.modules {
            let (s0, si) = (first.modules[name].base_shape(), pair.base_shape());
            ensure!(
                s0 == si,
                "module {name} has base shape {s0:?} in adapter #1 but {si:?} in adapter #{}; different bases",
                i + 1
            );
        }
    }
    Ok(())
}

/// One module in the delta space: merge the ΔWᵢ, then truncated SVD to `rank`. Merges that are
/// linear in the ΔWᵢ (linear; magnitude_prune/dare_linear at density 1) skip forming ΔW: the result is
/// the product of the stacked factors `[w₁s₁B₁ … wₙsₙBₙ]·[A₁; …; Aₙ]`, truncated exactly via QR.
fn merge_delta(
    adapters: &[Adapter],
    weights: &[f64],
    name: &str,
    rank: usize,
    opts: &MergeOptions,
) -> Result<LoraPair> {
    let (m, n) = adapters[0].modules[name].base_shape();
    let lr = if is_linear(opts) {
        let (b, a, k) = stacked_factors(adapters, weights, name)?;
        svd::truncate_product(&b, &a, m, k, n, rank)
    } else {
        let deltas = adapters
            .iter()
            .map(|a| flat(&a.delta_weight(name)?))
            .collect::<Result<Vec<_>>>()?;
        let w32: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
        svd::truncate(&combine(deltas, &w32, opts, name, 0), m, n, rank)
    };
    Ok(LoraPair {
        a: Tensor::from_vec(lr.a, (rank, n), &Device::Cpu)?,
        b: Tensor::from_vec(lr.b, (m, rank), &Device::Cpu)?,
    })
}

/// Whether the merge is Σ wᵢTᵢ (no pruning takes effect).
fn is_linear(opts: &MergeOptions) -> bool {
    match opts.method {
        Method::Linear => true,
        Method::DareLinear | Method::MagnitudePrune => opts.density >= 1.0,
        Method::Ties | Method::DareTies => false,
    }
}

/// `[w₁s₁B₁ | … | wₙsₙBₙ]` (row-major `[m, k]`), `[A₁; …; Aₙ]` (row-major `[k, n]`) and `k = Σrᵢ`.
fn stacked_factors(
    adapters: &[Adapter],
    weights: &[f64],
    name: &str,
) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    let pairs: Vec<&LoraPair> = adapters.iter().map(|a| &a.modules[name]).collect();
    let b_parts = adapters
        .iter()
        .zip(weights)
        .map(|(a, &w)| Ok((a.modules[name].b.to_dtype(DType::F32)? * (w * a.scaling_for(name)))?))
        .collect::<Result<Vec<_>>>()?;
    let b = flat(&Tensor::cat(&b_parts, 1)?)?;
    let a_parts = pairs
        .iter()
        .map(|p| p.a.to_dtype(DType::F32))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let a = flat(&Tensor::cat(&a_parts, 0)?)?;
    let k = pairs.iter().map(|p| p.rank()).sum();
    Ok((b, a, k))
}

/// One module in the factors space, as PEFT's `_generalized_task_arithmetic_weighted_adapter`.
fn merge_factors(
    adapters: &[Adapter],
    weights: &[f64],
    name: &str,
    opts: &MergeOptions,
) -> Result<LoraPair> {
    let ranks: Vec<usize> = adapters.iter().map(|a| a.modules[name].rank()).collect();
    ensure!(
        ranks.iter().all(|&r| r == ranks[0]),
        "module {name} has ranks {ranks:?}: merging in the factors space needs equal ranks (use --space delta)"
    );
    let mut w_a = Vec::with_capacity(adapters.len());
    let mut w_b = Vec::with_capacity(adapters.len());
    for (adapter, &w) in adapters.iter().zip(weights) {
        let scaled = w * adapter.scaling_for(name);
        let root = scaled.abs().sqrt();
        w_a.push((if scaled >= 0.0 { root } else { -root }) as f32);
        w_b.push(root as f32);
    }
    let a_side = adapters
        .iter()
        .map(|a| flat(&a.modules[name].a))
        .collect::<Result<Vec<_>>>()?;
    let b_side = adapters
        .iter()
        .map(|a| flat(&a.modules[name].b))
        .collect::<Result<Vec<_>>>()?;
    // PEFT merges with the method given, except that a single adapter is always merged linearly.
    let opts = if adapters.len() == 1 {
        &MergeOptions {
            method: Method::Linear,
            ..opts.clone()
        }
    } else {
        opts
    };
    let pair = &adapters[0].modules[name];
    Ok(LoraPair {
        a: Tensor::from_vec(
            combine(a_side, &w_a, opts, name, 1),
            pair.a.dims(),
            &Device::Cpu,
        )?,
        b: Tensor::from_vec(
            combine(b_side, &w_b, opts, name, 2),
            pair.b.dims(),
            &Device::Cpu,
        )?,
    })
}

/// Applies the method to one stack of tensors. `stream` separates the random masks of the ΔW, A and
/// B stacks; masks are a deterministic function of (seed, module, stream, adapter index).
fn combine(
    tensors: Vec<Vec<f32>>,
    weights: &[f32],
    opts: &MergeOptions,
    module: &str,
    stream: u64,
) -> Vec<f32> {
    let rngs = || -> Vec<StdRng> {
        (0..tensors.len() as u64)
            .map(|i| StdRng::seed_from_u64(mask_seed(opts.seed, module, stream, i)))
            .collect()
    };
    match opts.method {
        Method::Linear => merge_utils::task_arithmetic(&tensors, weights),
        Method::Ties => merge_utils::ties(tensors, weights, opts.density, opts.majority_sign),
        Method::MagnitudePrune => merge_utils::magnitude_prune(tensors, weights, opts.density),
        Method::DareLinear => {
            let mut r = rngs();
            merge_utils::dare_linear(tensors, weights, opts.density, &mut r)
        }
        Method::DareTies => {
            let mut r = rngs();
            merge_utils::dare_ties(tensors, weights, opts.density, opts.majority_sign, &mut r)
        }
    }
}

/// A stable 64-bit FNV-1a mix of the seed, module name, stream and adapter index.
fn mask_seed(seed: u64, module: &str, stream: u64, index: u64) -> u64 {
    let bytes = seed
        .to_le_bytes()
        .into_iter()
        .chain(module.bytes())
        .chain(stream.to_le_bytes())
        .chain(index.to_le_bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The merged adapter's config: the first adapter's, with `r = lora_alpha = rank` (scaling 1, no
/// rsLoRA), per-module rank/alpha patterns where module ranks differ, and the union of the target modules.
fn merged_config(adapters: &[Adapter], modules: &BTreeMap<String, LoraPair>) -> Result<LoraConfig> {
    let mut config = adapters[0].config.clone();
    let rank = modules
        .values()
        .map(LoraPair::rank)
        .max()
        .unwrap_or(config.r);
    config.r = rank;
    config.lora_alpha = rank as f64;
    config.use_rslora = false;
    config.inference_mode = true;
    config.rank_pattern.clear();
    config.alpha_pattern.clear();
    for (name, pair) in modules.iter().filter(|(_, p)| p.rank() != rank) {
        config.rank_pattern.insert(name.clone(), pair.rank());
        config
            .alpha_pattern
            .insert(name.clone(), pair.rank() as f64);
    }
    config.target_modules = union_targets(adapters)?;
    Ok(config)
}

/// PEFT's target-module union: lists are united, regexes joined as `(a)|(b)`; a mix is refused.
fn union_targets(adapters: &[Adapter]) -> Result<Option<TargetModules>> {
    let targets: Vec<&Option<TargetModules>> =
        adapters.iter().map(|a| &a.config.target_modules).collect();
    if targets
        .iter()
        .all(|t| matches!(t, Some(TargetModules::Regex(_))))
    {
        let mut parts: Vec<String> = vec![];
        for t in &targets {
            if let Some(TargetModules::Regex(p)) = t {
                let group = format!("({p})");
                if !parts.contains(&group) {
                    parts.push(group);
                }
            }
        }
        return Ok(Some(TargetModules::Regex(parts.join("|"))));
    }
    let mut names = BTreeSet::new();
    for t in targets {
        match t {
            Some(TargetModules::List(list)) => names.extend(list.iter().cloned()),
            None => {}
            Some(TargetModules::Regex(_)) => {
                bail!("cannot merge adapters whose target_modules mix a list and a regex (PEFT refuses this too)")
            }
        }
    }
    Ok(Some(TargetModules::List(names.into_iter().collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(r: usize, alpha: f64, seed: f32, base: &str) -> Adapter {
        let dev = Device::Cpu;
        let a: Vec<f32> = (0..r * 5)
            .map(|i| ((i as f32 + seed) * 0.37).sin())
            .collect();
        let b: Vec<f32> = (0..4 * r)
            .map(|i| ((i as f32 - seed) * 0.73).cos())
            .collect();
        let pair = LoraPair {
            a: Tensor::from_vec(a, (r, 5), &dev).unwrap(),
            b: Tensor::from_vec(b, (4, r), &dev).unwrap(),
        };
        let mut config = LoraConfig::new(r, alpha, TargetModules::List(vec!["q_proj".into()]));
        config.base_model_name_or_path = Some(base.into());
        Adapter::new(config, BTreeMap::from([("m.q_proj".to_string(), pair)])).unwrap()
    }

    fn delta(a: &Adapter) -> Vec<f32> {
        flat(&a.delta_weight("m.q_proj").unwrap()).unwrap()
    }

    #[test]
    fn delta_linear_is_exact_weighted_sum() {
        let (x, y) = (adapter(2, 4.0, 0.0, "base"), adapter(3, 3.0, 1.0, "base"));
        let opts = MergeOptions {
            method: Method::Linear,
            rank: Some(4),
            ..Default::default()
        };
        let out = merge(&[x.clone(), y.clone()], &[0.5, 2.0], &opts).unwrap();
        assert_eq!((out.config.r, out.config.lora_alpha), (4, 4.0));
        let (dx, dy, dm) = (delta(&x), delta(&y), delta(&out));
        for j in 0..dm.len() {
            let want = 0.5 * dx[j] + 2.0 * dy[j];
            assert!((dm[j] - want).abs() < 1e-4, "{j}: {} vs {want}", dm[j]);
        }
    }

    #[test]
    fn factors_linear_follows_peft_split_of_weights() {
        let (x, y) = (adapter(2, 4.0, 0.0, "base"), adapter(2, 2.0, 1.0, "base"));
        let opts = MergeOptions {
            method: Method::Linear,
            space: Space::Factors,
            ..Default::default()
        };
        let out = merge(&[x.clone(), y.clone()], &[1.0, -3.0], &opts).unwrap();
        // w' = 1·2 = 2 and -3·1 = -3: A = √2·A₁ - √3·A₂, B = √2·B₁ + √3·B₂.
        let a = flat(&out.modules["m.q_proj"].a).unwrap();
        let (a1, a2) = (
            flat(&x.modules["m.q_proj"].a).unwrap(),
            flat(&y.modules["m.q_proj"].a).unwrap(),
        );
        for j in 0..a.len() {
            assert!((a[j] - (2f32.sqrt() * a1[j] - 3f32.sqrt() * a2[j])).abs() < 1e-5);
        }
        let b = flat(&out.modules["m.q_proj"].b).unwrap();
        let (b1, b2) = (
            flat(&x.modules["m.q_proj"].b).unwrap(),
            flat(&y.modules["m.q_proj"].b).unwrap(),
        );
        for j in 0..b.len() {
            assert!((b[j] - (2f32.sqrt() * b1[j] + 3f32.sqrt() * b2[j])).abs() < 1e-5);
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let x = adapter(2, 4.0, 0.0, "base");
        let err = merge(
            &[x.clone(), adapter(2, 4.0, 1.0, "other")],
            &[1.0, 1.0],
            &MergeOptions::default(),
        );
        assert!(err.unwrap_err().to_string().contains("different bases"));
        let factors = MergeOptions {
            space: Space::Factors,
            ..Default::default()
        };
        let err = merge(
            &[x.clone(), adapter(3, 4.0, 1.0, "base")],
            &[1.0, 1.0],
            &factors,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("equal ranks"), "{err:#}");
        let mut y = adapter(2, 4.0, 1.0, "base");
        let pair = y.modules.remove("m.q_proj").unwrap();
        y.modules.insert("m.v_proj".into(), pair);
        let err = merge(&[x.clone(), y], &[1.0, 1.0], &MergeOptions::default()).unwrap_err();
        assert!(err.to_string().contains("different module sets"), "{err}");
        let err = merge(
            std::slice::from_ref(&x),
            &[1.0, 1.0],
            &MergeOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("2 weights for 1 adapters"));
        let bad = MergeOptions {
            density: 1.5,
            ..Default::default()
        };
        assert!(merge(&[x], &[1.0], &bad).is_err());
    }

    #[test]
    fn dare_is_deterministic_per_seed() {
        let ads = [adapter(2, 4.0, 0.0, "b"), adapter(2, 4.0, 1.0, "b")];
        let opts = MergeOptions {
            method: Method::DareTies,
            density: 0.5,
            seed: 3,
            ..Default::default()
        };
        let d1 = delta(&merge(&ads, &[1.0, 1.0], &opts).unwrap());
        let d2 = delta(&merge(&ads, &[1.0, 1.0], &opts).unwrap());
        let d3 = delta(&merge(&ads, &[1.0, 1.0], &MergeOptions { seed: 4, ..opts }).unwrap());
        assert_eq!(d1, d2);
        assert_ne!(d1, d3);
    }

    #[test]
    fn rank_truncates_the_delta_merge_and_is_refused_for_factors() {
        let ads = [adapter(3, 3.0, 0.0, "b"), adapter(3, 3.0, 1.0, "b")];
        let default = merge(&ads, &[1.0, 1.0], &MergeOptions::default()).unwrap();
        assert_eq!(default.config.r, 3, "default: the inputs' rank");
        let opts = MergeOptions {
            rank: Some(2),
            ..Default::default()
        };
        let out = merge(&ads, &[1.0, 1.0], &opts).unwrap();
        assert_eq!((out.config.r, out.config.lora_alpha), (2, 2.0));
        assert_eq!(out.modules["m.q_proj"].a.dims(), &[2, 5]);
        assert_ne!(delta(&out), delta(&default));
        let zero = MergeOptions {
            rank: Some(0),
            ..Default::default()
        };
        let err = merge(&ads, &[1.0, 1.0], &zero).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let factors = MergeOptions {
            space: Space::Factors,
            rank: Some(2),
            ..Default::default()
        };
        let err = merge(&ads, &[1.0, 1.0], &factors).unwrap_err();
        assert!(err.to_string().contains("delta space only"), "{err}");
    }

    #[test]
    fn majority_sign_method_changes_a_ties_merge() {
        // Three adapters: two small positive entries outvote one large negative entry by count
        // (frequency) but not by mass (total).
        let dev = Device::Cpu;
        let one = |v: f32| {
            let pair = LoraPair {
                a: Tensor::from_vec(vec![1f32], (1, 1), &dev).unwrap(),
                b: Tensor::from_vec(vec![v], (1, 1), &dev).unwrap(),
            };
            let config = LoraConfig::new(1, 1.0, TargetModules::List(vec!["q_proj".into()]));
            Adapter::new(config, BTreeMap::from([("m.q_proj".to_string(), pair)])).unwrap()
        };
        let ads = [one(1.0), one(1.0), one(-5.0)];
        let run = |majority_sign| {
            let opts = MergeOptions {
                density: 1.0,
                majority_sign,
                ..Default::default()
            };
            delta(&merge(&ads, &[1.0; 3], &opts).unwrap())[0]
        };
        assert!((run(MajoritySign::Total) - -5.0).abs() < 1e-5);
        assert!((run(MajoritySign::Frequency) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn regex_targets_are_joined() {
        let mut x = adapter(2, 4.0, 0.0, "b");
        let mut y = adapter(2, 4.0, 1.0, "b");
        x.config.target_modules = Some(TargetModules::Regex(".*q_proj".into()));
        y.config.target_modules = Some(TargetModules::Regex(".*v_proj".into()));
        let out = merge(&[x, y], &[1.0, 1.0], &MergeOptions::default()).unwrap();
        assert_eq!(
            out.config.target_modules,
            Some(TargetModules::Regex("(.*q_proj)|(.*v_proj)".into()))
        );
    }
}
