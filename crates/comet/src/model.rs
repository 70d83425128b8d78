//! A loaded COMET regression model: tokenizer, XLM-R encoder, layer mix, average pooling
//! and the feed-forward estimator, as unbabel-comet 2.2.7 runs them in `predict`.

use anyhow::{bail, ensure, Context, Result};
use candle_core::Tensor;
pub use candle_core::{DType, Device};
use datm_model::pool::par_chunks;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::hparams::{self, Activation, Hparams, ModelClass};
use crate::linear::Linear;
use crate::xlmr::{take, Xlmr, XlmrConfig};
use crate::{checkpoint, locate, mix};

/// Tokens per encoder batch at least on the CPU in f32 ([`Comet::min_batch_tokens`]): the
/// batch's tokens run packed without padding, and products of a thousand rows run closer to
/// the CPU's peak than COMET's 16 sentences of a few dozen tokens (`datm comet`, XLM-R
/// large: 8% faster); the scores are the same bits whatever the batch.
pub const PACKED_BATCH_TOKENS: usize = 1024;

/// Sentence embeddings of one segment: `(mt, src, ref)`, `ref` None for QE models.
pub type Triple<'a> = (&'a [f32], &'a [f32], Option<&'a [f32]>);

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Folder with the encoder's `config.json` and `tokenizer.json`, overriding the lookup of
    /// `pretrained_model`.
    pub encoder_dir: Option<PathBuf>,
    /// Where to run.
    pub device: Device,
    /// Matmul dtype: F32 (exact) or BF16.
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            encoder_dir: None,
            device: Device::Cpu,
            dtype: DType::F32,
        }
    }
}

/// A COMET model ready to embed sentences and score segments.
pub struct Comet {
    hparams: Hparams,
    tokenizer: Tokenizer,
    encoder: Xlmr,
    weights: Vec<f32>,
    gamma: f32,
    estimator: Vec<Linear>,
    device: Device,
    min_batch_tokens: usize,
}

fn scalar(sd: &mut HashMap<String, Tensor>, name: &str) -> Result<f32> {
    Ok(take(sd, name, &[1])?.to_vec1::<f32>()?[0])
}

impl Comet {
    /// Loads `DIR/hparams.yaml` + `DIR/checkpoints/model.ckpt` and the encoder files.
    pub fn load(model_dir: &Path, opts: &LoadOptions) -> Result<Self> {
        ensure!(
            matches!(opts.dtype, DType::F32 | DType::BF16),
            "COMET runs in f32 or bf16, not {:?}",
            opts.dtype
        );
        let ckpt_path = model_dir.join("checkpoints/model.ckpt");
        let ckpt = checkpoint::read(&ckpt_path)?;
        let hp = hparams::resolve(
            &model_dir.join("hparams.yaml"),
            ckpt.hyper_parameters.as_ref(),
        )?;
        let enc_dir = locate::encoder_dir(&hp.pretrained_model, opts.encoder_dir.as_deref())?;
        let cfg_path = enc_dir.join("config.json");
        let config: XlmrConfig = serde_json::from_str(
            &std::fs::read_to_string(&cfg_path)
                .with_context(|| format!("cannot read {}", cfg_path.display()))?,
        )
        .with_context(|| format!("{}: not an XLM-R config", cfg_path.display()))?;
        ensure!(
            config.max_position_embeddings > 4,
            "{}: max_position_embeddings must exceed 4",
            cfg_path.display()
        );
        let tokenizer = load_tokenizer(
            &enc_dir.join("tokenizer.json"),
            config.max_position_embeddings - 4,
        )?;
        let mut sd = ckpt.tensors;
        let (dev, dtype) = (&opts.device, opts.dtype);
        let encoder = Xlmr::new(config, &mut sd, dev, dtype)
            .with_context(|| format!("{}", ckpt_path.display()))?;
        let n = encoder.num_states();
        let scalars = (0..n)
            .map(|i| {
                scalar(
                    &mut sd,
                    &format!("layerwise_attention.scalar_parameters.{i}"),
                )
            })
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{}", ckpt_path.display()))?;
        let gamma = scalar(&mut sd, "layerwise_attention.gamma")?;
        let h = encoder.config().hidden_size;
        let in_dim = h * match hp.class {
            ModelClass::Regression => 6,
            ModelClass::Referenceless => 4,
        };
        let mut sizes = vec![in_dim];
        sizes.extend(&hp.hidden_sizes);
        sizes.push(1);
        let estimator = sizes
            .windows(2)
            .enumerate()
            .map(|(i, io)| {
                Linear::new(
                    &mut sd,
                    &format!("estimator.ff.{}", 3 * i),
                    io[1],
                    io[0],
                    dev,
                    dtype,
                )
            })
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{}", ckpt_path.display()))?;
        // Buffers and the unused pooler, which unbabel-comet also leaves unused.
        sd.retain(|k, _| {
            !k.starts_with("layerwise_attention.dropout_")
                && !k.starts_with("encoder.model.pooler.")
                && !k.ends_with("position_ids")
        });
        if let Some(extra) = sd.keys().min() {
            bail!(
                "{}: unexpected tensor {extra} ({} unused) for a {:?} model",
                ckpt_path.display(),
                sd.len(),
                hp.class
            );
        }
        Ok(Comet {
            weights: mix::layer_weights(&scalars, hp.layer_transformation),
            hparams: hp,
            tokenizer,
            encoder,
            gamma,
            estimator,
            device: dev.clone(),
            min_batch_tokens: if dev.is_cpu() && dtype == DType::F32 {
                PACKED_BATCH_TOKENS
            } else {
                0
            },
        })
    }

    /// The model's hyper-parameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    /// Whether scoring needs references.
    pub fn needs_references(&self) -> bool {
        self.hparams.class == ModelClass::Regression
    }

    /// Token ids as COMET's tokenizer call gives them (`truncation=True`,
    /// `max_length = max_position_embeddings - 4`, specials included).
    pub fn tokenize(&self, sentences: &[&str]) -> Result<Vec<Vec<u32>>> {
        let enc = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(anyhow::Error::msg)
            .context("tokenizing")?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Tokens a batch of the encoder should hold at least: [`PACKED_BATCH_TOKENS`] where
    /// the batches run packed through f32 products on the CPU, elsewhere none (the
    /// caller's batch size: padded batches on other devices; bf16 products, whose AMX path
    /// keeps a batch's inputs in cache only up to about COMET's batches).
    pub fn min_batch_tokens(&self) -> usize {
        self.min_batch_tokens
    }

    /// Sentence embeddings (`[hidden]` each) of already tokenized sentences, run through
    /// the encoder as one batch. Each sentence's embedding is the same whatever batch it is
    /// in (no value of one sentence enters another's sums).
    pub fn embed_batch(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        ensure!(!ids.is_empty(), "empty batch");
        ensure!(
            self.weights.iter().any(|&w| w != 0.0),
            "every layer weight is zero"
        );
        let config = self.encoder.config();
        let (h, pad) = (config.hidden_size, config.pad_token_id);
        let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
        let last = self.weights.iter().rposition(|&w| w != 0.0).unwrap_or(0);
        // LayerwiseAttention: Σ weight·state over the layers in order (a zero weight adds an
        // exact zero), each state first normalised per sentence if `layer_norm`.
        let mut mix = vec![0f32; lens.iter().sum::<usize>() * h];
        let mut normed = Vec::new();
        self.encoder.forward(ids, last, |l, hidden| {
            let w = self.weights[l];
            if w == 0.0 {
                return Ok(());
            }
            let x = if self.hparams.layer_norm {
                masked_norm(hidden, &lens, h, &mut normed);
                &normed[..]
            } else {
                hidden
            };
            par_chunks(&mut mix, h, |r, row| {
                for (a, v) in row.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *a += w * v;
                }
            });
            Ok(())
        })?;
        // average_pooling of gamma·mix: the tokens that are not the pad id summed, divided
        // by the sentence's length.
        let mut start = 0;
        Ok(ids
            .iter()
            .map(|seq| {
                let mut sum = vec![0f64; h];
                for (r, _) in seq.iter().enumerate().filter(|(_, &id)| id != pad) {
                    let row = &mix[(start + r) * h..(start + r + 1) * h];
                    for (s, v) in sum.iter_mut().zip(row) {
                        *s += f64::from(self.gamma * v);
                    }
                }
                start += seq.len();
                sum.iter().map(|&s| s as f32 / seq.len() as f32).collect()
            })
            .collect())
    }

    /// Estimator scores for `(mt, src, ref)` embedding triples (`ref` None for QE models).
    pub fn estimate(&self, rows: &[Triple<'_>]) -> Result<Vec<f32>> {
        let mut feats = Vec::new();
        for (mt, src, rf) in rows {
            let mut push =
                |f: &mut dyn FnMut(usize) -> f32| feats.extend((0..mt.len()).map(&mut *f));
            push(&mut |i| mt[i]);
            match (self.hparams.class, rf) {
                (ModelClass::Regression, Some(r)) => {
                    push(&mut |i| r[i]);
                    push(&mut |i| mt[i] * r[i]);
                    push(&mut |i| (mt[i] - r[i]).abs());
                }
                (ModelClass::Referenceless, None) => push(&mut |i| src[i]),
                _ => bail!("a reference is required exactly for regression_metric models"),
            }
            push(&mut |i| mt[i] * src[i]);
            push(&mut |i| (mt[i] - src[i]).abs());
        }
        let width = feats.len() / rows.len().max(1);
        let mut x = Tensor::from_vec(feats, (rows.len(), width), &self.device)?;
        let last = self.estimator.len() - 1;
        for (i, lin) in self.estimator.iter().enumerate() {
            x = lin.forward(&x)?;
            let act = if i < last {
                Some(self.hparams.activations)
            } else {
                self.hparams.final_activation
            };
            x = match act {
                None => x,
                Some(Activation::Tanh) => x.tanh()?,
                Some(Activation::Sigmoid) => candle_nn::ops::sigmoid(&x)?,
            };
        }
        Ok(x.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// `LayerwiseAttention._layer_norm` into `out`: per sentence (`lens` consecutive rows of
/// `h` values each), mean and variance over all its tokens × dims (summed in f64),
/// `(x − μ) / √(σ² + 1e-12)` with no affine.
fn masked_norm(x: &[f32], lens: &[usize], h: usize, out: &mut Vec<f32>) {
    out.clear();
    let mut start = 0;
    for &len in lens {
        let rows = &x[start * h..(start + len) * h];
        let n = rows.len() as f64;
        let mean = rows.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = rows
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let (mean, sd) = (mean as f32, (var as f32 + 1e-12).sqrt());
        out.extend(rows.iter().map(|&v| (v - mean) / sd));
        start += len;
    }
}

fn load_tokenizer(path: &Path, max_len: usize) -> Result<Tokenizer> {
    let mut tok = Tokenizer::from_file(path)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{}: cannot load the tokenizer", path.display()))?;
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: max_len,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        direction: TruncationDirection::Right,
    }))
    .map_err(anyhow::Error::msg)?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hidden states of a batch (sentences of different lengths, one with the pad id
    /// inside) are the same packed on the CPU kernels and padded through candle.
    #[test]
    fn packed_and_padded_batches_agree() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/comet");
        let opts = LoadOptions {
            encoder_dir: Some(fixtures.join(format!(
                "hub/models--datm--xlmr-tiny/snapshots/{}",
                "0".repeat(40)
            ))),
            ..LoadOptions::default()
        };
        let model = Comet::load(&fixtures.join("softmax"), &opts).unwrap();
        let pad = model.encoder.config().pad_token_id;
        let ids = model
            .tokenize(&[
                "Open the file",
                "",
                "Datei <pad> öffnen, bitte jetzt sofort",
            ])
            .unwrap();
        assert!(ids[2].contains(&pad), "{:?}", ids[2]);
        let run = |packed: bool| {
            let mut states = Vec::new();
            let visit = |_, h: &[f32]| {
                states.push(h.to_vec());
                Ok(())
            };
            let last = model.encoder.num_states() - 1;
            if packed {
                model.encoder.forward_packed(&ids, last, visit).unwrap();
            } else {
                model.encoder.forward_padded(&ids, last, visit).unwrap();
            }
            states
        };
        let (packed, padded) = (run(true), run(false));
        assert_eq!(packed.len(), model.encoder.num_states());
        for (l, (a, b)) in packed.iter().zip(&padded).enumerate() {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5, "state {l}: {x} vs {y}");
            }
        }
    }
}
