//! Scoring a direction's hypotheses the way the paper does (§2.4, ALMA's eval scripts):
//! sacreBLEU with the tokenizer chosen by target language, and chrF.
//!
//! BLEU tokenizers: `zh` for Chinese targets, `13a` for everything else, Korean included.
//! The paper's `ja-mecab` for Japanese needs MeCab, which datm does not implement; datm
//! falls back to the `char` tokenizer for Japanese targets (`datm_metrics::paper_tokenizer`)
//! and the BLEU signature in every report records the tokenizer used.

use datm_lang::Direction;
use datm_metrics::{
    corpus_score, nrefs_of, paper_tokenizer, Bleu, BleuOptions, Chrf, ChrfOptions, Metric,
    Signature,
};

use crate::report::DirectionScore;
use crate::PoolError;

/// Corpus BLEU and chrF of `hyps` against one reference each, as a report row.
pub fn score_direction(
    system: &str,
    direction: Direction,
    hyps: &[String],
    refs: &[String],
) -> Result<DirectionScore, PoolError> {
    if hyps.len() != refs.len() {
        return Err(PoolError::Plan(format!(
            "{system} {direction}: {} hypotheses for {} references",
            hyps.len(),
            refs.len()
        )));
    }
    let fail = |e: anyhow::Error| PoolError::Plan(format!("scoring {system} {direction}: {e:#}"));
    let refs: Vec<Vec<&str>> = refs.iter().map(|r| vec![r.as_str()]).collect();
    let bleu = Bleu::new(BleuOptions {
        tokenize: Some(bleu_tokenizer(direction).to_string()),
        ..BleuOptions::default()
    })
    .map_err(fail)?;
    let chrf = Chrf::new(ChrfOptions::default()).map_err(fail)?;
    let b = corpus_score(&bleu, hyps, &refs).map_err(fail)?;
    let c = corpus_score(&chrf, hyps, &refs).map_err(fail)?;
    Ok(DirectionScore {
        system: system.to_string(),
        direction,
        bleu: b.score,
        chrf: c.score,
        segments: hyps.len(),
        bleu_signature: Signature::new(&bleu as &dyn Metric, nrefs_of(&refs)).format(true),
    })
}

/// The BLEU tokenizer name used for a direction's target language.
pub fn bleu_tokenizer(direction: Direction) -> &'static str {
    paper_tokenizer(direction.tgt.code()).signature()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_by_target_language() {
        assert_eq!(bleu_tokenizer("en-zh".parse().unwrap()), "zh");
        assert_eq!(bleu_tokenizer("en-ja".parse().unwrap()), "char");
        assert_eq!(bleu_tokenizer("en-ko".parse().unwrap()), "13a");
        assert_eq!(bleu_tokenizer("zh-en".parse().unwrap()), "13a");
    }

    #[test]
    fn perfect_and_partial_scores() {
        let refs = vec![
            "The cat sat on the mat.".to_string(),
            "Open the file".to_string(),
        ];
        let s = score_direction("x", "de-en".parse().unwrap(), &refs, &refs).unwrap();
        assert!((s.bleu - 100.0).abs() < 1e-9 && (s.chrf - 100.0).abs() < 1e-9);
        assert!(s.bleu_signature.contains("tok:13a"), "{}", s.bleu_signature);
        let hyps = vec![
            "The cat sat on a mat.".to_string(),
            "Close the file".to_string(),
        ];
        let s = score_direction("x", "de-en".parse().unwrap(), &hyps, &refs).unwrap();
        assert!(s.bleu > 0.0 && s.bleu < 100.0 && s.chrf > s.bleu);
        let err = score_direction("x", "de-en".parse().unwrap(), &hyps[..1], &refs).unwrap_err();
        assert!(err
            .to_string()
            .contains("x de-en: 1 hypotheses for 2 references"));
    }
}
