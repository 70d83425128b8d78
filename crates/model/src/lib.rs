//! The model runtime: LLaMA-family and Gemma-3 decoders with LoRA, loaded from HF
//! safetensors directories or GGUF files, tokenizers, and decoding (greedy, sampling, beam).
//!
//! - [`Model::load`] reads an HF directory or a `.gguf` file ([`LoadOptions`]: dtype, device,
//!   quantized GGUF weights).
//! - [`Model::attach_adapter`] / [`Model::new_adapter`] make PEFT LoRA adapters resident; a
//!   request picks one by name ([`GenerationConfig::adapter`]).
//! - [`generate`] decodes token-id prompts (greedy, sampling, HF-exact beam search).
//! - [`Model::forward_train`] + [`Model::lm_logits`] + [`Model::lora_vars`] are the training
//!   interface; every op on that path has a backward pass.
//! - [`merge::save_merged`] folds an adapter into the base weights and writes an HF directory.

mod aligned;
pub mod amx;
pub mod arch;
pub mod attend;
mod blocks;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod device;
pub mod fused;
pub mod fused_check;
#[cfg(feature = "cuda")]
pub mod fused_cuda;
pub mod gemma3;
pub mod generate;
pub mod gguf;
pub mod hf;
pub mod kernels;
pub mod llama;
pub mod lora;
pub mod merge;
pub mod model;
pub mod nn;
pub mod pool;
mod simd;
pub mod tokenizer;
pub mod vmath;
pub mod weights;

pub use candle_core;
pub use config::{Arch, ModelConfig};
pub use device::parse_device;
pub use generate::{generate, generate_each, EarlyStopping, Generation, GenerationConfig};
pub use lora::{Adapters, Ctx, LoraLinear};
pub use model::{load_parts, LoadOptions, Model, ModelParts};
pub use nn::KvCache;
pub use weights::{Weight, WeightMap};

/// The number of parameters of a base model: a `.gguf` file or an HF directory.
pub fn parameter_count(path: &std::path::Path) -> anyhow::Result<u64> {
    if path.is_dir() {
        hf::parameter_count(path)
    } else {
        gguf::parameter_count(path)
    }
}
