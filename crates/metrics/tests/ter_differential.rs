//! Differential test against the real sacrebleu: TER with every option on real gettext
//! translations and perturbations of them (see `tests/py/ter_sacrebleu.py`). Segment
//! statistics must be identical, corpus scores identical at 4 decimals (in fact exactly),
//! and signatures identical up to the version.

#[path = "py/runner.rs"]
mod runner;

use datm_metrics::ter::{Ter, TerOptions};
use datm_metrics::{sum_stats, Metric, NRefs, Signature};
use serde_json::Value;

fn options(v: &Value) -> TerOptions {
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    TerOptions {
        normalized: flag("normalized"),
        no_punct: flag("no_punct"),
        asian_support: flag("asian_support"),
        case_sensitive: flag("case_sensitive"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// One run of the (slow) reference script serves both checks.
#[test]
fn ter_matches_sacrebleu() {
    let Some(reference) = runner::run_reference("ter_sacrebleu.py", &[], &[]) else {
        return;
    };
    check_corpus_scores(&reference);
    check_random_sequences(&reference);
}

/// Every option set, on gettext text: segment statistics, corpus score, signature.
fn check_corpus_scores(reference: &Value) {
    let hyps = strings(&reference["hyps"]);
    let cases = reference["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 7 && hyps.len() > 100,
        "reference corpus too small"
    );
    for case in cases {
        let opts = options(&case["opts"]);
        let ter = Ter::new(opts);
        let ref_sets: Vec<Vec<String>> = case["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        let mut stats = Vec::new();
        for (i, (hyp, expected)) in hyps
            .iter()
            .zip(case["seg_stats"].as_array().unwrap())
            .enumerate()
        {
            let refs: Vec<&str> = ref_sets.iter().map(|r| r[i].as_str()).collect();
            let got = ter.segment_stats(hyp, &refs).unwrap();
            let want: Vec<f64> = expected
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(
                got, want,
                "{opts:?}, segment {i}: hyp {hyp:?} refs {refs:?}"
            );
            stats.push(got);
        }
        let score = ter.compute(&sum_stats(&stats)).score;
        let want: f64 = case["score"].as_str().unwrap().parse().unwrap();
        assert_eq!(format!("{score:.4}"), format!("{want:.4}"), "{opts:?}");
        assert_eq!(score, want, "{opts:?}");
        let sig = Signature::new(&ter, NRefs::Fixed(ref_sets.len())).format(false);
        let (ours, _) = sig.rsplit_once("|version:").unwrap();
        let (theirs, _) = case["signature"]
            .as_str()
            .unwrap()
            .rsplit_once("|version:")
            .unwrap();
        assert_eq!(ours, theirs);
    }
}

/// The edit distance with shifts on random sequences over tiny vocabularies.
fn check_random_sequences(reference: &Value) {
    let pairs = reference["fuzz"].as_array().unwrap();
    assert!(pairs.len() >= 100);
    for p in pairs {
        let (hyp, r) = (p["hyp"].as_str().unwrap(), p["ref"].as_str().unwrap());
        let want = (
            p["edits"].as_u64().unwrap() as usize,
            p["len"].as_u64().unwrap() as usize,
        );
        assert_eq!(Ter::edits(hyp, r), want, "hyp {hyp:?} ref {r:?}");
    }
}
