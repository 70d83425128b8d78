//! datm-train: LoRA fine-tuning for translation the way the paper (§2.3) and ALMA do it.
//!
//! Examples are ALMA prompts followed by the target and EOS, with the loss on the target and EOS
//! only; optimisation is torch's AdamW with HF's `inverse_sqrt` schedule, gradient accumulation to
//! an effective batch, global-norm clipping; checkpoints resume bit-identically.

#![forbid(unsafe_code)]

pub mod batching;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod defaults;
pub mod kernel_check;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod sequences;
pub mod trainer;

pub use config::{LoraSettings, Precision, TrainConfig};
pub use data::TrainData;
pub use progress::{Console, Progress, Silent};
pub use trainer::{load_model, train, train_model, TrainOutcome};
