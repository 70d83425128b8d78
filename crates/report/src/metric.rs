//! The metrics a report shows, and how their stored scores are displayed.

use datm_results::Output;
use serde::Serialize;

/// A metric of the results store, in the order the report shows them (COMET first, as in
/// the paper's COMET/BLEU cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// COMET-22 (stored 0–1, shown ×100).
    Comet,
    /// sacreBLEU BLEU (0–100).
    Bleu,
    /// chrF (0–100).
    Chrf,
}

impl MetricKind {
    /// Every metric, in display order.
    pub const ALL: [MetricKind; 3] = [MetricKind::Comet, MetricKind::Bleu, MetricKind::Chrf];

    /// The name the results store uses (`comet`, `bleu`, `chrf`).
    pub fn key(self) -> &'static str {
        match self {
            MetricKind::Comet => "comet",
            MetricKind::Bleu => "bleu",
            MetricKind::Chrf => "chrf",
        }
    }

    /// The name in tables (`COMET`, `BLEU`, `chrF`).
    pub fn label(self) -> &'static str {
        match self {
            MetricKind::Comet => "COMET",
            MetricKind::Bleu => "BLEU",
            MetricKind::Chrf => "chrF",
        }
    }

    /// Stored score → displayed score (COMET ×100, the others as stored).
    pub fn scale(self) -> f64 {
        match self {
            MetricKind::Comet => 100.0,
            MetricKind::Bleu | MetricKind::Chrf => 1.0,
        }
    }

    /// The output's score in display units, if scored.
    pub fn value(self, output: &Output) -> Option<f64> {
        output.score(self.key()).map(|s| s.score * self.scale())
    }
}

/// `COMET/BLEU/chrF`: the metric labels of a cell, in order.
pub(crate) fn cell_legend(metrics: &[MetricKind]) -> String {
    metrics
        .iter()
        .map(|m| m.label())
        .collect::<Vec<_>>()
        .join("/")
}
