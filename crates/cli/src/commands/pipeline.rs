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
}

/// Runs the pipeline and prints the Markdown report.
pub fn run(args: PipelineArgs) -> Result<()> {
    let mut exp = Experiment::load(&args.experiment)?;
    if let Some(m) = args.model {
        exp.model = m;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(&exp.name));
    let report = Pipeline::new(exp, &out)?.run()?;
    print!("{}", report.to_markdown());
    eprintln!("report: {}", out.join("report.md").display());
    Ok(())
}
