//! Synthetic systems for the report tests: references are pseudo-random sentences, a
//! system's hypotheses replace each word with a probability that depends on the system and
//! direction, and BLEU/chrF statistics are real sacrebleu statistics of those texts.
#![allow(dead_code)]

use std::path::Path;

use datm_lang::Direction;
use datm_metrics::{corpus_stats, sum_stats, Bleu, BleuOptions, Chrf, ChrfOptions, Metric};
use datm_results::{MetricScore, Output, Params, Store, SystemInfo, SystemResults, TestSet};

/// Segments per test set.
pub const SEGMENTS: usize = 40;
/// The languages of the synthetic experiments: G1 = de (high), is (low); G2 = es (high),
/// gl (mid).
pub const LANGS: [&str; 4] = ["de", "is", "es", "gl"];

/// A small deterministic generator (64-bit LCG).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    })
}

/// The test set of a direction: the same for every system.
pub fn test_set(direction: Direction) -> TestSet {
    let mut rng = Lcg::new(hash(&direction.to_string()));
    let sentence = |rng: &mut Lcg| {
        let n = 8 + rng.next() % 7;
        (0..n)
            .map(|_| format!("w{}", rng.next() % 150))
            .collect::<Vec<_>>()
            .join(" ")
    };
    TestSet {
        name: "synthetic-test".into(),
        sources: (0..SEGMENTS).map(|_| sentence(&mut rng)).collect(),
        references: (0..SEGMENTS).map(|_| sentence(&mut rng)).collect(),
    }
}

/// Hypotheses with each reference word replaced with probability `p`, and the fraction of
/// words kept per segment.
fn hypotheses(refs: &[String], p: f64, seed: u64) -> (Vec<String>, Vec<f64>) {
    let mut rng = Lcg::new(seed);
    refs.iter()
        .map(|r| {
            let words: Vec<&str> = r.split(' ').collect();
            let mut kept = 0usize;
            let out: Vec<String> = words
                .iter()
                .map(|w| {
                    if rng.unit() < p {
                        format!("x{}", rng.next() % 1000)
                    } else {
                        kept += 1;
                        w.to_string()
                    }
                })
                .collect();
            (out.join(" "), kept as f64 / words.len() as f64)
        })
        .unzip()
}

/// The metrics the pipeline scores with (default BLEU on 13a, default chrF).
pub fn metrics() -> (Bleu, Chrf) {
    (
        Bleu::new(BleuOptions::default()).unwrap(),
        Chrf::new(ChrfOptions::default()).unwrap(),
    )
}

/// A stored score with its per-segment statistics.
pub fn stats_score(
    key: &str,
    metric: &dyn Metric,
    hyps: &[String],
    refs: &[String],
) -> MetricScore {
    let refs: Vec<Vec<&str>> = refs.iter().map(|r| vec![r.as_str()]).collect();
    let stats = corpus_stats(metric, hyps, &refs).unwrap();
    MetricScore {
        metric: key.into(),
        score: metric.compute(&sum_stats(&stats)).score,
        signature: format!("{key}|synthetic"),
        segments: None,
        stats: Some(stats),
    }
}

/// One output of a system whose word error rate on `direction` is `p`.
pub fn output(system: &str, direction: Direction, p: f64, comet: bool) -> Output {
    let test = test_set(direction);
    let (hyps, kept) = hypotheses(&test.references, p, hash(&format!("{system} {direction}")));
    let (bleu, chrf) = metrics();
    let mut scores = vec![
        stats_score("bleu", &bleu, &hyps, &test.references),
        stats_score("chrf", &chrf, &hyps, &test.references),
    ];
    if comet {
        let segments: Vec<f64> = kept.iter().map(|k| 0.4 + 0.5 * k).collect();
        scores.push(MetricScore {
            metric: "comet".into(),
            score: segments.iter().sum::<f64>() / segments.len() as f64,
            signature: "wmt22-comet-da".into(),
            segments: Some(segments),
            stats: None,
        });
    }
    Output {
        direction,
        test_set: test,
        adapter: Some(format!("{system}.{direction}")),
        adapter_languages: Some(1),
        hypotheses: hyps,
        scores,
    }
}

/// Word error rates of the usual systems: multilingual is weak into English and strong
/// out of it, separate the opposite, dat strong both ways, datm a little below dat into
/// English, base weak everywhere.
pub fn error_rate(system: &str, d: Direction) -> f64 {
    let into_english = d.is_to_english();
    match (system, into_english) {
        ("multilingual", true) => 0.55,
        ("multilingual", false) => 0.15,
        ("separate", true) => 0.15,
        ("separate", false) => 0.35,
        ("dat", _) => 0.15,
        ("datm", true) => 0.17,
        ("datm", false) => 0.15,
        _ => 0.8,
    }
}

/// The English-centric directions of `langs`.
pub fn directions(langs: &[&str]) -> Vec<Direction> {
    let langs: Vec<datm_lang::Lang> = langs
        .iter()
        .map(|c| datm_lang::Lang::from_code(c).unwrap())
        .collect();
    Direction::english_centric(&langs)
}

/// A system of experiment `experiment` at sweep point `point` over `langs`.
pub fn system(
    experiment: &str,
    point: &str,
    name: &str,
    langs: &[&str],
    comet: bool,
) -> SystemResults {
    let adapters = match name {
        "multilingual" => 1,
        "separate" => 2 * langs.len() as u32,
        "base" => 0,
        _ => langs.len() as u32 + 2,
    };
    SystemResults {
        info: SystemInfo {
            experiment: experiment.into(),
            point: point.into(),
            system: name.into(),
            config_hash: format!("{:016x}", hash(&format!("{experiment}{point}{name}"))),
            languages: Some(langs.len() as u32),
            params: Some(Params {
                adapters,
                lora: u64::from(adapters) * 737_280,
                base: 268_098_176,
            }),
        },
        outputs: directions(langs)
            .into_iter()
            .map(|d| output(name, d, error_rate(name, d), comet))
            .collect(),
    }
}

/// Writes `systems` into a new store at `path`.
pub fn write_store(path: &Path, systems: &[SystemResults]) {
    let mut store = Store::open(path).unwrap();
    for s in systems {
        store.record(s).unwrap();
    }
}

/// The usual five systems of one experiment.
pub fn experiment(name: &str, comet: bool) -> Vec<SystemResults> {
    ["multilingual", "separate", "dat", "datm", "base"]
        .iter()
        .map(|s| system(name, "", s, &LANGS, comet))
        .collect()
}
