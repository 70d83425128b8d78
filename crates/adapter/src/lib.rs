//! datm-adapter: the PEFT LoRA adapter format and adapter merging.
//!
//! - [`LoraConfig`]: `adapter_config.json` with PEFT's target-module, rank/alpha-pattern and scaling rules.
//! - [`Adapter`]: config + per-module [`LoraPair`]s, loaded from and saved to a PEFT adapter directory.
//! - [`merge()`]: linear / TIES / DARE / magnitude-prune merges in the exact ΔW space or PEFT's factor space.

#![forbid(unsafe_code)]

pub mod config;
pub mod format;

pub use config::{LayerSelection, LayersPattern, LoraConfig, TargetModules, CONFIG_FILE};
pub use format::{Adapter, LoraPair, WEIGHTS_FILE};
pub mod merge;
pub mod merge_utils;
pub mod svd;

pub use merge::{merge, MergeOptions, Method, Space};
pub use merge_utils::MajoritySign;
