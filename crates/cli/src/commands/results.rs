//! `datm results import`: outside systems' hypotheses into a results store, scored as the
//! pipeline scores its own (so X-ALMA or NLLB outputs sit in the same tables).

use std::path::PathBuf;

use anyhow::{Context, Result};
use datm_model::candle_core::Device;
use datm_pool::evaluate::Scoring;
use datm_pool::pipeline::TEST_SET_NAME;
use datm_results::{Params, Store, SystemInfo, SystemResults};

use super::scoring::ScoringArgs;

/// Arguments of `datm results`.
#[derive(clap::Args)]
pub struct ResultsArgs {
    #[command(subcommand)]
    command: ResultsCommand,
}

#[derive(clap::Subcommand)]
enum ResultsCommand {
    /// Score another system's hypothesis files and record them in a results store.
    Import(ImportArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The results store (created when absent).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The system's name in the tables (e.g. x-alma-13b, nllb-3.3b).
    #[arg(long)]
    system: String,
    /// ALMA-layout data folder whose test split the hypotheses translate.
    #[arg(long, value_name = "DIR")]
    test_set: PathBuf,
    /// Folder of hypothesis files, one per direction: `<src>-<tgt>.txt`, one line per
    /// test sentence.
    #[arg(long, value_name = "DIR")]
    hyps: PathBuf,
    /// Experiment to record the system under (that of the systems it is compared with).
    #[arg(long, default_value = "imported")]
    experiment: String,
    /// Test sentences per direction: the first N pairs of the test split (as the
    /// experiment's `test_size` took them).
    #[arg(long)]
    test_size: Option<usize>,
    /// The system's parameter count, for the Table-2 view.
    #[arg(long)]
    params: Option<u64>,
    /// Languages the system was trained on (the Fig. 2 view).
    #[arg(long)]
    languages: Option<u32>,
    #[command(flatten)]
    scoring: ScoringArgs,
}

/// Runs `datm results`.
pub fn run(args: ResultsArgs) -> Result<()> {
    match args.command {
        ResultsCommand::Import(a) => import(a),
    }
}

fn import(a: ImportArgs) -> Result<()> {
    let corpus = datm_data::read_layout(&a.test_set)?;
    let dicts = a.scoring.dicts();
    let comet = a.scoring.comet(&Device::Cpu)?;
    let scoring = Scoring {
        dicts: &dicts,
        comet: comet.as_ref(),
    };
    let outputs = scoring
        .external(&a.hyps, &corpus, a.test_size, TEST_SET_NAME)
        .with_context(|| format!("importing {}", a.system))?;
    let info = SystemInfo {
        experiment: a.experiment.clone(),
        point: String::new(),
        system: a.system.clone(),
        config_hash: format!("imported from {}", a.hyps.display()),
        languages: a.languages,
        params: a.params.map(|base| Params {
            adapters: 0,
            lora: 0,
            base,
        }),
    };
    let n = outputs.len();
    Store::open(&a.db)?.record(&SystemResults { info, outputs })?;
    eprintln!(
        "recorded {} ({n} directions) in {}",
        a.system,
        a.db.display()
    );
    Ok(())
}
