//! Training defaults fixed by the paper and by the ALMA recipe it follows.
//!
//! Paper §2.3 ("Training Configurations"): learning rate 2e-3, inverse square root schedule,
//! weight decay 0.01, warm-up ratio 0.01, total batch size 128, one epoch, LoRA.
//! ALMA's recipe (mission notes §1.5–1.6, `runs/parallel_ft_lora.sh`): LoRA r 16, α 32,
//! dropout 0.05 on all seven linear projections, gradient clipping 1.0, seed 42, source and
//! target limits of 256 tokens each. AdamW's β and ε are torch's defaults (HF `adamw_torch`).

/// Peak learning rate (paper §2.3).
pub const LEARNING_RATE: f64 = 2e-3;
/// Warm-up steps as a fraction of all optimizer steps, rounded up (paper §2.3).
pub const WARMUP_RATIO: f64 = 0.01;
/// Decoupled AdamW weight decay (paper §2.3).
pub const WEIGHT_DECAY: f64 = 0.01;
/// Sequences per optimizer step, summed over gradient accumulation (paper §2.3).
pub const BATCH_SIZE: usize = 128;
/// Sequences per forward/backward pass; only memory and speed depend on it.
pub const MICRO_BATCH_SIZE: usize = 8;
/// Passes over the training data (paper §2.3).
pub const EPOCHS: usize = 1;
/// AdamW first-moment decay (torch default).
pub const BETA1: f64 = 0.9;
/// AdamW second-moment decay (torch default).
pub const BETA2: f64 = 0.999;
/// AdamW denominator epsilon (torch default).
pub const EPS: f64 = 1e-8;
/// Global gradient-norm clip (ALMA's DeepSpeed config).
pub const MAX_GRAD_NORM: f64 = 1.0;
/// LoRA rank (ALMA, mission notes §1.5).
pub const RANK: usize = 16;
/// LoRA α = 2 × rank (ALMA, mission notes §1.5).
pub const ALPHA: f64 = 32.0;
/// LoRA dropout on the adapter input (ALMA, mission notes §1.5).
pub const DROPOUT: f64 = 0.05;
/// PEFT's `all-linear` for LLaMA/Gemma: every projection but the LM head (mission notes §1.5).
pub const TARGET_MODULES: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];
/// Random seed (ALMA run scripts).
pub const SEED: u64 = 42;
/// Maximum prompt tokens, BOS included (ALMA run scripts).
pub const MAX_SOURCE_LENGTH: usize = 256;
/// Maximum target tokens, EOS included (ALMA run scripts).
pub const MAX_TARGET_LENGTH: usize = 256;
/// Checkpoints kept on disk (ALMA's `save_total_limit`).
pub const KEEP_CHECKPOINTS: usize = 1;
/// Validation sequences scored at most (validation runs full-sequence inference logits, so it
/// is kept small; datm's own choice, not the paper's).
pub const MAX_EVAL_EXAMPLES: usize = 64;
