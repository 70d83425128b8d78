//! The results store: every scored direction of every system in one SQLite database.
//!
//! A store holds, per system (experiment, sweep point, system name), the hypotheses it
//! produced for each test set and their scores: the corpus score of each metric with its
//! signature and, where the metric has them, segment scores. Test sets are stored once,
//! keyed by a hash of their content, so significance can be recomputed from the store
//! alone. Writes are transactional and idempotent: recording the same system again
//! replaces its rows rather than adding new ones. Stores written by separate runs (one per
//! Slurm job, say) are combined by reading several of them ([`Store::systems`]).

mod record;
mod store;

pub use record::{MetricScore, Output, Params, SystemInfo, SystemResults, TestSet};
pub use store::{Store, SCHEMA_VERSION};

use std::path::PathBuf;

/// Errors of the results store; each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// SQLite refused an operation (SQLite's error is the source, so a chain printer shows
    /// it once).
    #[error("results store {path}: {context}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database holds something this version cannot read.
    #[error("results store {path}: {message}")]
    Format {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A record to be written is inconsistent.
    #[error("results store {path}: {message}")]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}
