//! One module per subcommand: its clap arguments and its `run` function.

pub mod check_kernels;
pub mod comet;
pub mod data;
pub mod generate;
pub mod langs;
pub mod merge;
pub mod pipeline;
pub mod pool;
pub mod report;
pub mod results;
pub mod score;
pub mod scoring;
pub mod serve;
pub mod train;
pub mod translate;

pub use datm_pool::progress::bar as progress;
