//! Differential test of `datm_metrics::spm` against the C++ SentencePiece library (the
//! Python `sentencepiece` package) and against sacrebleu's `spm`/`flores101`/`flores200`/
//! `spBLEU-1K` tokenizers.
//!
//! `tools/make_spm_models.py` trains small unigram, BPE, word and char models on the
//! machine's gettext catalogs in a temporary directory; this test adds variants of them
//! (unused and user-defined pieces, other whitespace switches), then compares
//! `EncodeAsPieces` piece for piece on thousands of real, perturbed and random lines.
//!
//! Uses the interpreter in `DATM_SACREBLEU_PYTHON` (else `DATM_PYTHON`, else `python3`);
//! when it cannot import `sentencepiece` and `sacrebleu` (on numpy 2) the test is skipped, or
//! fails under `CI=true` (datm-testkit).

#[path = "py/runner.rs"]
mod runner;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use datm_metrics::spm::proto::{ModelProto, PieceType};
use datm_metrics::spm::SentencePiece;
use datm_metrics::{
    corpus_score, nrefs_of, Bleu, BleuOptions, Metric, Signature, SIGNATURE_VERSION,
};
use prost::Message;
use serde_json::Value;

/// The version of the C++ library whose behaviour `datm_metrics::spm` reproduces.
const REFERENCE_VERSION: &str = "0.2.3";

/// Runs `tools/make_spm_models.py` with `args` and parses the JSON it prints, or returns
/// `None` (after reporting it missing) when the interpreter lacks sentencepiece or sacrebleu.
#[track_caller]
fn reference(args: &[&str]) -> Option<Value> {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tools",
        "make_spm_models.py",
    ]
    .iter()
    .collect();
    runner::run_script(&script, "sentencepiece, sacrebleu", args, &[])
}

fn read_proto(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

/// Writes `proto` next to the trained models as `{name}.model`.
fn write_variant(dir: &Path, name: &str, proto: &ModelProto) -> PathBuf {
    let path = dir.join(format!("{name}.model"));
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

/// Marks every `step`-th normal piece of more (`multi_char`) or exactly one character
/// (other than `▁`) with `kind`.
fn retype(proto: &mut ModelProto, step: usize, multi_char: bool, kind: PieceType) {
    let wanted = |p: &datm_metrics::spm::proto::SentencePiece| {
        p.piece_type() == Some(PieceType::Normal)
            && (p.piece().chars().count() > 1) == multi_char
            && p.piece() != "\u{2581}"
    };
    for p in proto.pieces.iter_mut().filter(|p| wanted(p)).step_by(step) {
        p.r#type = Some(kind as i32);
    }
}

/// Makes decisions hinge on the rarely exercised rules: scores scaled (far enough for
/// unigram path scores to pass the ±100000 re-basing threshold) and jittered (into
/// positive values, where the unknown-character penalty matters), every 4th single
/// character unused (unknown characters compete with longer pieces) and every 5th
/// longer piece user-defined (user-defined pieces compete with each other).
fn stress_scores(proto: &mut ModelProto, scale: f32, jitter: f32) {
    let mut state = 0x2545_f491_u32;
    for p in proto.pieces.iter_mut() {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 16) as f32 / 65536.0 - 0.5;
        p.score = Some(p.score() * scale + noise * jitter);
    }
    retype(proto, 4, false, PieceType::Unused);
    retype(proto, 5, true, PieceType::UserDefined);
}

/// A minimal linear congruential generator, for reproducible variants.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

/// Grows a model to a vocabulary of about `size` pieces (flores200's is 256k) with
/// substrings of the test lines, as `▁`-escaped text, at random low scores.
fn grow_vocabulary(proto: &mut ModelProto, lines: &[String], size: usize) {
    let mut seen: HashSet<String> = proto.pieces.iter().map(|p| p.piece().to_string()).collect();
    let mut rng = Lcg(12345);
    let escaped: Vec<Vec<char>> = lines
        .iter()
        .map(|l| {
            format!("\u{2581}{}", l.replace(' ', "\u{2581}"))
                .chars()
                .collect()
        })
        .filter(|l: &Vec<char>| l.len() > 2 && !l.contains(&'\0'))
        .collect();
    while proto.pieces.len() < size {
        let line = &escaped[rng.next() % escaped.len()];
        let start = rng.next() % (line.len() - 2);
        let end = (start + 2 + rng.next() % 7).min(line.len());
        let text: String = line[start..end].iter().collect();
        if seen.insert(text.clone()) {
            proto.pieces.push(datm_metrics::spm::proto::SentencePiece {
                piece: Some(text),
                score: Some(-5.0 - (rng.next() % 2000) as f32 / 100.0),
                r#type: None,
            });
        }
    }
}

/// Model variants the trainer cannot produce, made by editing trained models.
fn variants(dir: &Path, lines: &[String]) -> Vec<PathBuf> {
    let unigram = read_proto(&dir.join("unigram_nfkc_1000.model"));
    let bpe = read_proto(&dir.join("bpe_nfkc_1000.model"));
    let mut out = Vec::new();
    for (base, name) in [(&unigram, "unigram"), (&bpe, "bpe")] {
        let mut unused = base.clone();
        retype(&mut unused, 3, true, PieceType::Unused);
        out.push(write_variant(dir, &format!("{name}_unused"), &unused));
        let mut unused_chars = base.clone();
        retype(&mut unused_chars, 4, false, PieceType::Unused);
        out.push(write_variant(
            dir,
            &format!("{name}_unused_chars"),
            &unused_chars,
        ));
        let mut user = base.clone();
        retype(&mut user, 11, true, PieceType::UserDefined);
        out.push(write_variant(dir, &format!("{name}_user"), &user));
        let mut spaces = base.clone();
        let norm = spaces.normalizer_spec.get_or_insert_with(Default::default);
        norm.escape_whitespaces = Some(false);
        norm.remove_extra_whitespaces = Some(false);
        let trainer = spaces.trainer_spec.get_or_insert_with(Default::default);
        trainer.treat_whitespace_as_suffix = Some(true);
        out.push(write_variant(dir, &format!("{name}_spaces"), &spaces));
        for (suffix, scale, jitter) in [("stress", 3000.0, -20000.0), ("jitter", 1.0, 40.0)] {
            let mut stress = base.clone();
            stress_scores(&mut stress, scale, jitter);
            out.push(write_variant(dir, &format!("{name}_{suffix}"), &stress));
        }
        let mut big = base.clone();
        grow_vocabulary(&mut big, lines, 256_000);
        out.push(write_variant(dir, &format!("{name}_256k"), &big));
        let mut identity = base.clone();
        identity.normalizer_spec = None;
        out.push(write_variant(
            dir,
            &format!("{name}_no_normalizer"),
            &identity,
        ));
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn encode_as_pieces_matches_sentencepiece() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let Some(trained) = reference(&["train", dir_s]) else {
        return;
    };
    // Edge cases (unused pieces, user-defined scores, unknown ids) changed in 0.2.x.
    assert_eq!(
        trained["sentencepiece"],
        REFERENCE_VERSION,
        "datm follows sentencepiece {REFERENCE_VERSION}; install that version (pip install \
         sentencepiece=={REFERENCE_VERSION}) into {}",
        datm_testkit::sacrebleu_python()
    );
    let lines_json = dir.path().join("lines.json");
    let lines = strings(&serde_json::from_slice(&std::fs::read(&lines_json).unwrap()).unwrap());
    let mut models: Vec<PathBuf> = strings(&trained["models"])
        .iter()
        .map(|m| dir.path().join(format!("{m}.model")))
        .collect();
    models.extend(variants(dir.path(), &lines));
    let mut args = vec!["encode".to_string(), lines_json.display().to_string()];
    args.extend(models.iter().map(|m| m.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = reference(&args).unwrap();

    let mut report = BTreeMap::new();
    let mut mismatches = Vec::new();
    for model in &models {
        let sp = SentencePiece::load(model).unwrap();
        let want = expected[model.display().to_string()].as_array().unwrap();
        let mut pieces = 0;
        for (line, want) in lines.iter().zip(want) {
            let got = sp.encode_as_pieces(line);
            let want = strings(want);
            pieces += want.len();
            if got != want {
                mismatches.push(format!(
                    "{}: {line:?}\n  sentencepiece {want:?}\n  datm          {got:?}",
                    model.file_name().unwrap().to_string_lossy()
                ));
            }
        }
        report.insert(
            model.file_name().unwrap().to_string_lossy().to_string(),
            pieces,
        );
    }
    eprintln!(
        "compared {} lines ({} from gettext catalogs of {} locales) under {} models: {report:?}",
        lines.len(),
        trained["catalog_lines"],
        trained["locales"],
        models.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} encodings differ; first ones:\n{}",
        mismatches.len(),
        lines.len() * models.len(),
        mismatches[..mismatches.len().min(15)].join("\n")
    );
    for model in ["unigram_cf_4000_bytes", "bpe_nfkc_1000"] {
        check_sacrebleu(
            dir.path(),
            &lines_json,
            &dir.path().join(format!("{model}.model")),
            &lines,
        );
    }
}

/// sacrebleu's tokenizer name → the `tok:` value of its BLEU signature.
const SIGNATURE_NAMES: [(&str, &str); 4] = [
    ("spm", "flores101"),
    ("flores101", "flores101"),
    ("flores200", "flores200"),
    ("spBLEU-1K", "spBLEU-1K"),
];

/// Installs `model` as every sacrebleu SentencePiece model and checks sacrebleu's
/// tokenization of `lines` (and its signatures) against ours.
fn check_sacrebleu(dir: &Path, lines_json: &Path, model: &Path, lines: &[String]) {
    let work = dir.join(format!(
        "sacrebleu-{}",
        model.file_stem().unwrap().to_string_lossy()
    ));
    let args = [
        "sacrebleu",
        work.to_str().unwrap(),
        lines_json.to_str().unwrap(),
        model.to_str().unwrap(),
    ];
    let reference = reference(&args).unwrap();
    let sp = SentencePiece::load(model).unwrap();
    let ours: Vec<String> = lines.iter().map(|l| sp.tokenize(l)).collect();
    for (name, tok) in SIGNATURE_NAMES {
        let got = &reference[name];
        assert_eq!(
            got["signature"].as_str().unwrap(),
            format!("nrefs:1|case:mixed|eff:no|tok:{tok}|smooth:exp|version:2.6.0"),
            "{name}"
        );
        let theirs = strings(&got["tokenized"]);
        let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "sacrebleu's {name} tokenizer disagrees on {differ} lines"
        );
        // And the whole metric: datm's BLEU with this tokenizer, same score and signature.
        let bleu = Bleu::new(BleuOptions {
            tokenize: Some(name.to_string()),
            tok_model: Some(model.to_path_buf()),
            ..BleuOptions::default()
        })
        .unwrap();
        let refs: Vec<Vec<&str>> = lines.iter().map(|l| vec![l.as_str()]).collect();
        let hyps: Vec<&String> = lines[1..].iter().chain(&lines[..1]).collect();
        let score = corpus_score(&bleu, &hyps, &refs).unwrap().score;
        let want = got["score"].as_f64().unwrap();
        assert!(
            (score - want).abs() < 1e-9,
            "{name}: BLEU {score} vs sacrebleu {want}"
        );
        let sig = Signature::new(&bleu as &dyn Metric, nrefs_of(&refs)).format(false);
        assert_eq!(
            sig.replace(SIGNATURE_VERSION, "2.6.0"),
            got["signature"].as_str().unwrap()
        );
        eprintln!(
            "sacrebleu tokenize={name} ({}): {} lines identical; signature {}",
            got["file"],
            theirs.len(),
            got["signature"]
        );
    }
}
