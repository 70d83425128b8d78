//! One module per subcommand: its clap arguments and its `run` function.

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

/// A progress bar over `n` items called `what` (hidden when stderr is not a terminal).
pub fn progress(n: usize, what: &str) -> anyhow::Result<indicatif::ProgressBar> {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what}, eta {{eta}}"
        ))?
        .progress_chars("=> "),
    );
    Ok(bar)
}
