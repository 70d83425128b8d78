//! The scoring options shared by `pool translate` and `results import`.

use std::path::PathBuf;

use anyhow::Result;
use datm_model::candle_core::Device;
use datm_pool::score::{CometScorer, MecabDicts};

/// Tokenizer dictionaries for BLEU and an optional COMET model.
#[derive(clap::Args)]
pub struct ScoringArgs {
    /// IPA dictionary folder: BLEU on Japanese targets with ja-mecab (else char).
    #[arg(long, value_name = "DIR")]
    ja_mecab: Option<PathBuf>,
    /// mecab-ko-dic folder: BLEU on Korean targets with ko-mecab (else 13a).
    #[arg(long, value_name = "DIR")]
    ko_mecab: Option<PathBuf>,
    /// COMET model folder (hparams.yaml + checkpoints/model.ckpt): adds COMET to the scores.
    #[arg(long, value_name = "DIR")]
    comet: Option<PathBuf>,
    /// The COMET encoder's folder (config.json + tokenizer.json), if not found from the
    /// model's `pretrained_model`.
    #[arg(long, value_name = "DIR", requires = "comet")]
    comet_encoder: Option<PathBuf>,
}

impl ScoringArgs {
    /// The MeCab dictionaries given.
    pub fn dicts(&self) -> MecabDicts {
        MecabDicts {
            ja: self.ja_mecab.clone(),
            ko: self.ko_mecab.clone(),
        }
    }

    /// The COMET model on `device`, loaded when one was given.
    pub fn comet(&self, device: &Device) -> Result<Option<CometScorer>> {
        self.comet
            .as_deref()
            .map(|m| CometScorer::load(m, self.comet_encoder.as_deref(), 16, device))
            .transpose()
    }
}
