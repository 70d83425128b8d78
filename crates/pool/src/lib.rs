//! datm-pool: direction-aware LoRA pools (paper §3–4).
//!
//! - [`plan`]: strategies (multilingual, group, separate, DAT, DATM, custom) → a validated
//!   [`PoolPlan`] manifest with a routing table.
//! - [`merge`]: merging inside a pool folder: DATM's group-wise merge, the [`MergeMode`]
//!   ablations, and the merges a hand-written plan declares.
//! - [`router`]: direction → adapter of a pool directory.
//! - [`report`]: per-direction score tables → Markdown/JSON reports, the paper's Table 1
//!   view and conflict/synergy deltas.

#![forbid(unsafe_code)]

pub mod evaluate;
pub mod fsutil;
pub mod merge;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod router;
pub mod score;
pub mod settings;
pub mod slurm;
pub mod sweep;
pub mod train;
pub mod trainer;
pub mod translate;

pub use plan::{AdapterSpec, MergeMode, MergeSettings, MergeSpec, PoolPlan, Strategy};
pub use router::{AdapterRef, Router};

use std::path::PathBuf;

/// Errors of this crate; each message names the direction, adapter or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// An invalid plan or a plan that does not fit its data.
    #[error("{0}")]
    Plan(String),
    /// A direction the pool cannot serve.
    #[error("{0}")]
    Route(String),
    /// A file could not be read.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "read plan".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written crash-safely.
    #[error(transparent)]
    Write(#[from] datm_fsio::Error),
    /// An adapter could not be loaded, merged or saved.
    #[error("{context}")]
    Adapter {
        /// What was being done, naming the adapter and its folder.
        context: String,
        /// The adapter crate's error.
        #[source]
        source: anyhow::Error,
    },
}
