//! `datm generate`: decode JSONL prompts with a base model (HF directory or `.gguf`) and an
//! optional PEFT adapter; optionally write the adapter-merged model as an HF directory.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use datm_adapter::Adapter;
use datm_engine::{parse_dtype, Engine, JobJournal, LoadSpec, TextGeneration};
use datm_model::candle_core::DType;
use datm_model::{EarlyStopping, GenerationConfig};

/// Where the model comes from and how to load it (shared with `datm translate`).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Base model: an HF directory (config.json, tokenizer.json, *.safetensors) or a .gguf file.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Weight dtype: f32, bf16 or f16. Default: f32, with GGUF k-quant/Q8_0 weights kept
    /// quantized; any explicit value dequantizes GGUF weights to it. int8: a GGUF model's
    /// int8 blocks times inputs rounded to int8 per group of 32, on any CPU with the int8
    /// products (AVX2, AVX512-VNNI, NEON's dot product; by default only where they were
    /// measured fastest).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Prompts decoded together.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Where to run: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Arguments of `datm generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSONL prompts, one `{"prompt": "..."}` per line.
    #[arg(long, short = 'i')]
    input: Option<PathBuf>,
    /// Output JSONL (default stdout): `{"prompt", "prompt_ids", "token_ids", "text"}` per
    /// prompt. Written once every prompt is decoded, crash-safely; meanwhile each finished
    /// prompt is kept in OUTPUT.partial, from which a stopped run started again with the same
    /// model, settings and input resumes.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Beams (1 = greedy or sampling).
    #[arg(long, default_value_t = 1)]
    num_beams: usize,
    /// Maximum new tokens per prompt (EOS included).
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sample instead of greedy decoding.
    #[arg(long)]
    do_sample: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Top-k sampling (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Beam length penalty (score = sum log p / len^penalty).
    #[arg(long, default_value_t = 1.0)]
    length_penalty: f64,
    /// Beam stopping rule: false (HF default heuristic), true, never.
    #[arg(long, default_value = "false")]
    early_stopping: String,
    /// Fold the adapter into the base weights and write the merged model (HF safetensors
    /// directory, in --dtype or f32) here; --input becomes optional.
    #[arg(long)]
    merge_out: Option<PathBuf>,
}

/// Runs `datm generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    if let Some(out) = &args.merge_out {
        let adapter = args
            .model
            .adapter
            .as_deref()
            .map(Adapter::load)
            .transpose()?;
        let dtype = parse_dtype(args.model.dtype.as_deref())?.unwrap_or(DType::F32);
        datm_model::merge::save_merged(&args.model.model, adapter.as_ref(), out, dtype)?;
        eprintln!("datm: merged model written to {}", out.display());
    }
    let Some(input) = &args.input else {
        if args.merge_out.is_some() {
            return Ok(());
        }
        bail!("--input is required (JSONL with one {{\"prompt\": ...}} per line)");
    };
    let prompts = read_prompts(input)?;
    let started = std::time::Instant::now();
    let (engine, adapter) = load_engine(&args.model)?;
    let loaded = started.elapsed().as_secs_f64();
    let cfg = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        num_beams: args.num_beams,
        do_sample: args.do_sample,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        length_penalty: args.length_penalty,
        early_stopping: parse_early_stopping(&args.early_stopping)?,
        adapter: adapter.map(str::to_string),
        batch_size: args.model.batch_size,
        ..GenerationConfig::default()
    };
    let started = std::time::Instant::now();
    let ids = engine.encode(&prompts)?;
    let output = args.output.as_deref();
    let mut journal = open_journal(engine, output, &ids, &cfg)?;
    let (kept, kept_tokens) = journal
        .as_ref()
        .map_or((0, 0), |j| (j.resumed(), j.resumed_tokens()));
    let results = decode(engine, &ids, &cfg, journal.as_mut(), "prompts")?;
    let secs = started.elapsed().as_secs_f64();
    let tokens = results.iter().map(|r| r.token_ids.len()).sum::<usize>() - kept_tokens;
    eprintln!(
        "datm: model loaded in {loaded:.2} s; {} prompts, {tokens} new tokens generated in {secs:.2} s ({:.1} tokens/s){}",
        prompts.len() - kept,
        tokens as f64 / secs.max(1e-9),
        if kept > 0 { format!("; {kept} prompts from the journal") } else { String::new() }
    );
    let lines = prompts.iter().zip(results).map(|(prompt, r)| {
        serde_json::json!({
            "prompt": prompt,
            "prompt_ids": r.prompt_ids,
            "token_ids": r.token_ids,
            "text": r.text,
        })
        .to_string()
    });
    write_lines(output, lines, journal)
}

/// The journal of a job that writes `output` (`OUTPUT.partial`; none for stdout), saying
/// when the job resumes or replaces another job's journal.
pub fn open_journal(
    engine: &Engine,
    output: Option<&Path>,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> Result<Option<JobJournal>> {
    let Some(output) = output else {
        return Ok(None);
    };
    let mut path = output.as_os_str().to_owned();
    path.push(".partial");
    let journal = engine.open_journal(Path::new(&path), prompts, cfg)?;
    let at = journal.path().display();
    if journal.resumed() > 0 {
        let (done, n) = (journal.resumed(), prompts.len());
        eprintln!("datm: resuming from {at}: {done} of {n} prompts were decoded before");
    } else if journal.replaced() {
        eprintln!("datm: {at} was another job's (model, settings or input differ): replaced");
    }
    Ok(Some(journal))
}

/// Decodes `prompts` with a progress bar counting `what`, keeping each finished prompt in
/// `journal` if there is one.
pub fn decode(
    engine: &Engine,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    journal: Option<&mut JobJournal>,
    what: &str,
) -> Result<Vec<TextGeneration>> {
    let bar = super::progress(prompts.len(), what)?;
    let mut on_done = |done: usize| bar.set_position(done as u64);
    let results = match journal {
        Some(j) => engine.generate_texts_journaled(prompts, cfg, j, &mut on_done),
        None => engine.generate_texts(prompts, cfg, &mut on_done),
    }?;
    bar.finish_and_clear();
    Ok(results)
}

/// Writes `lines` to `path` crash-safely and then removes the job's journal, or to stdout.
pub fn write_lines(
    path: Option<&Path>,
    lines: impl Iterator<Item = String>,
    journal: Option<JobJournal>,
) -> Result<()> {
    let Some(path) = path else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for line in lines {
            writeln!(out, "{line}")?;
        }
        return Ok(out.flush()?);
    };
    let mut text = String::new();
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    datm_fsio::write_atomic(path, text.as_bytes())?;
    journal.map_or(Ok(()), JobJournal::remove)
}

/// The adapter id `datm generate` / `datm translate` give their `--adapter`.
const ADAPTER: &str = "adapter";

/// Loads the model once and, if `--adapter` is given, attaches it; returns the engine and the
/// adapter id to decode with. The engine lives until the process exits, which returns its
/// memory to the system at once: freeing it piece by piece (a quarter-million-token
/// vocabulary, hundreds of MB of packed weights) took 0.15 s after the work was done.
pub fn load_engine(args: &ModelArgs) -> Result<(&'static Engine, Option<&'static str>)> {
    let spec = LoadSpec::parse(&args.device, args.dtype.as_deref())?;
    let mut engine = Engine::load(&args.model, &spec)?;
    let adapter = match &args.adapter {
        Some(dir) => {
            engine.attach(ADAPTER, dir)?;
            Some(ADAPTER)
        }
        None => None,
    };
    Ok((Box::leak(Box::new(engine)), adapter))
}

fn parse_early_stopping(s: &str) -> Result<EarlyStopping> {
    Ok(match s {
        "true" => EarlyStopping::True,
        "false" => EarlyStopping::False,
        "never" => EarlyStopping::Never,
        other => bail!("unknown --early-stopping {other:?} (expected true, false or never)"),
    })
}

fn read_prompts(path: &Path) -> Result<Vec<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut prompts = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: invalid JSON", path.display(), i + 1))?;
        let p = v.get("prompt").and_then(|p| p.as_str()).with_context(|| {
            format!(
                "{}:{}: expected an object with a string \"prompt\"",
                path.display(),
                i + 1
            )
        })?;
        prompts.push(p.to_string());
    }
    Ok(prompts)
}
