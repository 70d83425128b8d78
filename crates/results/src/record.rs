//! The plain records a store holds.

use datm_lang::Direction;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A test set: aligned sources and references of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSet {
    /// Its name (e.g. `gettext-test`, `flores200-devtest`).
    pub name: String,
    /// Source sentences.
    pub sources: Vec<String>,
    /// One reference per source sentence.
    pub references: Vec<String>,
}

impl TestSet {
    /// SHA-256 (hex) of the name, sources and references: equal content, equal hash.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            std::slice::from_ref(&self.name),
            &self.sources,
            &self.references,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            for line in part {
                h.update((line.len() as u64).to_le_bytes());
                h.update(line.as_bytes());
            }
        }
        format!("{:x}", h.finalize())
    }
}

/// One metric's score of one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricScore {
    /// `bleu`, `chrf` or `comet`.
    pub metric: String,
    /// The corpus (system) score: BLEU and chrF in 0–100, COMET in 0–1.
    pub score: f64,
    /// The signature (sacrebleu's, or the COMET model's name and version).
    pub signature: String,
    /// Segment scores, where the metric has them (COMET's; sentence BLEU/chrF).
    pub segments: Option<Vec<f64>>,
    /// Segment statistics (sacrebleu's sufficient statistics per segment, BLEU and chrF):
    /// the corpus score and paired bootstrap are recomputed from them without the
    /// tokenizer's resources (MeCab dictionaries, SentencePiece models).
    pub stats: Option<Vec<Vec<f64>>>,
}

/// A system's hypotheses for one test set, with their scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The direction translated.
    pub direction: Direction,
    /// The test set.
    pub test_set: TestSet,
    /// The adapter the router chose (none: the base model or an external system).
    pub adapter: Option<String>,
    /// Non-English languages that adapter was trained on.
    pub adapter_languages: Option<u32>,
    /// One hypothesis per source sentence.
    pub hypotheses: Vec<String>,
    /// Scores, one per metric.
    pub scores: Vec<MetricScore>,
}

impl Output {
    /// The score of `metric`, if scored.
    pub fn score(&self, metric: &str) -> Option<&MetricScore> {
        self.scores.iter().find(|s| s.metric == metric)
    }
}

/// Parameter counts of a system (Table 2 of the paper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Adapters in the system's pool.
    pub adapters: u32,
    /// LoRA parameters over all adapters.
    pub lora: u64,
    /// Parameters of the base model.
    pub base: u64,
}

impl Params {
    /// Base plus every adapter's LoRA parameters.
    pub fn total(&self) -> u64 {
        self.base + self.lora
    }
}

/// Who a system is and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The experiment's name.
    pub experiment: String,
    /// The sweep point (`rank=8`, `languages=4`…); empty outside sweeps.
    pub point: String,
    /// System name: a strategy (`dat`, `datm`…), `base`, or an outside system's name.
    pub system: String,
    /// A hash of everything that determined the system (experiment settings, plan).
    pub config_hash: String,
    /// Non-English languages the system was trained on (the x-axis of the paper's Fig. 2).
    pub languages: Option<u32>,
    /// Parameter counts, where known.
    pub params: Option<Params>,
}

impl SystemInfo {
    /// `system`, or `system@point` inside a sweep: how tables name it.
    pub fn label(&self) -> String {
        if self.point.is_empty() {
            self.system.clone()
        } else {
            format!("{}@{}", self.system, self.point)
        }
    }
}

/// A system and its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemResults {
    /// The system.
    pub info: SystemInfo,
    /// Its outputs, one per (direction, test set).
    pub outputs: Vec<Output>,
}
