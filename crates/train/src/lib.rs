//! datm-train: LoRA fine-tuning for translation the way the paper (§2.3) and ALMA do it.
//!
//! Examples are ALMA prompts followed by the target and EOS, with the loss on the target and EOS
//! only; optimisation is torch's AdamW with HF's `inverse_sqrt` schedule, gradient accumulation to
//! an effective batch, global-norm clipping; checkpoints resume bit-identically.

pub mod defaults;
pub mod optim;
pub mod loss;
pub mod batching;
pub mod sequences;
