//! The XLM-RoBERTa encoder as transformers' `XLMRobertaModel` runs it at inference:
//! word + token-type + learned position embeddings (positions counted from the padding
//! index), then post-norm BERT layers with erf-GELU. Returns every hidden state a caller
//! asks for (COMET mixes them all).

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

use crate::linear::Linear;

/// The `config.json` fields the forward pass uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct XlmrConfig {
    /// Token vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Position table size (514 for XLM-R: 512 + the padding offset).
    pub max_position_embeddings: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id (also the position offset).
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    /// Hidden activation; only `gelu` (erf) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Position embedding kind; only `absolute` is supported.
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_pad() -> u32 {
    1
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos() -> String {
    "absolute".into()
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &self.weight,
            &self.bias,
            self.eps,
        )?)
    }
}

struct Layer {
    qkv: [Linear; 3],
    attn_out: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// Weights of one encoder, taken from a COMET state dict.
pub struct Xlmr {
    config: XlmrConfig,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    device: Device,
}

/// Removes `name` from the state dict, checking its shape.
pub(crate) fn take(w: &mut HashMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Tensor> {
    let t = w
        .remove(name)
        .with_context(|| format!("checkpoint has no tensor {name}"))?;
    ensure!(
        t.dims() == shape,
        "tensor {name} has shape {:?}, expected {shape:?}",
        t.dims()
    );
    Ok(t)
}

impl Xlmr {
    /// Builds the encoder from the `encoder.model.*` tensors of `w` (removed from it).
    pub fn new(
        config: XlmrConfig,
        w: &mut HashMap<String, Tensor>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        ensure!(
            config.hidden_act == "gelu",
            "encoder hidden_act `{}` is not supported (gelu)",
            config.hidden_act
        );
        ensure!(
            config.position_embedding_type == "absolute",
            "encoder position_embedding_type `{}` is not supported (absolute)",
            config.position_embedding_type
        );
        let h = config.hidden_size;
        ensure!(
            config.num_attention_heads > 0 && h.is_multiple_of(config.num_attention_heads),
            "hidden_size {h} is not a multiple of num_attention_heads {}",
            config.num_attention_heads
        );
        let p = "encoder.model.";
        let dev = |t: Tensor| -> Result<Tensor> { Ok(t.to_device(device)?) };
        let norm = |w: &mut HashMap<String, Tensor>, name: &str| -> Result<Norm> {
            Ok(Norm {
                weight: dev(take(w, &format!("{name}.weight"), &[h])?)?,
                bias: dev(take(w, &format!("{name}.bias"), &[h])?)?,
                eps: config.layer_norm_eps as f32,
            })
        };
        let word = dev(take(
            w,
            &format!("{p}embeddings.word_embeddings.weight"),
            &[config.vocab_size, h],
        )?)?;
        let position = dev(take(
            w,
            &format!("{p}embeddings.position_embeddings.weight"),
            &[config.max_position_embeddings, h],
        )?)?;
        let tt = w
            .remove(&format!("{p}embeddings.token_type_embeddings.weight"))
            .context(
                "checkpoint has no tensor encoder.model.embeddings.token_type_embeddings.weight",
            )?;
        ensure!(
            tt.rank() == 2 && tt.dim(1)? == h && tt.dim(0)? >= 1,
            "token_type_embeddings has shape {:?}",
            tt.dims()
        );
        let token_type = dev(tt.get(0)?)?;
        let emb_norm = norm(w, &format!("{p}embeddings.LayerNorm"))?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = format!("{p}encoder.layer.{i}.");
            let lin = |w: &mut HashMap<String, Tensor>, name: &str, n: usize, k: usize| {
                Linear::new(w, &format!("{l}{name}"), n, k, device, dtype)
            };
            layers.push(Layer {
                qkv: [
                    lin(w, "attention.self.query", h, h)?,
                    lin(w, "attention.self.key", h, h)?,
                    lin(w, "attention.self.value", h, h)?,
                ],
                attn_out: lin(w, "attention.output.dense", h, h)?,
                attn_norm: norm(w, &format!("{l}attention.output.LayerNorm"))?,
                up: lin(w, "intermediate.dense", config.intermediate_size, h)?,
                down: lin(w, "output.dense", h, config.intermediate_size)?,
                out_norm: norm(w, &format!("{l}output.LayerNorm"))?,
            });
        }
        Ok(Xlmr {
            config,
            word,
            position,
            token_type,
            emb_norm,
            layers,
            device: device.clone(),
        })
    }

    /// The encoder's configuration.
    pub fn config(&self) -> &XlmrConfig {
        &self.config
    }

    /// Runs a padded batch `ids` (`[b][t]`, every row the same length, padded with the pad
    /// id; row `i` attends to its first `lens[i]` tokens) and calls `visit(l, hidden)` for hidden states `0..=last` (0 = embeddings) as
    /// `[b, t, hidden]` f32 tensors.
    pub fn forward(
        &self,
        ids: &[Vec<u32>],
        lens: &[usize],
        last: usize,
        mut visit: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<()> {
        let (b, t) = (ids.len(), ids[0].len());
        let pad = self.config.pad_token_id;
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        // create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad.
        let mut pos = Vec::with_capacity(b * t);
        let mut keep = Vec::with_capacity(b * t);
        for (row, &len) in ids.iter().zip(lens) {
            let mut n = 0u32;
            for (i, &id) in row.iter().enumerate() {
                let real = id != pad;
                n += real as u32;
                pos.push(if real { n + pad } else { pad });
                keep.push(if i < len { 0f32 } else { f32::MIN });
            }
        }
        ensure!(
            pos.iter()
                .all(|&p| (p as usize) < self.config.max_position_embeddings),
            "a sequence of {t} tokens exceeds the {} positions of the encoder",
            self.config.max_position_embeddings
        );
        let ids_t = Tensor::from_vec(flat, b * t, &self.device)?;
        let pos_t = Tensor::from_vec(pos, b * t, &self.device)?;
        let words = self.word.index_select(&ids_t, 0)?;
        let x = words
            .broadcast_add(&self.token_type)?
            .add(&self.position.index_select(&pos_t, 0)?)?;
        let mut x = self.emb_norm.forward(&x)?;
        visit(0, &x.reshape((b, t, self.config.hidden_size))?)?;
        let mask = Tensor::from_vec(keep, (b, 1, 1, t), &self.device)?;
        for (i, layer) in self.layers.iter().take(last).enumerate() {
            x = self.layer(layer, &x, &mask, b, t)?;
            visit(i + 1, &x.reshape((b, t, self.config.hidden_size))?)?;
        }
        Ok(())
    }

    fn layer(&self, l: &Layer, x: &Tensor, mask: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let (h, nh) = (self.config.hidden_size, self.config.num_attention_heads);
        let dh = h / nh;
        let heads = |lin: &Linear| -> Result<Tensor> {
            Ok(lin
                .forward(x)?
                .reshape((b, t, nh, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(&l.qkv[0])?, heads(&l.qkv[1])?, heads(&l.qkv[2])?);
        let scores = q.matmul(&k.t()?.contiguous()?)?;
        let scores = (scores / (dh as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, h))?;
        let a = l.attn_norm.forward(&l.attn_out.forward(&ctx)?.add(x)?)?;
        let up = l.up.forward(&a)?.gelu_erf()?;
        l.out_norm.forward(&l.down.forward(&up)?.add(&a)?)
    }

    /// Hidden states the model produces (`num_hidden_layers + 1`).
    pub fn num_states(&self) -> usize {
        self.layers.len() + 1
    }
}
