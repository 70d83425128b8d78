//! `datm score`: placeholder until the metrics land.

/// Arguments (none yet).
#[derive(clap::Args)]
pub struct ScoreArgs {}

/// Fails: not built yet.
pub fn run(_args: ScoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("this subcommand is not implemented yet")
}

/// Rewrites sacrebleu's multi-letter single-dash flags (`-tok`, `-lc`) to long flags.
pub fn rewrite_sacrebleu_flags(argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    argv
}
