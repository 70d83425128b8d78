//! Training defaults: the paper's numbers ([`datm_lang::paper`], §2.3) and, where the paper
//! is silent, the ALMA recipe it follows (`runs/parallel_ft_lora.sh`): LoRA dropout 0.05 on
//! all seven linear projections, gradient clipping 1.0, seed 42. AdamW's β and ε are torch's
//! defaults (HF `adamw_torch`).

use datm_lang::paper;

/// Peak learning rate (paper §2.3).
pub const LEARNING_RATE: f64 = paper::LEARNING_RATE;
/// Warm-up steps as a fraction of all optimizer steps, rounded up (paper §2.3).
pub const WARMUP_RATIO: f64 = paper::WARMUP_RATIO;
/// Decoupled AdamW weight decay (paper §2.3).
pub const WEIGHT_DECAY: f64 = paper::WEIGHT_DECAY;
/// Sequences per optimizer step, summed over gradient accumulation (paper §2.3).
pub const BATCH_SIZE: usize = paper::BATCH_SIZE;
/// Sequences per forward/backward pass; only memory and speed depend on it.
pub const MICRO_BATCH_SIZE: usize = 8;
/// Passes over the training data (paper §2.3).
pub const EPOCHS: usize = paper::EPOCHS;
/// AdamW first-moment decay (torch default).
pub const BETA1: f64 = 0.9;
/// AdamW second-moment decay (torch default).
pub const BETA2: f64 = 0.999;
/// AdamW denominator epsilon (torch default).
pub const EPS: f64 = 1e-8;
/// Global gradient-norm clip (ALMA's DeepSpeed config).
pub const MAX_GRAD_NORM: f64 = 1.0;
/// LoRA rank (paper §2.3, following ALMA).
pub const RANK: usize = paper::LORA_RANK;
/// LoRA α = 2 × rank (paper §2.3, following ALMA).
pub const ALPHA: f64 = paper::LORA_ALPHA;
/// LoRA dropout on the adapter input (ALMA).
pub const DROPOUT: f64 = 0.05;
/// PEFT's `all-linear` for LLaMA/Gemma: every projection but the LM head (ALMA).
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
/// Maximum prompt tokens, BOS included (paper §2.3 `max_source_length`).
pub const MAX_SOURCE_LENGTH: usize = paper::MAX_SOURCE_LENGTH;
/// Maximum target tokens, EOS included (paper §2.3 `max_new_tokens`).
pub const MAX_TARGET_LENGTH: usize = paper::MAX_NEW_TOKENS;
/// Checkpoints kept on disk (ALMA's `save_total_limit`).
pub const KEEP_CHECKPOINTS: usize = 1;
/// Validation sequences scored at most (validation runs full-sequence inference logits, so it
/// is kept small; datm's own choice, not the paper's).
pub const MAX_EVAL_EXAMPLES: usize = 64;
