//! `datm merge`: merge LoRA adapters of one base into one PEFT adapter.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context};
use datm_adapter::{merge, Adapter, MajoritySign, MergeOptions, Method, Space};

/// Arguments of `datm merge`.
#[derive(clap::Args)]
#[command(after_help = "Adapters come before --weights (or after `--`): \
    datm merge -o out A B C --weights 1 1 0.5 --method ties --density 0.2")]
pub struct MergeArgs {
    /// Output adapter directory (PEFT format).
    #[arg(short, long)]
    output: PathBuf,
    /// One weight per adapter (default 1 each); negative weights subtract.
    #[arg(long, num_args = 1.., value_delimiter = ',', allow_negative_numbers = true)]
    weights: Vec<f64>,
    /// Combination method.
    #[arg(long, default_value = "ties",
          value_parser = ["linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"])]
    method: String,
    /// Fraction of entries kept by ties, dare_* and magnitude_prune (1 keeps all).
    #[arg(long, default_value_t = 0.2)]
    density: f64,
    /// TIES sign election: by total mass or by vote count.
    #[arg(long, default_value = "total", value_parser = ["total", "frequency"])]
    majority_sign: String,
    /// Seed of DARE's random masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `delta`: merge ΔW = B·A·scaling per module, then truncated SVD (exact);
    /// `factors`: merge A's and B's separately, as PEFT's add_weighted_adapter.
    #[arg(long, default_value = "delta", value_parser = ["delta", "factors"])]
    space: String,
    /// Output rank for --space delta (default: the largest input rank); refused with --space factors.
    #[arg(long)]
    rank: Option<usize>,
    /// Input adapter directories (PEFT format), at least one.
    #[arg(required = true)]
    adapters: Vec<PathBuf>,
}

/// Loads the adapters, merges them and writes the result as a PEFT adapter.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let opts = MergeOptions {
        method: Method::parse(&args.method)?,
        space: Space::parse(&args.space)?,
        density: args.density,
        majority_sign: MajoritySign::parse(&args.majority_sign)?,
        seed: args.seed,
        rank: args.rank,
    };
    let weights = if args.weights.is_empty() {
        vec![1.0; args.adapters.len()]
    } else {
        args.weights
    };
    ensure!(
        weights.len() == args.adapters.len(),
        "--weights has {} values for {} adapters",
        weights.len(),
        args.adapters.len()
    );
    let started = Instant::now();
    let adapters = args
        .adapters
        .iter()
        .map(|dir| Adapter::load(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let loaded = started.elapsed();
    let merged = merge(&adapters, &weights, &opts)?;
    let merged_at = started.elapsed();
    merged
        .save(&args.output)
        .with_context(|| format!("writing the merged adapter to {}", args.output.display()))?;
    eprintln!(
        "merged {} adapters ({} modules, {} in {:?} space) into {} with r={}: load {:.2}s, merge {:.2}s, save {:.2}s",
        adapters.len(),
        merged.modules.len(),
        args.method,
        opts.space,
        args.output.display(),
        merged.config.r,
        loaded.as_secs_f64(),
        (merged_at - loaded).as_secs_f64(),
        (started.elapsed() - merged_at).as_secs_f64(),
    );
    Ok(())
}
