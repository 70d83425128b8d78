//! `datm comet`: a drop-in for unbabel-comet's `comet-score` (fp32 API scores), scoring
//! several hypothesis files against one source/reference set with each distinct sentence
//! embedded once.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use datm_comet::{score_cached, Comet, EmbeddingCache, LoadOptions};
use datm_metrics::pyfmt::py_float_repr;
use datm_metrics::text::py_strip;
use datm_model::candle_core::DType;

/// Arguments of `datm comet`.
#[derive(clap::Args, Debug)]
pub struct CometArgs {
    /// COMET model folder: hparams.yaml + checkpoints/model.ckpt.
    #[arg(long)]
    model: PathBuf,
    /// Source segments, one per line.
    #[arg(short = 's', long = "sources")]
    sources: PathBuf,
    /// Hypothesis files, one segment per line each.
    #[arg(short = 't', long = "translations", num_args = 1.., required = true)]
    translations: Vec<PathBuf>,
    /// References (required by reference-based models, refused by QE models).
    #[arg(short = 'r', long = "references")]
    references: Option<PathBuf>,
    /// Sentences per encoder batch (on the CPU, where a batch's tokens run packed without
    /// padding, f32 batches grow to 1024 tokens at least; the scores do not change).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Where to run: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Matmul precision: f32 (exact: unbabel-comet's fp32 `predict`; its comet-score command
    /// runs the model in fp16) or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Print one JSON object per hypothesis file: {"hyp", "scores", "system_score"}.
    #[arg(long)]
    json: bool,
    /// Folder with the encoder's config.json and tokenizer.json (default: the model's
    /// `pretrained_model` as a local folder or in the HF hub cache).
    #[arg(long)]
    encoder: Option<PathBuf>,
}

/// Runs `datm comet`.
pub fn run(args: CometArgs) -> Result<()> {
    let dtype = match args.dtype.as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        other => bail!("unknown --dtype {other:?} (expected f32 or bf16)"),
    };
    let src = read_segments(&args.sources)?;
    let refs = args.references.as_deref().map(read_segments).transpose()?;
    let hyps = args
        .translations
        .iter()
        .map(|p| read_segments(p))
        .collect::<Result<Vec<_>>>()?;
    check_counts(&args, &src, refs.as_deref(), &hyps)?;
    let opts = LoadOptions {
        encoder_dir: args.encoder.clone(),
        device: datm_model::parse_device(&args.device)?,
        dtype,
    };
    let model = Comet::load(&args.model, &opts)
        .with_context(|| format!("loading the COMET model {}", args.model.display()))?;
    // Every distinct sentence is embedded once; the bar counts them as the encoder goes.
    let bar = super::progress(0, "distinct sentences embedded")?;
    let results = score_cached(
        &model,
        &mut EmbeddingCache::new(usize::MAX),
        &src,
        refs.as_deref(),
        &hyps,
        args.batch_size,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let names: Vec<String> = args
        .translations
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if args.json {
        for (name, r) in names.iter().zip(&results) {
            let scores: Vec<String> = r.scores.iter().map(|&s| py_float_repr(s)).collect();
            println!(
                "{{\"hyp\": {}, \"scores\": [{}], \"system_score\": {}}}",
                serde_json::to_string(name)?,
                scores.join(", "),
                py_float_repr(r.system_score)
            );
        }
        return Ok(());
    }
    // comet-score's order: segment i of every file, then each file's system score.
    for i in 0..src.len() {
        for (name, r) in names.iter().zip(&results) {
            println!("{name}\tSegment {i}\tscore: {:.4}", r.scores[i]);
        }
    }
    for (name, r) in names.iter().zip(&results) {
        println!("{name}\tscore: {:.4}", r.system_score);
    }
    Ok(())
}

fn check_counts(
    args: &CometArgs,
    src: &[String],
    refs: Option<&[String]>,
    hyps: &[Vec<String>],
) -> Result<()> {
    let n = src.len();
    let mut files: Vec<(&Path, usize)> = args
        .translations
        .iter()
        .map(PathBuf::as_path)
        .zip(hyps.iter().map(Vec::len))
        .collect();
    if let (Some(p), Some(r)) = (&args.references, refs) {
        files.push((p, r.len()));
    }
    for (p, len) in files {
        if len != n {
            bail!(
                "{} has {len} lines but the sources {} have {n}",
                p.display(),
                args.sources.display()
            );
        }
    }
    Ok(())
}

/// Lines as comet-score reads them: UTF-8, universal newlines, each `strip()`ped.
fn read_segments(path: &Path) -> Result<Vec<String>> {
    let text = datm_data::error::read_utf8(path)?;
    if text.is_empty() {
        bail!("{} is empty", path.display());
    }
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let body = unified.strip_suffix('\n').unwrap_or(&unified);
    Ok(body.split('\n').map(|l| py_strip(l).to_string()).collect())
}
