//! Trainer settings shared by `datm pool train` flags (with the `clap` feature, which only
//! the CLI turns on) and the `[train]` table of an experiment file: every field overrides the paper's default (datm-train's defaults
//! module) only when given.

use std::path::PathBuf;

use datm_train::{Precision, TrainConfig};
use serde::{Deserialize, Serialize};

/// Overrides of the paper's training recipe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    /// Peak learning rate (paper: 2e-3).
    #[cfg_attr(feature = "clap", arg(long))]
    pub lr: Option<f64>,
    /// Warm-up fraction of the steps (paper: 0.01).
    #[cfg_attr(feature = "clap", arg(long))]
    pub warmup_ratio: Option<f64>,
    /// Effective batch size in sequences (paper: 128).
    #[cfg_attr(feature = "clap", arg(long))]
    pub batch_size: Option<usize>,
    /// Sequences per forward/backward pass.
    #[cfg_attr(feature = "clap", arg(long))]
    pub micro_batch_size: Option<usize>,
    /// Epochs (paper: 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub epochs: Option<usize>,
    /// Stop after this many optimizer steps.
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_steps: Option<usize>,
    /// LoRA rank (paper: 16).
    #[cfg_attr(feature = "clap", arg(long))]
    pub rank: Option<usize>,
    /// LoRA alpha (paper: 2·rank).
    #[cfg_attr(feature = "clap", arg(long))]
    pub alpha: Option<f64>,
    /// LoRA dropout (paper: 0.05).
    #[cfg_attr(feature = "clap", arg(long))]
    pub dropout: Option<f64>,
    /// Adapted modules, comma-separated (paper: all linear layers).
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ','))]
    pub target_modules: Option<Vec<String>>,
    /// Compute precision: f32, bf16 (on the CPU mixed precision, as `datm train --dtype bf16`)
    /// or f16 (with loss scaling).
    #[cfg_attr(feature = "clap", arg(long))]
    pub dtype: Option<String>,
    /// Data-order and initialisation seed (paper: 42).
    #[cfg_attr(feature = "clap", arg(long))]
    pub seed: Option<u64>,
    /// Checkpoint every this many steps (0: only at the end).
    #[cfg_attr(feature = "clap", arg(long))]
    pub save_steps: Option<usize>,
    /// Prompt tokens at most, BOS included (paper: 512).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_source_length: Option<usize>,
    /// Target tokens at most, EOS included (paper: 512).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_target_length: Option<usize>,
    /// Validation sequences used for the validation loss (0: no validation).
    #[cfg_attr(feature = "clap", arg(long))]
    pub eval_examples: Option<usize>,
    /// Activation checkpointing per decoder layer: the same gradients, far less memory, one
    /// more forward pass per step.
    #[cfg_attr(feature = "clap", arg(long))]
    pub gradient_checkpointing: bool,
}

impl TrainSettings {
    /// The trainer configuration for `model` with these overrides; directions, data and
    /// output are filled in per adapter.
    pub fn config(&self, model: PathBuf) -> anyhow::Result<TrainConfig> {
        let mut c = TrainConfig::new(model, PathBuf::new(), Vec::new(), PathBuf::new());
        set(&mut c.lr, self.lr);
        set(&mut c.warmup_ratio, self.warmup_ratio);
        set(&mut c.batch.batch_size, self.batch_size);
        set(&mut c.batch.micro_batch_size, self.micro_batch_size);
        set(&mut c.batch.epochs, self.epochs);
        if self.max_steps.is_some() {
            c.batch.max_steps = self.max_steps;
        }
        if let Some(r) = self.rank {
            c.lora.rank = r;
            c.lora.alpha = 2.0 * r as f64;
        }
        set(&mut c.lora.alpha, self.alpha);
        set(&mut c.lora.dropout, self.dropout);
        set(&mut c.lora.target_modules, self.target_modules.clone());
        if let Some(d) = &self.dtype {
            c.precision = Precision::from_name(d)?;
        }
        set(&mut c.batch.seed, self.seed);
        set(&mut c.save_steps, self.save_steps);
        set(&mut c.limits.max_source_length, self.max_source_length);
        set(&mut c.limits.max_target_length, self.max_target_length);
        set(&mut c.max_eval_examples, self.eval_examples);
        c.gradient_checkpointing = self.gradient_checkpointing;
        if c.batch.micro_batch_size > c.batch.batch_size {
            c.batch.micro_batch_size = c.batch.batch_size;
        }
        Ok(c)
    }

    /// The flags that reproduce these settings on a `datm pool train` command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push(format!("--{flag}"));
                out.push(v);
            }
        };
        push("lr", self.lr.map(|v| v.to_string()));
        push("warmup-ratio", self.warmup_ratio.map(|v| v.to_string()));
        push("batch-size", self.batch_size.map(|v| v.to_string()));
        push(
            "micro-batch-size",
            self.micro_batch_size.map(|v| v.to_string()),
        );
        push("epochs", self.epochs.map(|v| v.to_string()));
        push("max-steps", self.max_steps.map(|v| v.to_string()));
        push("rank", self.rank.map(|v| v.to_string()));
        push("alpha", self.alpha.map(|v| v.to_string()));
        push("dropout", self.dropout.map(|v| v.to_string()));
        push(
            "target-modules",
            self.target_modules.as_ref().map(|v| v.join(",")),
        );
        push("dtype", self.dtype.clone());
        push("seed", self.seed.map(|v| v.to_string()));
        push("save-steps", self.save_steps.map(|v| v.to_string()));
        push(
            "max-source-length",
            self.max_source_length.map(|v| v.to_string()),
        );
        push(
            "max-target-length",
            self.max_target_length.map(|v| v.to_string()),
        );
        push("eval-examples", self.eval_examples.map(|v| v.to_string()));
        if self.gradient_checkpointing {
            out.push("--gradient-checkpointing".into());
        }
        out
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_only_what_is_given() {
        let s = TrainSettings {
            rank: Some(8),
            batch_size: Some(4),
            max_steps: Some(3),
            eval_examples: Some(0),
            ..Default::default()
        };
        let c = s.config("m".into()).unwrap();
        let d = TrainConfig::new("m".into(), PathBuf::new(), vec![], PathBuf::new());
        assert_eq!((c.lora.rank, c.lora.alpha), (8, 16.0));
        assert_eq!(c.batch.batch_size, 4);
        assert_eq!(c.batch.micro_batch_size, 4, "clamped to the batch");
        assert_eq!(c.batch.max_steps, Some(3));
        assert_eq!(c.lr, d.lr);
        assert_eq!(
            s.to_args(),
            [
                "--batch-size",
                "4",
                "--max-steps",
                "3",
                "--rank",
                "8",
                "--eval-examples",
                "0"
            ]
        );
        assert!(!c.gradient_checkpointing);
        let ck = TrainSettings {
            gradient_checkpointing: true,
            ..Default::default()
        };
        assert!(ck.config("m".into()).unwrap().gradient_checkpointing);
        assert_eq!(ck.to_args(), ["--gradient-checkpointing"]);
        assert!(TrainSettings {
            dtype: Some("f8".into()),
            ..Default::default()
        }
        .config("m".into())
        .is_err());
    }
}
