//! `datm pipeline experiment.toml`: the whole experiment, resumable.

use std::path::PathBuf;

use anyhow::Result;
use datm_pool::pipeline::{Experiment, Pipeline};

/// Arguments of `datm pipeline`.
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// Experiment file (see examples/*.toml).
    experiment: PathBuf,
    /// Output directory (default: runs/<experiment name>); rerun with the same one to resume.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the experiment's base model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Override the experiment's `device`: `cpu`, or `cuda` / `cuda:N` (a build with the
    /// `cuda` feature). A run may resume on another device.
    #[arg(long)]
    device: Option<String>,
}

/// Runs the pipeline and prints the Markdown report.
pub fn run(args: PipelineArgs) -> Result<()> {
    let mut exp = Experiment::load(&args.experiment)?;
    if let Some(m) = args.model {
        exp.model = m;
    }
    if let Some(d) = args.device {
        datm_model::device::check_device_name(&d)?;
        exp.device = d;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(&exp.name));
    let report = Pipeline::new(exp, &out)?.run()?;
    print!("{}", report.to_markdown());
    eprintln!("report: {}", out.join("report.md").display());
    Ok(())
}
