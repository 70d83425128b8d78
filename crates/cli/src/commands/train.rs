//! `datm train`: fine-tune one LoRA adapter on parallel data (paper §2.3, ALMA's recipe).
//!
//! The output directory becomes a PEFT adapter (`adapter_config.json`,
//! `adapter_model.safetensors`) with `training.json` (configuration, data fingerprint,
//! metrics), `train_log.jsonl` (one record per step) and `checkpoint-{step}/` directories.

use std::path::PathBuf;

use anyhow::{Context, Result};
use datm_data::prompt::PromptTemplate;
use datm_lang::Direction;
use datm_train::defaults as d;
use datm_train::{Console, Precision, TrainConfig};

/// Arguments of `datm train`; defaults are the paper's (see `datm_train::defaults`).
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Base model: an HF model directory or a `.gguf` file (dequantized for training).
    #[arg(long)]
    pub model: PathBuf,
    /// Training data: an ALMA layout directory (`deen/train.de-en.json`, …) or a JSONL file.
    #[arg(long)]
    pub data: PathBuf,
    /// Directions to train, mixed and shuffled together (`de-en,en-de`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub directions: Vec<Direction>,
    /// Output directory (the PEFT adapter, logs and checkpoints).
    #[arg(long)]
    pub out: PathBuf,
    /// Start from this PEFT adapter instead of a fresh one.
    #[arg(long)]
    pub init_adapter: Option<PathBuf>,
    /// Peak learning rate (inverse-sqrt schedule).
    #[arg(long, default_value_t = d::LEARNING_RATE)]
    pub lr: f64,
    /// Sequences per optimizer step (gradient accumulation fills it).
    #[arg(long, default_value_t = d::BATCH_SIZE)]
    pub batch_size: usize,
    /// Sequences per forward/backward pass.
    #[arg(long, default_value_t = d::MICRO_BATCH_SIZE)]
    pub micro_batch_size: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = d::EPOCHS)]
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides --epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Warm-up steps as a fraction of all steps (rounded up).
    #[arg(long, default_value_t = d::WARMUP_RATIO)]
    pub warmup_ratio: f64,
    /// Decoupled AdamW weight decay.
    #[arg(long, default_value_t = d::WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 disables).
    #[arg(long, default_value_t = d::MAX_GRAD_NORM)]
    pub max_grad_norm: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = d::RANK)]
    pub rank: usize,
    /// LoRA α.
    #[arg(long, default_value_t = d::ALPHA)]
    pub alpha: f64,
    /// LoRA dropout.
    #[arg(long, default_value_t = d::DROPOUT)]
    pub dropout: f64,
    /// Modules to adapt.
    #[arg(long, value_delimiter = ',', default_values_t = d::TARGET_MODULES.iter().map(|s| s.to_string()))]
    pub target_modules: Vec<String>,
    /// Rank-stabilised LoRA scaling (α/√r).
    #[arg(long)]
    pub rslora: bool,
    /// Random seed (shuffling, adapter initialisation).
    #[arg(long, default_value_t = d::SEED)]
    pub seed: u64,
    /// Checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_steps: usize,
    /// Checkpoints kept on disk.
    #[arg(long, default_value_t = d::KEEP_CHECKPOINTS)]
    pub keep_checkpoints: usize,
    /// Continue from the last checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Compute dtype of the base model: f32, bf16, or f16 (with dynamic loss scaling, as
    /// PyTorch's GradScaler). LoRA weights and optimizer moments stay f32. On the CPU, bf16
    /// is mixed precision, as PyTorch's bf16 autocast: the frozen layers' products take
    /// bf16-rounded operands (AMX tiles where the CPU has them) and sum in f32, the rest
    /// stays f32.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Prompt tokens at most (BOS included); longer sources are cut.
    #[arg(long, default_value_t = d::MAX_SOURCE_LENGTH)]
    pub max_source_length: usize,
    /// Target tokens at most (EOS included); longer targets are cut.
    #[arg(long, default_value_t = d::MAX_TARGET_LENGTH)]
    pub max_target_length: usize,
    /// Validation loss every N steps on the data's valid split (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_steps: usize,
    /// Validation sequences used at most.
    #[arg(long, default_value_t = d::MAX_EVAL_EXAMPLES)]
    pub max_eval_examples: usize,
    /// Prompt template: alma or x-alma-chat.
    #[arg(long, default_value = "alma")]
    pub template: String,
    /// Where to train: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Keep only each decoder layer's input in the forward pass and run the layer again in
    /// backward: the same gradients, far less activation memory, one more forward pass.
    #[arg(long)]
    pub gradient_checkpointing: bool,
}

impl TrainArgs {
    /// The library configuration these arguments describe.
    pub fn to_config(&self) -> Result<TrainConfig> {
        let mut c = TrainConfig::new(
            self.model.clone(),
            self.data.clone(),
            self.directions.clone(),
            self.out.clone(),
        );
        c.init_adapter = self.init_adapter.clone();
        c.lr = self.lr;
        c.warmup_ratio = self.warmup_ratio;
        c.max_grad_norm = self.max_grad_norm;
        c.adamw.weight_decay = self.weight_decay;
        c.batch.batch_size = self.batch_size;
        c.batch.micro_batch_size = self.micro_batch_size.min(self.batch_size);
        c.batch.epochs = self.epochs;
        c.batch.max_steps = self.max_steps;
        c.batch.seed = self.seed;
        c.lora.rank = self.rank;
        c.lora.alpha = self.alpha;
        c.lora.dropout = self.dropout;
        c.lora.target_modules = self.target_modules.clone();
        c.lora.rslora = self.rslora;
        c.limits.max_source_length = self.max_source_length;
        c.limits.max_target_length = self.max_target_length;
        c.template = PromptTemplate::from_name(&self.template).with_context(|| {
            format!(
                "unknown --template {:?}; expected alma or x-alma-chat",
                self.template
            )
        })?;
        c.precision = Precision::from_name(&self.dtype)?;
        c.save_steps = self.save_steps;
        c.keep_checkpoints = self.keep_checkpoints;
        c.eval_steps = self.eval_steps;
        c.max_eval_examples = self.max_eval_examples;
        c.device = self.device.clone();
        c.gradient_checkpointing = self.gradient_checkpointing;
        c.resume = self.resume;
        c.validate()?;
        Ok(c)
    }
}

/// Trains and prints a one-line summary.
pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.to_config()?;
    let outcome = datm_train::train(&config, &mut Console::new())?;
    let m = &outcome.metrics;
    println!(
        "trained {} steps on {} sequences: loss {:.4} -> {:.4}, {:.0} tokens/s; adapter in {}",
        outcome.steps,
        outcome.sequences,
        m.first_loss.unwrap_or(f64::NAN),
        m.last_loss.unwrap_or(f64::NAN),
        m.tokens_per_second(),
        outcome.adapter_dir.display()
    );
    if let Some(e) = m.evals.last() {
        println!("validation loss {:.4} at step {}", e.loss, e.step);
    }
    Ok(())
}
