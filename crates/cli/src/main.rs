//! The `datm` binary: one git-style subcommand per stage of the flow.

// The one exception: `runtime` sets process-wide allocator and signal settings.
#![deny(unsafe_code)]

mod commands;
#[allow(unsafe_code)]
mod runtime;

use clap::{Parser, Subcommand};

/// datm: direction-aware LoRA pools for many-language LLM translation.
#[derive(Parser)]
#[command(name = "datm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score hypotheses against references, sacreBLEU-exact (BLEU, chrF, TER).
    Score(commands::score::ScoreArgs),
    /// Score translations with a COMET model (a drop-in for comet-score).
    Comet(commands::comet::CometArgs),
    /// Import, convert and inspect parallel corpora.
    Data(commands::data::DataArgs),
    /// List the known languages and their groups.
    Langs(commands::langs::LangsArgs),
    /// Decode prompts with a base model and optional LoRA adapter.
    Generate(commands::generate::GenerateArgs),
    /// Translate a text file with ALMA prompts and beam search.
    Translate(commands::translate::TranslateArgs),
    /// Fine-tune a LoRA adapter on parallel data.
    Train(commands::train::TrainArgs),
    /// Check the fused training ops against candle's composite ops on a device.
    CheckKernels(commands::check_kernels::CheckKernelsArgs),
    /// Merge LoRA adapters (linear, TIES, DARE, magnitude pruning).
    Merge(commands::merge::MergeArgs),
    /// Plan, train and merge pools of direction-aware adapters.
    Pool(commands::pool::PoolArgs),
    /// Run a whole experiment from a TOML file.
    Pipeline(commands::pipeline::PipelineArgs),
    /// The results store: import outside systems' outputs.
    Results(commands::results::ResultsArgs),
    /// Serve a model and its pool over HTTP (LibreTranslate and OpenAI APIs).
    Serve(commands::serve::ServeArgs),
    /// Report results stores: the paper's tables, deltas with significance, figures.
    Report(commands::report::ReportArgs),
}

fn main() {
    runtime::configure();
    runtime::exit_quietly_on_closed_pipe();
    let argv = commands::score::rewrite_sacrebleu_flags(std::env::args_os().collect());
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Score(a) => commands::score::run(a),
        Command::Comet(a) => commands::comet::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Langs(a) => commands::langs::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Translate(a) => commands::translate::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::CheckKernels(a) => commands::check_kernels::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Pool(a) => commands::pool::run(a),
        Command::Pipeline(a) => commands::pipeline::run(a),
        Command::Results(a) => commands::results::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Report(a) => commands::report::run(a),
    };
    if let Err(e) = result {
        eprintln!("datm: error: {e:#}");
        std::process::exit(1);
    }
}
