//! Per-step records (the JSONL log) and the run's summary metrics.

use serde::{Deserialize, Serialize};

/// One optimizer step, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based optimizer step.
    pub step: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean token cross-entropy over the step's target tokens.
    pub loss: f64,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Sequences in the step.
    pub sequences: usize,
    /// Real (non-padding) tokens processed.
    pub tokens: usize,
    /// Target tokens (loss terms).
    pub target_tokens: usize,
    /// Wall-clock seconds of the step.
    pub seconds: f64,
    /// The loss scale of an f16 step (none at other precisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// The step's gradients were not finite (f16 overflow): no update was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// A validation measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Optimizer steps completed when measured.
    pub step: usize,
    /// Mean token cross-entropy over the validation targets.
    pub loss: f64,
    /// Validation sequences used.
    pub sequences: usize,
}

/// Accumulated metrics of a run (kept in checkpoints so a resumed run reports the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Loss of the first step.
    pub first_loss: Option<f64>,
    /// Loss of the last step.
    pub last_loss: Option<f64>,
    /// Real tokens processed.
    pub tokens: usize,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Validation measurements.
    pub evals: Vec<EvalRecord>,
}

impl Metrics {
    /// Folds in one step.
    pub fn record(&mut self, r: &StepRecord) {
        self.first_loss.get_or_insert(r.loss);
        self.last_loss = Some(r.loss);
        self.tokens += r.tokens;
        self.train_seconds += r.seconds;
    }

    /// Training throughput so far.
    pub fn tokens_per_second(&self) -> f64 {
        if self.train_seconds > 0.0 {
            self.tokens as f64 / self.train_seconds
        } else {
            0.0
        }
    }
}
