//! Placeholder until this subcommand is built.

/// Arguments (none yet).
#[derive(clap::Args)]
pub struct DataArgs {}

/// Fails: this subcommand is not built yet.
pub fn run(_args: DataArgs) -> anyhow::Result<()> {
    anyhow::bail!("this subcommand is not implemented yet")
}
