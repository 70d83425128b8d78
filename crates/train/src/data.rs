//! Reading the requested directions' examples from an ALMA layout directory or a JSONL file.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use datm_data::corpus::Split;
use datm_data::prompt::Example;
use datm_lang::Direction;

/// Training and validation examples, all requested directions mixed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainData {
    /// Training examples.
    pub train: Vec<Example>,
    /// Held-out examples for validation loss (may be empty).
    pub valid: Vec<Example>,
}

/// Reads `directions` from `path`: an ALMA layout (`{xx}en/train.xx-en.json`, valid split
/// used for validation) or a JSONL file of `{"translation": {...}}` lines (train only).
/// A direction without training pairs is an error naming where they were looked for.
pub fn load(path: &Path, directions: &[Direction]) -> Result<TrainData> {
    ensure!(!directions.is_empty(), "no directions requested");
    if path.is_dir() {
        let corpus = datm_data::formats::read_layout(path)?;
        let mut data = TrainData::default();
        for &d in directions {
            let train = corpus.examples(d, Split::Train);
            if train.is_empty() {
                bail!(
                    "{}: no training pairs for {d} (expected {}/train.{d}.json or another supported format)",
                    path.display(),
                    datm_data::formats::lang_dir(path, non_english(d)?).display()
                );
            }
            data.train.extend(train);
            data.valid.extend(corpus.examples(d, Split::Valid));
        }
        return Ok(data);
    }
    if !path.exists() {
        bail!("{}: no such data directory or file", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        !text.trim().is_empty(),
        "{}: the data file is empty",
        path.display()
    );
    let mut data = TrainData::default();
    for &d in directions {
        let pairs = datm_data::formats::parse_jsonl(&text, d, path)?;
        data.train.extend(pairs.iter().map(|p| p.example(d)));
    }
    Ok(data)
}

fn non_english(d: Direction) -> Result<datm_lang::Lang> {
    d.non_english()
        .with_context(|| format!("direction {d} is not English-centric"))
}
