//! `datm translate`: translate a text file line by line with ALMA prompts and beam search,
//! cleaning each output as ALMA's `clean_outputstring` does.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use datm_data::PromptTemplate;
use datm_lang::{paper, Direction};
use datm_model::GenerationConfig;

use super::generate::{decode_texts, load_model, open_output, ModelArgs};

/// Arguments of `datm translate`.
#[derive(clap::Args, Debug)]
pub struct TranslateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Source language code (e.g. de).
    #[arg(long)]
    src: String,
    /// Target language code (e.g. en).
    #[arg(long)]
    tgt: String,
    /// Input text, one segment per line.
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Output text (default stdout), one translation per line.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Beams (paper §2.4: 5).
    #[arg(long, default_value_t = paper::NUM_BEAMS)]
    num_beams: usize,
    /// Maximum new tokens (paper §2.4: 512).
    #[arg(long, default_value_t = paper::MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// Prompt template: alma or x-alma-chat.
    #[arg(long, default_value = "alma")]
    template: String,
    /// A trained pool (directory holding `pool.toml`, or the manifest itself): the adapter
    /// is chosen by the pool's routing table for `--src`-`--tgt`.
    #[arg(long, conflicts_with = "adapter")]
    pool: Option<PathBuf>,
}

/// Runs `datm translate`.
pub fn run(mut args: TranslateArgs) -> Result<()> {
    let direction: Direction = format!("{}-{}", args.src, args.tgt)
        .parse()
        .with_context(|| format!("bad direction {}-{}", args.src, args.tgt))?;
    if let Some(pool) = &args.pool {
        let router = datm_pool::Router::open(pool)?;
        let adapter = router.adapter_for(direction)?;
        eprintln!("datm: {direction} is routed to adapter {}", adapter.id);
        args.model.adapter = Some(adapter.path.clone());
    }
    let template = PromptTemplate::from_name(&args.template)
        .with_context(|| format!("unknown --template {:?} (alma, x-alma-chat)", args.template))?;
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let prompts: Vec<String> = text
        .lines()
        .map(|l| template.prompt(direction, l))
        .collect();
    let model = load_model(&args.model)?;
    let cfg = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        num_beams: args.num_beams,
        adapter: model.active_adapter().map(str::to_string),
        batch_size: args.model.batch_size,
        ..GenerationConfig::default()
    };
    let gens = decode_texts(&model, &prompts, &cfg)?;
    let mut out = open_output(args.output.as_deref())?;
    for g in gens {
        writeln!(out, "{}", template.clean_output(direction, &g.text))?;
    }
    out.flush()?;
    Ok(())
}
