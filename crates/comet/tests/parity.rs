//! Differential test against unbabel-comet 2.2.7: the models, texts and reference scores in
//! tests/fixtures/comet were written by tools/make_comet_fixtures.py with the reference
//! package itself (`predict(..., gpus=0)` at batch 1 and 8, fp32).

use datm_comet::{score, Comet, LoadOptions};
use serde_json::Value;

mod support;
use support::{fixtures, lines, load};

const SEGMENT_TOL: f64 = 1e-5;
const SYSTEM_TOL: f64 = 1e-6;

fn read_expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn check(variant: &str) {
    let model = load(variant);
    let expected = read_expected();
    let (src, refs) = (lines("src.txt"), lines("ref.txt"));
    let hyps = vec![lines("hyp1.txt"), lines("hyp2.txt")];
    assert!(src.len() >= 50);
    let refs = model.needs_references().then_some(refs.as_slice());
    for batch in [1, 8] {
        let got = score(&model, &src, refs, &hyps, batch).unwrap();
        for (h, sys) in got.iter().enumerate() {
            let want = &expected[variant][format!("hyp{}_batch{batch}", h + 1)];
            let want_scores: Vec<f64> = want["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(sys.scores.len(), want_scores.len());
            let worst = sys
                .scores
                .iter()
                .zip(&want_scores)
                .map(|(a, b)| (a - b).abs())
                .fold(0f64, f64::max);
            eprintln!(
                "{variant} hyp{} batch {batch}: max segment diff {worst:.3e}",
                h + 1
            );
            assert!(worst <= SEGMENT_TOL, "{variant}: segment diff {worst}");
            let sys_diff = (sys.system_score - want["system_score"].as_f64().unwrap()).abs();
            assert!(sys_diff <= SYSTEM_TOL, "{variant}: system diff {sys_diff}");
        }
    }
}

#[test]
fn sparsemax_regression_matches_unbabel_comet() {
    check("sparsemax");
}

#[test]
fn softmax_layer_norm_sigmoid_matches_unbabel_comet() {
    check("softmax");
}

#[test]
fn referenceless_matches_unbabel_comet() {
    check("qe");
}

#[test]
fn bf16_stays_close_to_the_fp32_reference() {
    std::env::set_var("HF_HUB_CACHE", fixtures().join("hub"));
    let opts = LoadOptions {
        dtype: datm_comet::model::DType::BF16,
        ..LoadOptions::default()
    };
    let model = Comet::load(&fixtures().join("sparsemax"), &opts).unwrap();
    let (src, refs) = (lines("src.txt"), lines("ref.txt"));
    let got = score(&model, &src, Some(&refs), &[lines("hyp1.txt")], 8).unwrap();
    let want = &read_expected()["sparsemax"]["hyp1_batch8"]["scores"];
    let worst = got[0]
        .scores
        .iter()
        .enumerate()
        .map(|(i, s)| (s - want[i].as_f64().unwrap()).abs())
        .fold(0f64, f64::max);
    eprintln!("bf16 max segment diff {worst:.3e}");
    assert!(worst > 0.0 && worst < 5e-3, "bf16 diff {worst}");
}

#[test]
fn long_lines_are_truncated_to_510_tokens() {
    let model = load("sparsemax");
    let src = lines("src.txt");
    let ids = model.tokenize(&[src.last().unwrap().as_str(), ""]).unwrap();
    assert_eq!(ids[0].len(), 510);
    assert_eq!((ids[0][0], ids[0][509]), (0, 2));
    assert_eq!(ids[1], vec![0, 2]);
}

#[test]
fn a_checkpoint_calling_os_system_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    std::fs::create_dir_all(model.join("checkpoints")).unwrap();
    std::fs::copy(
        fixtures().join("sparsemax/hparams.yaml"),
        model.join("hparams.yaml"),
    )
    .unwrap();
    let marker = dir.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut pkl = b"\x80\x02cposix\nsystem\nX".to_vec();
    pkl.extend((cmd.len() as u32).to_le_bytes());
    pkl.extend(cmd.as_bytes());
    pkl.extend(b"\x85R.");
    let file = std::fs::File::create(model.join("checkpoints/model.ckpt")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    std::io::Write::write_all(&mut zip, &pkl).unwrap();
    zip.finish().unwrap();
    let e = Comet::load(&model, &LoadOptions::default()).err().unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("`posix.system` is not allowed"), "{msg}");
    assert!(!marker.exists());
}

/// The fuzz seeds (small checkpoints torch.save wrote: a strided view, bf16 storages
/// shared by two tensors, an empty tensor) read from memory as from a file.
#[test]
fn fuzz_seed_checkpoints_read_from_memory() {
    let seeds = fixtures().join("../../../fuzz/seeds/comet_checkpoint");
    let bytes = std::fs::read(seeds.join("views.ckpt")).unwrap();
    let name = std::path::Path::new("views.ckpt");
    let c =
        datm_comet::checkpoint::read_from(std::io::Cursor::new(&bytes), bytes.len() as u64, name)
            .unwrap();
    let t = c.tensors["t"].to_vec2::<f32>().unwrap();
    assert_eq!(t[1], [1.0, 5.0, 9.0], "the transposed view is gathered");
    assert_eq!(c.tensors["b16_view"].dims(), [3]);
    assert_eq!(c.tensors["empty"].dims(), [0, 3]);
    let bytes = std::fs::read(seeds.join("regression.ckpt")).unwrap();
    let c =
        datm_comet::checkpoint::read_from(std::io::Cursor::new(&bytes), bytes.len() as u64, name)
            .unwrap();
    assert_eq!(
        c.hyper_parameters.unwrap()["hidden_sizes"],
        serde_json::json!([8, 4])
    );
    // Cut anywhere, the archive gives an error, never a panic.
    for cut in (0..bytes.len()).step_by(97) {
        let part = &bytes[..cut];
        assert!(
            datm_comet::checkpoint::read_from(std::io::Cursor::new(part), cut as u64, name)
                .is_err()
        );
    }
}

/// A storage record shorter than its tensor is refused by name, not read past.
#[test]
fn a_short_storage_record_is_refused_by_name() {
    use std::io::{Read, Write};
    let seeds = fixtures().join("../../../fuzz/seeds/comet_checkpoint");
    let bytes = std::fs::read(seeds.join("regression.ckpt")).unwrap();
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut cut = None;
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if cut.is_none() && name.contains("/data/") && data.len() >= 8 {
            data.truncate(data.len() - 4);
            cut = Some(name.clone());
        }
        out.start_file(name, opts).unwrap();
        out.write_all(&data).unwrap();
    }
    let short = out.finish().unwrap().into_inner();
    let cut = cut.unwrap();
    let e = datm_comet::checkpoint::read_from(
        std::io::Cursor::new(&short),
        short.len() as u64,
        std::path::Path::new("short.ckpt"),
    )
    .err()
    .unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("short.ckpt") && msg.contains(&cut), "{msg}");
    assert!(msg.contains("bytes, expected"), "{msg}");
}
