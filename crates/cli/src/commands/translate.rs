//! `datm translate`: translate a text file line by line with ALMA prompts and beam search,
//! cleaning each output as ALMA's `clean_outputstring` does.

use std::path::PathBuf;

use anyhow::{Context, Result};
use datm_data::PromptTemplate;
use datm_engine::Translation;
use datm_lang::Direction;

use super::generate::{decode, load_engine, open_journal, write_lines, ModelArgs};

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
    /// Output text (default stdout), one translation per line. Written once every sentence
    /// is translated, crash-safely; meanwhile each finished sentence is kept in
    /// OUTPUT.partial, from which a stopped run started again with the same model, settings
    /// and input resumes.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Beams (paper: 5).
    #[arg(long, default_value_t = datm_lang::paper::NUM_BEAMS)]
    num_beams: usize,
    /// Maximum new tokens (paper: 512).
    #[arg(long, default_value_t = datm_lang::paper::MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// Prompt template: alma or x-alma-chat.
    #[arg(long, default_value = "alma")]
    template: String,
    /// Prompt tokens at most (BOS included); longer sources are truncated inside the source
    /// text, as in training.
    #[arg(long, default_value_t = Translation::default().max_source_length)]
    max_source_length: usize,
    /// Decode past the end of the first non-blank line (by default a sentence is finished
    /// there: ALMA's output cleaning drops everything after it).
    #[arg(long)]
    no_stop_at_newline: bool,
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
    let text = datm_data::error::read_utf8(&args.input)?;
    let sources: Vec<String> = text.lines().map(str::to_string).collect();
    let settings = Translation {
        template,
        num_beams: args.num_beams,
        max_new_tokens: args.max_new_tokens,
        max_source_length: args.max_source_length,
        batch_size: args.model.batch_size,
        stop_at_newline: !args.no_stop_at_newline,
    };
    let (engine, adapter) = load_engine(&args.model)?;
    let prompts = engine.translation_prompts(&settings, direction, &sources)?;
    let cfg = settings.generation(adapter);
    let output = args.output.as_deref();
    let mut journal = open_journal(engine, output, &prompts, &cfg)?;
    let gens = decode(engine, &prompts, &cfg, journal.as_mut(), "sentences")
        .with_context(|| format!("decoding {direction}"))?;
    let hyps = gens.iter().map(|g| settings.clean(direction, &g.text));
    write_lines(output, hyps, journal)
}
