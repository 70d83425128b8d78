//! `datm report`: the paper's tables, deltas with significance, and figures over one or
//! more results stores (datm-report does the work).

use std::path::{Path, PathBuf};

use anyhow::Context;
use datm_lang::{Direction, Grouping};
use datm_report::{Format, Report, ReportOptions, DEFAULT_BOOTSTRAP, DEFAULT_SEED};

/// Arguments of `datm report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results store (SQLite). Repeat to report several stores as one: a system that
    /// more than one holds (same experiment, point and name) is taken from the last.
    #[arg(long = "db", value_name = "FILE", required = true)]
    db: Vec<PathBuf>,
    /// The system every other one is compared with: a name (matched within each
    /// experiment and sweep point) or a full label. Default: multilingual, when present.
    #[arg(long, value_name = "SYSTEM")]
    baseline: Option<String>,
    /// md, csv, latex, json or html. Default: from the -o file's extension, else md.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Only this experiment (repeatable).
    #[arg(long = "experiment", value_name = "E")]
    experiments: Vec<String>,
    /// Only this system: a name, a label (`dat@rank=8`) or `experiment/label` (repeatable).
    #[arg(long = "system", value_name = "S")]
    systems: Vec<String>,
    /// Only these directions (repeatable; `de-en` or `de-en,en-de`).
    #[arg(long = "direction", value_name = "D")]
    directions: Vec<String>,
    /// Write the SVG figures into this folder.
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
    /// A TOML grouping file (default: X-ALMA's groups), restricted to the languages present.
    #[arg(long, value_name = "FILE")]
    groups: Option<PathBuf>,
    /// The report's title.
    #[arg(long, default_value = "datm report")]
    title: String,
    /// Bootstrap resamples of the paired significance test (0: no test).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BOOTSTRAP)]
    bootstrap: usize,
    /// The resampling seed (sacrebleu's default).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

/// Reads the stores, builds the report and writes it (and the figures, if asked).
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let format = output_format(args.format.as_deref(), args.output.as_deref())?;
    let opts = options(&args)?;
    let systems = datm_report::read_stores(&args.db)?;
    let report = Report::build(&systems, &opts)?;
    if let Some(dir) = &args.figures {
        write_figures(&report, dir)?;
    }
    let text = report.render(format);
    match &args.output {
        Some(path) => datm_fsio::write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `--format`, else the output file's extension, else Markdown.
fn output_format(given: Option<&str>, output: Option<&Path>) -> anyhow::Result<Format> {
    if let Some(f) = given {
        return f.parse();
    }
    let ext = output.and_then(|p| p.extension()).and_then(|e| e.to_str());
    Ok(ext.and_then(|e| e.parse().ok()).unwrap_or(Format::Markdown))
}

fn options(args: &ReportArgs) -> anyhow::Result<ReportOptions> {
    let mut directions = Vec::new();
    for list in &args.directions {
        directions
            .extend(Direction::parse_list(list).with_context(|| format!("--direction {list}"))?);
    }
    let grouping = args
        .groups
        .as_deref()
        .map(Grouping::from_file)
        .transpose()?;
    Ok(ReportOptions {
        title: args.title.clone(),
        baseline: args.baseline.clone(),
        grouping,
        experiments: args.experiments.clone(),
        systems: args.systems.clone(),
        directions,
        bootstrap: args.bootstrap,
        seed: args.seed,
    })
}

/// Writes the SVG figures into `dir`, saying on stderr what was written and skipped.
fn write_figures(report: &Report, dir: &Path) -> anyhow::Result<()> {
    let figures = report.figures();
    for path in datm_report::write_figures(dir, &figures)? {
        eprintln!("datm report: wrote {}", path.display());
    }
    for s in &figures.skipped {
        eprintln!("datm report: {}", s.note);
    }
    Ok(())
}
