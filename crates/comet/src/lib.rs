//! COMET in Rust, exact to unbabel-comet 2.2.7's fp32 `predict`: reads COMET model folders
//! as the hub ships them (`hparams.yaml` + a Lightning `checkpoints/model.ckpt`, through a
//! restricted unpickler that runs no code), runs the XLM-R encoder, layer-wise attention
//! (softmax or sparsemax), average pooling and the estimator of `regression_metric` and
//! `referenceless_regression_metric`, and scores several hypothesis files against one
//! source/reference set, embedding each distinct sentence once (and, through an
//! [`EmbeddingCache`], once across calls).
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod hparams;
pub mod linear;
pub mod locate;
pub mod mix;
pub mod model;
pub mod pickle;
pub mod score;
pub mod xlmr;

pub use model::{Comet, LoadOptions};
pub use score::{score, score_cached, EmbeddingCache, Progress, SystemScore};
