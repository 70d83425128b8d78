//! The progress bar of long work over counted items (sentences decoded, sentences
//! embedded), for the pool's evaluation and the command line alike.

/// A progress bar over `n` items called `what`, with elapsed time, count and ETA (drawn on
/// stderr, and only when it is a terminal).
pub fn bar(n: usize, what: &str) -> anyhow::Result<indicatif::ProgressBar> {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what}, eta {{eta}}"
        ))?
        .progress_chars("=> "),
    );
    Ok(bar)
}
