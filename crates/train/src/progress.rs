//! Progress reporting: an indicatif bar on a terminal, plain lines otherwise, or nothing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{EvalRecord, StepRecord};

/// Receives training events.
pub trait Progress {
    /// Training starts (or resumes) with `done` of `total` steps already taken.
    fn start(&mut self, total: usize, done: usize);
    /// A step finished.
    fn step(&mut self, record: &StepRecord, total: usize);
    /// A validation loss was measured.
    fn eval(&mut self, record: &EvalRecord);
    /// A free-form note (resuming, saving, …).
    fn message(&mut self, text: &str);
    /// Training ended.
    fn finish(&mut self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: usize, _: usize) {}
    fn step(&mut self, _: &StepRecord, _: usize) {}
    fn eval(&mut self, _: &EvalRecord) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// A bar with step, loss, learning rate, tokens/s and ETA when stderr is a terminal; one line per
/// step on stderr otherwise.
pub struct Console {
    bar: Option<ProgressBar>,
    done_at_start: usize,
    tokens: usize,
    seconds: f64,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// Chooses the bar or plain lines from whether stderr is a terminal.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} step {pos}/{len} [{bar:30}] {msg} ETA {eta_precise}",
            )
            .expect("static template is valid")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Console {
            bar,
            done_at_start: 0,
            tokens: 0,
            seconds: 0.0,
        }
    }

    fn eta_seconds(&self, step: usize, total: usize) -> f64 {
        let done = step.saturating_sub(self.done_at_start);
        if done == 0 {
            return 0.0;
        }
        self.seconds / done as f64 * total.saturating_sub(step) as f64
    }
}

impl Progress for Console {
    fn start(&mut self, total: usize, done: usize) {
        self.done_at_start = done;
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            b.reset_eta();
        }
    }

    fn step(&mut self, r: &StepRecord, total: usize) {
        self.tokens += r.tokens;
        self.seconds += r.seconds;
        let tps = self.tokens as f64 / self.seconds.max(1e-9);
        let msg = format!("loss {:.4} lr {:.2e} {:.0} tok/s", r.loss, r.lr, tps);
        match &self.bar {
            Some(b) => {
                b.set_position(r.step as u64);
                b.set_message(msg);
            }
            None => eprintln!(
                "step {}/{} {msg} grad_norm {:.3} eta {:.0}s",
                r.step,
                total,
                r.grad_norm,
                self.eta_seconds(r.step, total)
            ),
        }
    }

    fn eval(&mut self, r: &EvalRecord) {
        self.message(&format!(
            "step {}: validation loss {:.4} ({} sequences)",
            r.step, r.loss, r.sequences
        ));
    }

    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
