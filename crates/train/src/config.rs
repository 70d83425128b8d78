//! Everything a training run needs, serialisable into `training.json`.

use std::path::PathBuf;

use anyhow::{bail, ensure, Result};
use candle_core::DType;
use datm_adapter::{LoraConfig, TargetModules};
use datm_data::prompt::PromptTemplate;
use datm_lang::Direction;
use serde::{Deserialize, Serialize};

use crate::batching::BatchConfig;
use crate::defaults as d;
use crate::optim::AdamWConfig;
use crate::sequences::SequenceLimits;

/// Compute precision of the frozen base weights and activations (LoRA weights and optimizer
/// moments stay f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision, with dynamic loss scaling ([`crate::optim::LossScaler`]).
    F16,
}

impl Precision {
    /// Parses `f32`, `bf16` or `f16`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" => Ok(Precision::F16),
            other => bail!("unknown dtype {other:?}; expected f32, bf16 or f16"),
        }
    }

    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }
}

/// The adapter to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSettings {
    /// Rank r.
    pub rank: usize,
    /// α (scaling α/r, or α/√r with rsLoRA).
    pub alpha: f64,
    /// Dropout on the adapter input.
    pub dropout: f64,
    /// Module-name suffixes to adapt.
    pub target_modules: Vec<String>,
    /// Rank-stabilised scaling α/√r.
    pub rslora: bool,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings {
            rank: d::RANK,
            alpha: d::ALPHA,
            dropout: d::DROPOUT,
            target_modules: d::TARGET_MODULES.iter().map(|s| s.to_string()).collect(),
            rslora: false,
        }
    }
}

impl LoraSettings {
    /// The PEFT `adapter_config.json` for these settings.
    pub fn peft_config(&self, base_model: Option<String>) -> LoraConfig {
        let mut c = LoraConfig::new(
            self.rank,
            self.alpha,
            TargetModules::List(self.target_modules.clone()),
        );
        c.lora_dropout = self.dropout;
        c.use_rslora = self.rslora;
        c.base_model_name_or_path = base_model;
        c
    }
}

/// A training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Base model: HF directory or `.gguf` file (dequantized for training).
    pub model: PathBuf,
    /// Training data: an ALMA layout directory or a JSONL file.
    pub data: PathBuf,
    /// Directions to train, mixed into one stream.
    pub directions: Vec<Direction>,
    /// Output directory: the final PEFT adapter, `training.json`, logs and checkpoints.
    pub out: PathBuf,
    /// Start from this PEFT adapter instead of a fresh PEFT-initialised one.
    pub init_adapter: Option<PathBuf>,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up fraction of the optimizer steps.
    pub warmup_ratio: f64,
    /// Global gradient-norm clip (0 disables).
    pub max_grad_norm: f64,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Batch shape, epochs, seed.
    pub batch: BatchConfig,
    /// Adapter settings.
    pub lora: LoraSettings,
    /// Token limits.
    pub limits: SequenceLimits,
    /// Prompt format.
    pub template: PromptTemplate,
    /// Compute precision.
    pub precision: Precision,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub save_steps: usize,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Validation loss every this many steps (0: only at the end), on the data's valid split.
    pub eval_steps: usize,
    /// Validation sequences used at most (the first ones of the valid split).
    pub max_eval_examples: usize,
    /// Continue from the last checkpoint in `out`.
    pub resume: bool,
    /// Where to train: `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Keep only each decoder layer's input during the forward pass and run the layer again
    /// in backward (activation checkpointing): the same gradients for one more forward pass,
    /// with a layer's activations in memory instead of all layers'.
    #[serde(default)]
    pub gradient_checkpointing: bool,
}

fn cpu() -> String {
    "cpu".into()
}

impl TrainConfig {
    /// The paper's configuration for `model`, `data`, `directions` and `out`.
    pub fn new(model: PathBuf, data: PathBuf, directions: Vec<Direction>, out: PathBuf) -> Self {
        TrainConfig {
            model,
            data,
            directions,
            out,
            init_adapter: None,
            lr: d::LEARNING_RATE,
            warmup_ratio: d::WARMUP_RATIO,
            max_grad_norm: d::MAX_GRAD_NORM,
            adamw: AdamWConfig::default(),
            batch: BatchConfig {
                batch_size: d::BATCH_SIZE,
                micro_batch_size: d::MICRO_BATCH_SIZE,
                epochs: d::EPOCHS,
                max_steps: None,
                seed: d::SEED,
            },
            lora: LoraSettings::default(),
            limits: SequenceLimits {
                max_source_length: d::MAX_SOURCE_LENGTH,
                max_target_length: d::MAX_TARGET_LENGTH,
            },
            template: PromptTemplate::Alma,
            precision: Precision::F32,
            save_steps: 0,
            keep_checkpoints: d::KEEP_CHECKPOINTS,
            eval_steps: 0,
            max_eval_examples: d::MAX_EVAL_EXAMPLES,
            resume: false,
            device: cpu(),
            gradient_checkpointing: false,
        }
    }

    /// Checks values that would otherwise fail late or silently.
    pub fn validate(&self) -> Result<()> {
        ensure!(!self.directions.is_empty(), "no training directions given");
        datm_model::device::check_device_name(&self.device)?;
        ensure!(
            self.lr > 0.0 && self.lr.is_finite(),
            "--lr must be positive, got {}",
            self.lr
        );
        ensure!(
            (0.0..1.0).contains(&self.warmup_ratio),
            "--warmup-ratio must be in [0, 1)"
        );
        ensure!(self.lora.rank > 0, "--rank must be positive");
        ensure!(
            (0.0..1.0).contains(&self.lora.dropout),
            "--dropout must be in [0, 1)"
        );
        ensure!(
            !self.lora.target_modules.is_empty(),
            "--target-modules is empty"
        );
        ensure!(self.batch.batch_size > 0, "--batch-size must be positive");
        ensure!(
            self.batch.micro_batch_size > 0,
            "--micro-batch-size must be positive"
        );
        ensure!(
            self.batch.micro_batch_size <= self.batch.batch_size,
            "--micro-batch-size {} exceeds --batch-size {}",
            self.batch.micro_batch_size,
            self.batch.batch_size
        );
        ensure!(
            self.keep_checkpoints > 0,
            "--keep-checkpoints must be at least 1"
        );
        ensure!(
            self.limits.max_source_length > 0,
            "--max-source-length must be positive"
        );
        Ok(())
    }

    /// The settings that decide the trained weights (everything but output, logging,
    /// checkpoint cadence and activation checkpointing), as JSON: a resumed run must match
    /// them exactly.
    pub fn identity(&self) -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(self)?;
        if let Some(o) = v.as_object_mut() {
            for k in [
                "out",
                "save_steps",
                "keep_checkpoints",
                "eval_steps",
                "max_eval_examples",
                "resume",
                "gradient_checkpointing",
            ] {
                o.remove(k);
            }
        }
        Ok(v)
    }
}
