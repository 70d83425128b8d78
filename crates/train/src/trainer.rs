//! The training loop: sequences → step plan → forward/backward with accumulation → clipping →
//! AdamW → checkpoints, logs and the final PEFT adapter.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use datm_adapter::Adapter;
use datm_data::prompt::Example;
use datm_model::{LoadOptions, Model};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::batching::{plan, Step};
use crate::checkpoint::{self, TrainerState};
use crate::config::{Precision, TrainConfig};
use crate::data::TrainData;
use crate::loss::{cross_entropy_sum, head_cross_entropy_sum};
use crate::metrics::{EvalRecord, Metrics, StepRecord};
use crate::optim::{clip_grad_norm, AdamW, InverseSqrtSchedule, LossScaler};
use crate::progress::Progress;
use crate::sequences::{Sequence, SequenceBuilder};

/// Name under which the trained adapter is attached to the model.
pub const ADAPTER_NAME: &str = "datm-train";
/// Per-step JSONL log in the output directory.
pub const LOG_FILE: &str = "train_log.jsonl";
/// Run summary in the output directory.
pub const SUMMARY_FILE: &str = "training.json";

/// What a finished run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// The PEFT adapter directory (the output directory).
    pub adapter_dir: PathBuf,
    /// Optimizer steps of the whole run.
    pub steps: usize,
    /// Step the run resumed from, if it did.
    pub resumed_from: Option<usize>,
    /// SHA-256 over the training sequences in input order.
    pub data_fingerprint: String,
    /// Training sequences.
    pub sequences: usize,
    /// Metrics over the whole run.
    pub metrics: Metrics,
}

/// Loads data and model as `config` says and trains; the library entry point (`datm train`,
/// pool training). Data problems are reported before the model is loaded.
pub fn train(config: &TrainConfig, progress: &mut dyn Progress) -> Result<TrainOutcome> {
    config.validate()?;
    let data = crate::data::load(&config.data, &config.directions)?;
    let mut model = load_model(&config.model, config.precision, &config.device)?;
    progress.message(&arithmetic(config.precision, &config.device)?);
    train_model(&mut model, &data, config, progress)
}

/// Whether training on `device` runs on datm's CPU kernels: the CPU, its fast paths on
/// ([`datm_model::fused::cpu_fast_paths`]).
fn on_cpu_kernels(device: &Device) -> bool {
    device.is_cpu() && datm_model::fused::cpu_fast_paths()
}

/// What [`load_model`] makes of `precision` on `device`, in words.
fn arithmetic(precision: Precision, device: &str) -> Result<String> {
    let name = match precision {
        Precision::F32 => "f32",
        Precision::Bf16 => "bf16",
        Precision::F16 => "f16 with loss scaling",
    };
    if !on_cpu_kernels(&datm_model::parse_device(device)?) {
        return Ok(format!("training in {name} on {device}"));
    }
    let path = datm_model::cpu::active()?;
    Ok(match precision {
        Precision::F32 => format!("training in f32 on the CPU's {path} kernels"),
        Precision::Bf16 => format!(
            "training in bf16 mixed precision on the CPU's {path} kernels: bf16 products with \
             f32 sums in the frozen layers, everything else f32"
        ),
        Precision::F16 => format!("training in {name} on the CPU (candle's f16 ops)"),
    })
}

/// Loads a base model to train in `precision` on `device` (dequantized, GGUF Q8_0 kept
/// 8-bit where that stays exact). On the CPU with its fast paths on
/// ([`datm_model::fused::cpu_fast_paths`]), bf16 is mixed precision, as PyTorch's bf16
/// autocast: an f32 model whose frozen layers multiply bf16-rounded operands on the CPU's
/// bf16 kernels (AMX tiles where the CPU has them) with f32 sums, the rest in f32. Elsewhere
/// every weight and activation is `precision`.
pub fn load_model(path: &Path, precision: Precision, device: &str) -> Result<Model> {
    let device = datm_model::parse_device(device)?;
    let mixed = precision == Precision::Bf16 && on_cpu_kernels(&device);
    let dtype = if mixed { DType::F32 } else { precision.dtype() };
    let opts = LoadOptions {
        dtype: Some(dtype),
        device,
        quantized: false,
        keep_int_blocks: true,
    };
    let mut model = Model::load(path, &opts)
        .with_context(|| format!("loading base model {}", path.display()))?;
    if mixed {
        model.set_frozen_precision(datm_model::kernels::Precision::Bf16);
    }
    Ok(model)
}

/// Trains an adapter on an already loaded model (which must have been loaded dequantized);
/// pools call this once per adapter with the same model. The adapter is left attached under
/// [`ADAPTER_NAME`] and saved to `config.out`.
pub fn train_model(
    model: &mut Model,
    data: &TrainData,
    config: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome> {
    config.validate()?;
    let builder = sequence_builder(model, config)?;
    let train = build_sequences(&builder, &data.train, "training")?;
    let mut valid = build_sequences(&builder, &data.valid, "validation")?;
    valid.truncate(config.max_eval_examples);
    let steps = plan(&train, &config.batch)?;
    let schedule = InverseSqrtSchedule::new(config.lr, config.warmup_ratio, steps.len());
    let data_fingerprint = fingerprint(&train);
    let run_fingerprint = run_fingerprint(config, &data_fingerprint)?;
    fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create {}", config.out.display()))?;

    let resume = resume_point(config, &run_fingerprint)?;
    let peft = config
        .lora
        .peft_config(Some(config.model.display().to_string()));
    match (&resume, &config.init_adapter) {
        (Some(ck), _) => model.attach_adapter(ADAPTER_NAME, &with_config(&ck.adapter, &peft))?,
        (None, Some(dir)) => {
            model.attach_adapter(ADAPTER_NAME, &with_config(&Adapter::load(dir)?, &peft))?
        }
        (None, None) => model.new_adapter(ADAPTER_NAME, &peft, config.batch.seed)?,
    }
    model.set_active_adapter(Some(ADAPTER_NAME))?;
    let vars = model.lora_vars(ADAPTER_NAME);
    ensure!(
        !vars.is_empty(),
        "the adapter has no trainable LoRA weights"
    );
    let mut opt = AdamW::new(config.adamw, &vars)?;
    let (start, mut metrics) = match &resume {
        Some(ck) => {
            opt.load_state(&ck.optimizer, &ck.dir.display().to_string())?;
            progress.message(&format!(
                "resuming from {} (step {})",
                ck.dir.display(),
                ck.state.step
            ));
            (ck.state.step, ck.state.metrics.clone())
        }
        None => (0, Metrics::default()),
    };
    let mut scaler = match &resume {
        Some(ck) => ck.state.loss_scaler,
        None => (config.precision == Precision::F16).then(LossScaler::default),
    };
    let mut log = open_log(&config.out, start)?;
    let runner = StepRunner {
        model,
        vars: &vars,
        seqs: &train,
        seed: config.batch.seed,
        checkpointing: config.gradient_checkpointing,
    };
    progress.start(steps.len(), start);
    for (i, step) in steps.iter().enumerate().skip(start) {
        let record = runner.run(
            step,
            i,
            &schedule,
            config.max_grad_norm,
            &mut opt,
            scaler.as_mut(),
        )?;
        // Loss scaling rescues gradients, not a forward pass that overflows f16.
        ensure!(
            config.precision != Precision::F16 || record.loss.is_finite(),
            "step {}: the loss is not finite in f16: this model's activations overflow f16 \
             (Gemma models are known to); train with --dtype bf16 or f32",
            i + 1
        );
        writeln!(log, "{}", serde_json::to_string(&record)?)?;
        log.flush()?;
        metrics.record(&record);
        progress.step(&record, steps.len());
        let done = i + 1;
        let last = done == steps.len();
        if !valid.is_empty() && (last || (config.eval_steps > 0 && done % config.eval_steps == 0)) {
            let ev = EvalRecord {
                step: done,
                loss: runner.validation_loss(&valid)?,
                sequences: valid.len(),
            };
            progress.eval(&ev);
            metrics.evals.push(ev);
        }
        if last || (config.save_steps > 0 && done % config.save_steps == 0) {
            let state = TrainerState {
                step: done,
                total_steps: steps.len(),
                seed: config.batch.seed,
                run_fingerprint: run_fingerprint.clone(),
                metrics: metrics.clone(),
                loss_scaler: scaler,
            };
            let adapter = model.export_adapter(ADAPTER_NAME)?;
            checkpoint::save(
                &config.out,
                &adapter,
                &opt.state_tensors()?,
                &state,
                config.keep_checkpoints,
            )?;
        }
    }
    progress.finish();
    model.export_adapter(ADAPTER_NAME)?.save(&config.out)?;
    let outcome = TrainOutcome {
        adapter_dir: config.out.clone(),
        steps: steps.len(),
        resumed_from: resume.as_ref().map(|c| c.state.step),
        data_fingerprint,
        sequences: train.len(),
        metrics,
    };
    write_summary(config, &outcome)?;
    Ok(outcome)
}

/// The adapter's tensors under the run's PEFT config (scaling and dropout come from the run).
fn with_config(adapter: &Adapter, config: &datm_adapter::LoraConfig) -> Adapter {
    Adapter {
        config: config.clone(),
        modules: adapter.modules.clone(),
    }
}

fn sequence_builder<'a>(model: &'a Model, config: &TrainConfig) -> Result<SequenceBuilder<'a>> {
    let tok = model.tokenizer()?;
    let eos = model
        .config()
        .eos_token_ids
        .first()
        .or(tok.eos_ids().first())
        .copied();
    let eos = eos.with_context(|| {
        format!(
            "{}: the model defines no EOS token",
            model.source().display()
        )
    })?;
    // BOS exactly when the tokenizer adds one to a plain `tokenizer(text)` call, as HF does.
    let bos = if tok.adds_bos() { tok.bos_id() } else { None };
    SequenceBuilder::new(tok, bos, eos, config.template, config.limits)
}

/// Tokenizes examples, skipping those with an empty side; errors name the example.
fn build_sequences(b: &SequenceBuilder, examples: &[Example], what: &str) -> Result<Vec<Sequence>> {
    examples
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.src.trim().is_empty() && !e.tgt.trim().is_empty())
        .map(|(i, e)| {
            b.build(e)
                .with_context(|| format!("{what} example {} ({})", i + 1, e.direction))
        })
        .collect()
}

/// SHA-256 over directions, prompt lengths and token ids, in order.
fn fingerprint(seqs: &[Sequence]) -> String {
    let mut h = Sha256::new();
    for s in seqs {
        h.update(s.direction.to_string().as_bytes());
        h.update((s.prompt_len as u64).to_le_bytes());
        h.update((s.ids.len() as u64).to_le_bytes());
        for id in &s.ids {
            h.update(id.to_le_bytes());
        }
    }
    hex(&h.finalize())
}

fn run_fingerprint(config: &TrainConfig, data: &str) -> Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&config.identity()?)?);
    h.update(data.as_bytes());
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checkpoint to continue from: the newest one with `--resume`; without it an output
/// directory that already holds checkpoints is refused rather than silently mixed.
fn resume_point(
    config: &TrainConfig,
    run_fingerprint: &str,
) -> Result<Option<checkpoint::Checkpoint>> {
    if !config.resume {
        if let Some((step, dir)) = checkpoint::list(&config.out)?.pop() {
            bail!(
                "{} already holds checkpoint {} (step {step}); pass --resume to continue it or choose another --out",
                config.out.display(),
                dir.display()
            );
        }
        return Ok(None);
    }
    let Some(ck) = checkpoint::latest(&config.out)? else {
        return Ok(None);
    };
    ensure!(
        ck.state.run_fingerprint == run_fingerprint,
        "{}: checkpoint belongs to a run with other settings or data; resume needs the same model, data, directions and training options",
        ck.dir.display()
    );
    Ok(Some(ck))
}

/// Opens the JSONL step log, keeping only records of steps `<= done`.
fn open_log(out: &Path, done: usize) -> Result<File> {
    let path = out.join(LOG_FILE);
    let mut kept = Vec::new();
    if done > 0 && path.exists() {
        for line in BufReader::new(File::open(&path)?).lines() {
            let line = line?;
            let step = serde_json::from_str::<StepRecord>(&line)
                .map(|r| r.step)
                .unwrap_or(usize::MAX);
            if step <= done {
                kept.push(line);
            }
        }
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for line in kept {
        writeln!(f, "{line}")?;
    }
    Ok(f)
}

fn write_summary(config: &TrainConfig, outcome: &TrainOutcome) -> Result<()> {
    #[derive(Serialize)]
    struct Summary<'a> {
        config: &'a TrainConfig,
        data_fingerprint: &'a str,
        sequences: usize,
        steps: usize,
        resumed_from: Option<usize>,
        tokens_per_second: f64,
        metrics: &'a Metrics,
    }
    let s = Summary {
        config,
        data_fingerprint: &outcome.data_fingerprint,
        sequences: outcome.sequences,
        steps: outcome.steps,
        resumed_from: outcome.resumed_from,
        tokens_per_second: outcome.metrics.tokens_per_second(),
        metrics: &outcome.metrics,
    };
    let path = config.out.join(SUMMARY_FILE);
    Ok(datm_fsio::write_atomic(
        &path,
        &serde_json::to_vec_pretty(&s)?,
    )?)
}

/// One micro-batch, right-padded: ids and mask `[rows, width]`, the flat positions whose hidden
/// state predicts a label, and those labels.
pub struct MicroBatch {
    /// Token ids, padding filled with the row's last token.
    pub ids: Tensor,
    /// 1 on tokens, 0 on padding.
    pub mask: Tensor,
    /// `row * width + position` for every labelled prediction.
    pub positions: Tensor,
    /// The label predicted at each of `positions`.
    pub labels: Vec<u32>,
    /// Real tokens in the micro-batch.
    pub tokens: usize,
}

impl MicroBatch {
    /// Pads and indexes `rows` of `seqs` for `device`.
    pub fn new(seqs: &[Sequence], rows: &[usize], device: &Device) -> Result<Self> {
        let width = rows.iter().map(|&i| seqs[i].ids.len()).max().unwrap_or(0);
        let (mut ids, mut mask) = (
            Vec::with_capacity(rows.len() * width),
            Vec::with_capacity(rows.len() * width),
        );
        let (mut positions, mut labels, mut tokens) = (Vec::new(), Vec::new(), 0);
        for (r, &i) in rows.iter().enumerate() {
            let s = &seqs[i];
            let pad = *s.ids.last().expect("sequences end with EOS");
            ids.extend(
                s.ids
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(pad, width - s.ids.len())),
            );
            mask.extend((0..width).map(|p| u32::from(p < s.ids.len())));
            for (pos, label) in s.predictions() {
                positions.push((r * width + pos) as u32);
                labels.push(label);
            }
            tokens += s.ids.len();
        }
        let shape = (rows.len(), width);
        Ok(MicroBatch {
            ids: Tensor::from_vec(ids, shape, device)?,
            mask: Tensor::from_vec(mask, shape, device)?,
            positions: Tensor::from_vec(positions, labels.len(), device)?,
            labels,
            tokens,
        })
    }
}

/// Runs optimizer steps of one adapter on one model.
pub struct StepRunner<'a> {
    /// The model, with the adapter attached and active.
    pub model: &'a Model,
    /// The adapter's trainable variables, in optimizer order.
    pub vars: &'a [(String, Var)],
    /// The sequences that steps index into.
    pub seqs: &'a [Sequence],
    /// The run seed; each micro-batch's dropout seed derives from it, the step index and the
    /// micro-batch index (see [`dropout_seed`]), so a resumed run redraws the same masks.
    pub seed: u64,
    /// Activation checkpointing per decoder layer ([`Model::forward_train_checkpointed`]).
    pub checkpointing: bool,
}

impl StepRunner<'_> {
    /// One optimizer step (0-based index `index`): accumulate gradients over the micro-batches,
    /// each scaled by 1/(the step's target tokens), clip, update.
    pub fn run(
        &self,
        step: &Step,
        index: usize,
        schedule: &InverseSqrtSchedule,
        max_grad_norm: f64,
        opt: &mut AdamW,
        mut scaler: Option<&mut LossScaler>,
    ) -> Result<StepRecord> {
        let t0 = Instant::now();
        let norm = step.target_tokens as f64;
        // A power of two: scaling and unscaling are exact.
        let scale = scaler.as_ref().map_or(1.0, |s| s.scale);
        let mut grads: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        let (mut loss_sum, mut tokens) = (0f64, 0usize);
        for (j, rows) in step.micro_batches.iter().enumerate() {
            let mb = MicroBatch::new(self.seqs, rows, self.model.device())?;
            let seed = dropout_seed(self.seed, index, j);
            let (sum, store) = self.gradients(&mb, seed, norm / scale)?;
            loss_sum += sum;
            for ((name, var), acc) in self.vars.iter().zip(grads.iter_mut()) {
                // Gradients carry the op graph that made them (and through it the whole
                // forward pass); detach so that nothing outlives the micro-batch.
                let g = store
                    .get(var)
                    .with_context(|| format!("no gradient reached {name}"))?
                    .detach();
                *acc = Some(match acc.take() {
                    Some(a) => (a + g)?,
                    None => g,
                });
            }
            tokens += mb.tokens;
        }
        let mut grads = grads
            .into_iter()
            .map(|g| {
                let g = g.expect("every step has a micro-batch");
                Ok(if scale == 1.0 { g } else { (g / scale)? })
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let grad_norm = if max_grad_norm > 0.0 {
            clip_grad_norm(&mut grads, max_grad_norm)?
        } else {
            clip_grad_norm(&mut grads, f64::INFINITY)?
        };
        // Skipped steps do not advance the schedule (HF's Trainer under a GradScaler).
        let lr = schedule.lr(index - scaler.as_ref().map_or(0, |s| s.skipped));
        let stepped = scaler
            .as_mut()
            .is_none_or(|s| s.update(grad_norm.is_finite()));
        if stepped {
            opt.step(self.vars, &grads, lr)?;
        }
        Ok(StepRecord {
            step: index + 1,
            epoch: step.epoch,
            loss: loss_sum / norm,
            lr,
            grad_norm,
            sequences: step.micro_batches.iter().map(Vec::len).sum(),
            tokens,
            target_tokens: step.target_tokens,
            seconds: t0.elapsed().as_secs_f64(),
            loss_scale: scaler.map(|_| scale),
            skipped: !stepped,
        })
    }

    /// The summed loss of micro-batch `mb` (LoRA dropout masks from `seed`) and the
    /// gradients of it divided by `norm`.
    pub fn gradients(&self, mb: &MicroBatch, seed: u64, norm: f64) -> Result<(f64, GradStore)> {
        if !self.checkpointing {
            let sum = summed_loss(self.model, mb, seed)?;
            return Ok((sum.to_scalar::<f32>()? as f64, (sum / norm)?.backward()?));
        }
        let pass = self
            .model
            .forward_train_checkpointed(&mb.ids, &mb.mask, seed)?;
        let sum = loss_at_labels(self.model, pass.hidden(), mb)?;
        let vars: Vec<&Var> = self.vars.iter().map(|(_, v)| v).collect();
        let store = pass.backward(&(&sum / norm)?, &vars)?;
        Ok((sum.to_scalar::<f32>()? as f64, store))
    }

    /// Mean token cross-entropy over `valid` (inference mode: no dropout).
    pub fn validation_loss(&self, valid: &[Sequence]) -> Result<f64> {
        let (mut sum, mut n) = (0f64, 0usize);
        for s in valid {
            let logits = self.model.logits(&s.ids, Some(ADAPTER_NAME))?;
            let logits = logits.narrow(0, s.prompt_len - 1, s.target_len())?;
            let labels: Vec<u32> = s.predictions().map(|(_, l)| l).collect();
            sum += cross_entropy_sum(&logits.detach(), &labels)?.to_scalar::<f32>()? as f64;
            n += labels.len();
        }
        Ok(sum / n.max(1) as f64)
    }
}

/// The LoRA dropout seed of micro-batch `micro` of step `step` in a run seeded `seed`.
pub fn dropout_seed(seed: u64, step: usize, micro: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((step as u64) << 24) ^ micro as u64
}

/// Summed cross-entropy of a micro-batch, with the LM head applied only at labelled positions;
/// `dropout_seed` fixes the LoRA dropout masks.
pub fn summed_loss(model: &Model, mb: &MicroBatch, dropout_seed: u64) -> Result<Tensor> {
    let hidden = model.forward_train(&mb.ids, &mb.mask, dropout_seed)?;
    loss_at_labels(model, &hidden, mb)
}

/// Summed cross-entropy of the final hidden states `[rows, width, hidden]` of micro-batch
/// `mb`, with the LM head applied only at labelled positions.
fn loss_at_labels(model: &Model, hidden: &Tensor, mb: &MicroBatch) -> Result<Tensor> {
    let (rows, width, dim) = hidden.dims3()?;
    let picked = hidden
        .reshape((rows * width, dim))?
        .index_select(&mb.positions, 0)?;
    head_cross_entropy_sum(model, &picked, &mb.labels)
}
