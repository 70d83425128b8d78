//! Differential test against the real sacrebleu: bootstrap confidence intervals (`-ci`),
//! paired bootstrap resampling and approximate randomization for BLEU, chrF and TER on a
//! small real example (see `tests/py/significance_sacrebleu.py`), fed with sacrebleu's own
//! segment statistics. Means, intervals and p-values must be identical to the last bit,
//! and the CLI's paired JSON and text output identical up to the signature version.

#[path = "py/runner.rs"]
mod runner;

use datm_metrics::significance::{
    bootstrap_ci, paired_json, paired_test, paired_text, PairedMethod, PairedResults, Seed,
    SystemStats,
};
use datm_metrics::ter::{Ter, TerOptions};
use datm_metrics::{
    Bleu, BleuOptions, Chrf, ChrfOptions, Metric, NRefs, Signature, SIGNATURE_VERSION,
};
use serde_json::Value;

/// sacrebleu's key for each metric in the reference output, and ours.
fn metrics() -> Vec<(&'static str, Box<dyn Metric>)> {
    vec![
        ("BLEU", Box::new(Bleu::new(BleuOptions::default()).unwrap())),
        ("CHRF", Box::new(Chrf::new(ChrfOptions::default()).unwrap())),
        ("TER", Box::new(Ter::new(TerOptions::default()))),
    ]
}

fn stats_of(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// A float printed by the script as a `repr` string (`null` for None).
fn num(v: &Value) -> Option<f64> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn system_stats(
    reference: &Value,
    metrics: &[(&str, Box<dyn Metric>)],
    only: Option<usize>,
) -> Vec<SystemStats> {
    let names = reference["systems"].as_array().unwrap();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = name.as_str().unwrap();
            SystemStats {
                name: if i == 0 {
                    format!("Baseline: {name}")
                } else {
                    name.to_string()
                },
                stats: metrics
                    .iter()
                    .enumerate()
                    .filter(|(m, _)| only.is_none_or(|o| o == *m))
                    .map(|(_, (key, _))| stats_of(&reference["stats"][*key][name]))
                    .collect(),
            }
        })
        .collect()
}

fn check_paired(res: &PairedResults, expected: &Value) {
    for (m, name) in res.metric_names.iter().enumerate() {
        let want = expected[name]
            .as_array()
            .unwrap_or_else(|| panic!("no {name} in reference"));
        for (s, w) in want.iter().enumerate() {
            let got = res.results[s][m];
            let ctx = format!("{name}, system {s}");
            assert_eq!(Some(got.score), num(&w["score"]), "{ctx}: score");
            assert_eq!(got.p_value, num(&w["p_value"]), "{ctx}: p-value");
            assert_eq!(got.mean, num(&w["mean"]), "{ctx}: mean");
            assert_eq!(got.ci, num(&w["ci"]), "{ctx}: ci");
        }
    }
}

#[test]
fn significance_matches_sacrebleu() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reference) = runner::run_reference(
        "significance_sacrebleu.py",
        &[dir.path().to_str().unwrap()],
        &[],
    ) else {
        return;
    };
    let metrics = metrics();
    let systems = system_stats(&reference, &metrics, None);

    for (m, (key, metric)) in metrics.iter().enumerate() {
        let conf =
            bootstrap_ci(metric.as_ref(), &systems[0].stats[m], 1000, Seed::default()).unwrap();
        let want = &reference["ci"][*key];
        assert_eq!(Some(conf.mean), num(&want["mean"]), "{key}: -ci mean");
        assert_eq!(Some(conf.ci), num(&want["ci"]), "{key}: -ci half-interval");
    }

    let refs: Vec<&dyn Metric> = metrics.iter().map(|(_, m)| m.as_ref()).collect();
    let bs = paired_test(&refs, &systems, PairedMethod::Bootstrap, 0, Seed::default()).unwrap();
    assert_eq!(bs.n, 1000);
    check_paired(&bs, &reference["paired"]["bs"]);
    let ar = paired_test(
        &refs,
        &systems,
        PairedMethod::ApproxRandomization,
        2000,
        Seed::default(),
    )
    .unwrap();
    check_paired(&ar, &reference["paired"]["ar"]);
}

#[test]
fn paired_output_matches_sacrebleu_cli() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reference) = runner::run_reference(
        "significance_sacrebleu.py",
        &[dir.path().to_str().unwrap()],
        &[],
    ) else {
        return;
    };
    let metrics = metrics();
    let bleu: &dyn Metric = metrics[0].1.as_ref();
    let systems = system_stats(&reference, &metrics, Some(0));
    let cli = &reference["cli"];
    let sacrebleu_version = |s: String| s.replace(SIGNATURE_VERSION, "2.6.0");

    let bs = paired_test(
        &[bleu],
        &systems,
        PairedMethod::Bootstrap,
        1000,
        Seed::default(),
    )
    .unwrap();
    assert_eq!(
        format!("{}\n", paired_json(&bs)),
        cli["bs_json"].as_str().unwrap()
    );
    let mut sig = Signature::new(bleu, NRefs::Fixed(1));
    sig.bs = Some(1000);
    sig.seed = Some(Seed::default().label());
    let text = paired_text(&bs, 4, &[("BLEU".into(), sig.format(false))]);
    assert_eq!(sacrebleu_version(text), cli["bs_text"].as_str().unwrap());

    let ar = paired_test(
        &[bleu],
        &systems,
        PairedMethod::ApproxRandomization,
        2000,
        Seed::default(),
    )
    .unwrap();
    let mut sig = Signature::new(bleu, NRefs::Fixed(1));
    sig.ar = Some(2000);
    sig.seed = Some(Seed::default().label());
    let text = paired_text(&ar, 4, &[("BLEU".into(), sig.format(false))]);
    assert_eq!(sacrebleu_version(text), cli["ar_text"].as_str().unwrap());
}
