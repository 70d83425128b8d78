//! `datm serve`: the base model and a pool as an HTTP translation service (see `datm-serve`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use datm_data::PromptTemplate;
use datm_engine::{LoadSpec, Translation};
use datm_serve::ServeConfig;

/// Arguments of `datm serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Base model: an HF directory or a .gguf file.
    #[arg(long, short = 'm')]
    model: PathBuf,
    /// A trained pool (directory holding `pool.toml`, or the manifest); without it the base
    /// model serves every pair.
    #[arg(long)]
    pool: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Where to run: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Weight dtype: f32, bf16 or f16 (default: f32 with GGUF k-quant/Q8_0 weights kept
    /// quantized), or int8: a GGUF model's int8 blocks times inputs rounded to int8, on any
    /// CPU with the int8 products (by default only where they were measured fastest).
    #[arg(long)]
    dtype: Option<String>,
    /// Beams (ALMA: 5).
    #[arg(long, default_value_t = Translation::default().num_beams)]
    num_beams: usize,
    /// Generated tokens per text at most (completions may ask for fewer).
    #[arg(long, default_value_t = Translation::default().max_new_tokens)]
    max_new_tokens: usize,
    /// Prompt tokens at most (BOS included); longer sources are truncated as in training.
    #[arg(long, default_value_t = Translation::default().max_source_length)]
    max_source_length: usize,
    /// Prompt template: alma or x-alma-chat.
    #[arg(long, default_value = "alma")]
    template: String,
    /// Tokens in the running batch at most: prompt tokens times beams of the rows decoding
    /// together (a longer single input is decoded alone).
    #[arg(long, default_value_t = 4096)]
    max_batch_tokens: usize,
    /// Requests waiting for the decoder at most (more get HTTP 429).
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Characters of one input text at most (longer get HTTP 400).
    #[arg(long, default_value_t = 2000)]
    max_input_chars: usize,
    /// Bytes of a request body at most (larger get HTTP 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a request may wait for its result (then HTTP 504).
    #[arg(long, default_value_t = 120.0)]
    timeout_s: f64,
    /// Testing only: decoding an input text equal to this panics, to check that a panic
    /// fails only the requests in its batch.
    #[arg(long, hide = true)]
    panic_on_input: Option<String>,
}

/// Runs `datm serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let template = PromptTemplate::from_name(&args.template)
        .with_context(|| format!("unknown --template {:?} (alma, x-alma-chat)", args.template))?;
    anyhow::ensure!(
        args.timeout_s > 0.0 && args.timeout_s.is_finite(),
        "--timeout-s must be a positive number of seconds"
    );
    let config = ServeConfig {
        model: args.model,
        pool: args.pool,
        addr: SocketAddr::new(args.host, args.port),
        load: LoadSpec::parse(&args.device, args.dtype.as_deref())?,
        translation: Translation {
            template,
            num_beams: args.num_beams,
            max_new_tokens: args.max_new_tokens,
            max_source_length: args.max_source_length,
            batch_size: Translation::default().batch_size,
            stop_at_newline: true,
        },
        max_batch_tokens: args.max_batch_tokens,
        max_queue: args.max_queue,
        max_input_chars: args.max_input_chars,
        max_body_bytes: args.max_body_bytes,
        timeout: Duration::from_secs_f64(args.timeout_s),
        panic_on_input: args.panic_on_input,
    };
    datm_serve::run(config, |addr| {
        eprintln!("datm: serving on http://{addr}");
    })?;
    eprintln!("datm: stopped");
    Ok(())
}
