//! Placeholder until this subcommand is built.

/// Arguments (none yet).
#[derive(clap::Args)]
pub struct TranslateArgs {}

/// Fails: this subcommand is not built yet.
pub fn run(_args: TranslateArgs) -> anyhow::Result<()> {
    anyhow::bail!("this subcommand is not implemented yet")
}
