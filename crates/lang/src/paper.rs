//! The numbers the paper fixes, in one place; every other crate's default reads them.
//!
//! Paper §2.3 ("Training Configurations"): "all models are trained with a learning rate of
//! 2e-3 using an inverse square root scheduler, a weight decay of 0.01, and a warmup ratio of
//! 0.01. The total batch size is set to 128. Fine-tuning is conducted for 1 epoch, with both
//! max_new_tokens and max_source_length set to 512", with LoRA as in Xu et al. (2024a, ALMA):
//! rank 16, α 32.
//! Paper §2.4 ("Evaluation"): "We set the number of beams to 5 and both max_new_tokens and
//! max_source_tokens to 512."
//! The inverse-square-root schedule is the only one the trainer has (`datm_train::optim`).
//! Paper §4.3: DATM merges each group's XX→En adapters with TIES.

/// Peak learning rate (§2.3).
pub const LEARNING_RATE: f64 = 2e-3;
/// Decoupled AdamW weight decay (§2.3).
pub const WEIGHT_DECAY: f64 = 0.01;
/// Warm-up steps as a fraction of all optimizer steps (§2.3).
pub const WARMUP_RATIO: f64 = 0.01;
/// Sequences per optimizer step, summed over devices and gradient accumulation (§2.3).
pub const BATCH_SIZE: usize = 128;
/// Passes over the training data (§2.3).
pub const EPOCHS: usize = 1;
/// LoRA rank (§2.3, following ALMA).
pub const LORA_RANK: usize = 16;
/// LoRA α, twice the rank (§2.3, following ALMA).
pub const LORA_ALPHA: f64 = 32.0;
/// Prompt tokens at most, in training and decoding (§2.3 `max_source_length`, §2.4
/// `max_source_tokens`).
pub const MAX_SOURCE_LENGTH: usize = 512;
/// New (target) tokens at most, in training and decoding (§2.3 and §2.4 `max_new_tokens`).
pub const MAX_NEW_TOKENS: usize = 512;
/// Beams in evaluation decoding (§2.4).
pub const NUM_BEAMS: usize = 5;
/// Merge method of DATM's group-wise merging (§4.3).
pub const MERGE_METHOD: &str = "ties";
