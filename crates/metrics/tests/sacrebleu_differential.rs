//! Differential test against the real sacrebleu: `tools/sacrebleu_diff.py` builds real
//! gettext segment pairs and random/perturbed text, scores them with sacrebleu's API for
//! every BLEU/chrF/TER option, and this test checks datm's scores (at 1e-9, well below
//! the 4-decimal requirement), verbose lines and signatures (version aside) against it.
//!
//! Uses the interpreter in `DATM_SACREBLEU_PYTHON` (else `DATM_PYTHON`, else `python3`);
//! when it cannot import sacrebleu (on numpy 2) the test is skipped, or fails under `CI=true`
//! (datm-testkit).

use std::path::PathBuf;
use std::process::Command;

use datm_metrics::pyfmt::format_score;
use datm_metrics::ter::{Ter, TerOptions};
use datm_metrics::{
    corpus_score, nrefs_of, sentence_score, Bleu, BleuOptions, Chrf, ChrfOptions, Metric,
    Signature, SmoothMethod, SIGNATURE_VERSION,
};
use serde_json::Value;

fn metric_from(name: &str, kw: &Value) -> Box<dyn Metric> {
    let flag = |k: &str| kw[k].as_bool().unwrap_or(false);
    let uint = |k: &str, d: usize| kw[k].as_u64().map_or(d, |v| v as usize);
    match name {
        "bleu" => Box::new(
            Bleu::new(BleuOptions {
                lowercase: flag("lowercase"),
                tokenize: kw["tokenize"].as_str().map(str::to_string),
                smooth_method: SmoothMethod::parse(kw["smooth_method"].as_str().unwrap_or("exp"))
                    .unwrap(),
                smooth_value: kw["smooth_value"].as_f64(),
                max_ngram_order: uint("max_ngram_order", 4),
                effective_order: flag("effective_order"),
                ..BleuOptions::default()
            })
            .unwrap(),
        ),
        "chrf" => Box::new(
            Chrf::new(ChrfOptions {
                char_order: uint("char_order", 6),
                word_order: uint("word_order", 0),
                beta: uint("beta", 2) as u32,
                lowercase: flag("lowercase"),
                whitespace: flag("whitespace"),
                eps_smoothing: flag("eps_smoothing"),
            })
            .unwrap(),
        ),
        "ter" => Box::new(Ter::new(TerOptions {
            normalized: flag("normalized"),
            no_punct: flag("no_punct"),
            asian_support: flag("asian_support"),
            case_sensitive: flag("case_sensitive"),
        })),
        other => panic!("unknown metric {other}"),
    }
}

/// Per-segment references from sacrebleu's streams, dropping nulls as sacrebleu does.
fn segment_refs(streams: &Value) -> Vec<Vec<String>> {
    let streams: Vec<&Vec<Value>> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap())
        .collect();
    (0..streams[0].len())
        .map(|i| {
            streams
                .iter()
                .filter_map(|s| s[i].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0) && format!("{a:.4}") == format!("{b:.4}")
}

#[test]
fn matches_real_sacrebleu_on_every_option() {
    let Some(py) = datm_testkit::sacrebleu_python_with("sacrebleu") else {
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/sacrebleu_diff.py");
    let out = Command::new(&py)
        .arg(&script)
        .output()
        .expect("running sacrebleu_diff.py");
    assert!(
        out.status.success(),
        "sacrebleu_diff.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("sacrebleu_diff.py prints JSON");
    let their_version = doc["version"].as_str().unwrap().to_string();
    let ours = |s: String| s.replace(SIGNATURE_VERSION, &their_version);

    let mut failures = Vec::new();
    let cases = doc["cases"].as_array().unwrap();
    for case in cases {
        let (name, kw, ds) = (
            case["metric"].as_str().unwrap(),
            &case["kwargs"],
            case["dataset"].as_str().unwrap(),
        );
        let label = format!("{name} {kw} on {ds}");
        let metric = metric_from(name, kw);
        let data = &doc["datasets"][ds];
        let hyps = strings(&data["hyps"]);
        let refs = segment_refs(&data["refs"]);
        if case["sentence"].as_bool().unwrap() {
            let want = case["scores"].as_array().unwrap();
            for (i, w) in want.iter().enumerate() {
                let r: Vec<&str> = refs[i].iter().map(String::as_str).collect();
                let got = sentence_score(metric.as_ref(), &hyps[i], &r).unwrap().score;
                if !close(got, w.as_f64().unwrap()) {
                    failures.push(format!("{label}: segment {i}: {got} != {w}"));
                    break;
                }
            }
            let sig = Signature::new(metric.as_ref(), nrefs_of(&refs[want.len() - 1..want.len()]));
            if ours(sig.format(false)) != case["signature"].as_str().unwrap() {
                failures.push(format!(
                    "{label}: signature {} != {}",
                    sig.format(false),
                    case["signature"]
                ));
            }
            continue;
        }
        let score = corpus_score(metric.as_ref(), &hyps, &refs).unwrap();
        let want = case["score"].as_f64().unwrap();
        if !close(score.score, want) {
            failures.push(format!("{label}: {} != {want}", score.score));
        }
        let verbose = format_score(&score, 4, false, "", false, None);
        if verbose != case["verbose"].as_str().unwrap() {
            failures.push(format!("{label}: {verbose:?} != {}", case["verbose"]));
        }
        let sig = Signature::new(metric.as_ref(), nrefs_of(&refs));
        for (short, key) in [(false, "signature"), (true, "short")] {
            if ours(sig.format(short)) != case[key].as_str().unwrap() {
                failures.push(format!("{label}: {} != {}", sig.format(short), case[key]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!(
        "{} configurations identical to sacrebleu {their_version}",
        cases.len()
    );
}
