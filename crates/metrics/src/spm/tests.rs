//! Unit tests on hand-built models (the expected pieces were checked against the C++
//! library, sentencepiece 0.2.3); the differential test is `tests/spm_differential.rs`.

use std::path::Path;

use prost::Message;

use super::proto::{ModelProto, NormalizerSpec, PieceType, SentencePiece as Piece, TrainerSpec};
use super::SentencePiece;

fn piece(text: &str, score: f32, kind: PieceType) -> Piece {
    Piece {
        piece: Some(text.to_string()),
        score: Some(score),
        r#type: Some(kind as i32),
    }
}

/// A model of `model_type` over `<unk>` and the given normal pieces, without
/// normalization rules.
fn model(model_type: i32, normal: &[(&str, f32)]) -> ModelProto {
    let mut pieces = vec![piece("<unk>", 0.0, PieceType::Unknown)];
    pieces.extend(normal.iter().map(|&(t, s)| piece(t, s, PieceType::Normal)));
    ModelProto {
        pieces,
        trainer_spec: Some(TrainerSpec {
            model_type: Some(model_type),
            ..Default::default()
        }),
        normalizer_spec: Some(NormalizerSpec::default()),
    }
}

fn pieces(proto: &ModelProto, line: &str) -> Vec<String> {
    SentencePiece::from_proto(proto)
        .unwrap()
        .encode_as_pieces(line)
}

#[test]
fn unigram_takes_the_best_path_and_merges_unknown_runs() {
    let m = model(
        1,
        &[
            ("▁", -2.0),
            ("a", -3.0),
            ("b", -3.0),
            ("ab", -5.0),
            ("▁a", -4.5),
        ],
    );
    // "▁ab" = ▁a+b (-7.5) or ▁+ab (-7.0): the latter wins.
    assert_eq!(pieces(&m, "ab"), ["▁", "ab"]);
    // Whitespace is collapsed and trimmed; unknown characters run together.
    assert_eq!(pieces(&m, "  ab   xyz a "), ["▁", "ab", "▁", "xyz", "▁a"]);
    assert!(pieces(&m, "   ").is_empty());
    assert!(pieces(&m, "").is_empty());
}

#[test]
fn byte_fallback_spells_unknown_characters_as_bytes() {
    let mut m = model(1, &[("▁", -2.0), ("a", -3.0)]);
    m.pieces
        .extend((0..=255u8).map(|b| piece(&format!("<0x{b:02X}>"), 0.0, PieceType::Byte)));
    m.trainer_spec.as_mut().unwrap().byte_fallback = Some(true);
    assert_eq!(pieces(&m, "aé"), ["▁", "a", "<0xC3>", "<0xA9>"]);
}

#[test]
fn bpe_merges_the_best_pair_first_and_leftmost_on_ties() {
    let m = model(
        2,
        &[
            ("▁", 0.0),
            ("a", 0.0),
            ("b", 0.0),
            ("ab", -1.0),
            ("ba", -1.0),
            ("▁a", -2.0),
        ],
    );
    // ▁ a b a: ab and ba tie; the leftmost pair (a,b) merges, then ▁+ab is no piece.
    assert_eq!(pieces(&m, "aba"), ["▁", "ab", "a"]);
    let mut unused = m.clone();
    unused.pieces[4].r#type = Some(PieceType::Unused as i32);
    // `ab` unused: still merged first (so `ba` never forms), then split back.
    assert_eq!(pieces(&unused, "aba"), ["▁", "a", "b", "a"]);
}

#[test]
fn user_defined_symbols_stay_whole() {
    let mut m = model(2, &[("▁", 0.0), ("a", 0.0), ("b", 0.0), ("ab", -1.0)]);
    m.pieces.push(piece("%s", 0.0, PieceType::UserDefined));
    assert_eq!(pieces(&m, "a%sb"), ["▁", "a", "%s", "b"]);
}

#[test]
fn whitespace_switches() {
    let mut m = model(4, &[("▁", 0.0), ("a", 0.0), (" ", 0.0)]);
    let spec = m.normalizer_spec.as_mut().unwrap();
    spec.add_dummy_prefix = Some(false);
    spec.remove_extra_whitespaces = Some(false);
    spec.escape_whitespaces = Some(false);
    assert_eq!(pieces(&m, " a  a"), [" ", "a", " ", " ", "a"]);
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let err = |e: anyhow::Error| format!("{e:#}");
    let missing =
        err(SentencePiece::load(Path::new("/nonexistent/flores200sacrebleuspm")).unwrap_err());
    assert!(
        missing.contains("/nonexistent/flores200sacrebleuspm"),
        "{missing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.model");
    std::fs::write(&junk, b"\xff\xff\xff not a protobuf").unwrap();
    let e = err(SentencePiece::load(&junk).unwrap_err());
    assert!(e.contains("junk.model") && e.contains("ModelProto"), "{e}");

    let mut word2vec = model(1, &[("a", 0.0)]);
    word2vec.trainer_spec.as_mut().unwrap().model_type = Some(9);
    let path = dir.path().join("type.model");
    std::fs::write(&path, word2vec.encode_to_vec()).unwrap();
    let e = err(SentencePiece::load(&path).unwrap_err());
    assert!(
        e.contains("type.model") && e.contains("model type 9"),
        "{e}"
    );

    let mut no_unk = model(1, &[("a", 0.0)]);
    no_unk.pieces.remove(0);
    assert!(err(SentencePiece::from_proto(&no_unk).unwrap_err()).contains("unknown piece"));

    let mut bad_rules = model(1, &[("a", 0.0)]);
    bad_rules
        .normalizer_spec
        .as_mut()
        .unwrap()
        .precompiled_charsmap = Some(vec![1, 2, 3, 4, 5]);
    assert!(
        err(SentencePiece::from_proto(&bad_rules).unwrap_err()).contains("precompiled_charsmap")
    );

    let mut stray_byte = model(1, &[("a", 0.0)]);
    stray_byte
        .pieces
        .push(piece("<0x41>", 0.0, PieceType::Byte));
    assert!(err(SentencePiece::from_proto(&stray_byte).unwrap_err()).contains("byte_fallback"));

    let mut twice = model(1, &[("a", 0.0), ("a", -1.0)]);
    assert!(err(SentencePiece::from_proto(&twice).unwrap_err()).contains("defined twice"));
    twice.pieces.truncate(2);
    twice.pieces[1].score = Some(f32::NAN);
    assert!(err(SentencePiece::from_proto(&twice).unwrap_err()).contains("not finite"));
}
