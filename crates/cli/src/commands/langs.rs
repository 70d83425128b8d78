//! `datm langs`: the language table and the grouping in force.

use std::path::PathBuf;

use datm_lang::{Grouping, Lang};

/// Arguments of `datm langs`.
#[derive(clap::Args)]
pub struct LangsArgs {
    /// A TOML grouping file overriding the X-ALMA default groups.
    #[arg(long)]
    groups: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints every language with its group under the grouping in force.
pub fn run(args: LangsArgs) -> anyhow::Result<()> {
    let grouping = match &args.groups {
        Some(p) => Grouping::from_file(p)?,
        None => Grouping::default(),
    };
    let rows: Vec<(Lang, Option<u8>)> = datm_lang::all()
        .map(|l| (l, grouping.group_of(l)))
        .collect();
    if args.json {
        let json: Vec<_> = rows
            .iter()
            .map(|(l, g)| {
                let i = l.info();
                serde_json::json!({"code": i.code, "name": i.name, "script": i.script,
                    "family": i.family, "subgroup": i.subgroup, "resource": i.resource, "group": g})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "{:<5} {:<12} {:<13} {:<16} {:<18} {:<8} group",
        "code", "name", "script", "family", "subgroup", "resource"
    );
    for (l, g) in rows {
        let i = l.info();
        let g = g.map(|g| g.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<5} {:<12} {:<13} {:<16} {:<18} {:<8} {g}",
            i.code, i.name, i.script, i.family, i.subgroup, i.resource
        );
    }
    Ok(())
}
