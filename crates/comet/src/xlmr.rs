//! The XLM-RoBERTa encoder as transformers' `XLMRobertaModel` runs it at inference:
//! word + token-type + learned position embeddings (positions counted from the padding
//! index), then post-norm BERT layers with erf-GELU. Returns every hidden state a caller
//! asks for (COMET mixes them all). On the CPU a batch runs without padding, its
//! sentences' tokens packed one after another, on datm-model's kernels; elsewhere padded,
//! through candle.

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

use datm_model::attend::attend_packed;
use datm_model::kernels::Activation::{GeluErf, Identity};
use datm_model::pool::par_chunks;
use datm_model::vmath;

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

/// A LayerNorm's parameters, as candle tensors on the model's device and as f32 values.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    w: Vec<f32>,
    b: Vec<f32>,
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

    /// Normalises each row of `x` (in place) over `x + residual`, in parallel.
    fn rows(&self, x: &mut [f32], residual: Option<&[f32]>) {
        let h = self.w.len();
        par_chunks(x, h, |r, row| {
            let res = residual.map(|res| &res[r * h..(r + 1) * h]);
            vmath::layer_norm(row, res, &self.w, &self.b, self.eps)
        });
    }
}

struct Layer {
    /// Query, key and value projections stacked: `[3 · hidden, hidden]`.
    qkv: Linear,
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
            let (weight, bias) = (
                take(w, &format!("{name}.weight"), &[h])?,
                take(w, &format!("{name}.bias"), &[h])?,
            );
            Ok(Norm {
                w: weight.to_vec1()?,
                b: bias.to_vec1()?,
                weight: dev(weight)?,
                bias: dev(bias)?,
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
            let qkv = ["query", "key", "value"].map(|p| format!("{l}attention.self.{p}"));
            let qkv = qkv.each_ref().map(String::as_str);
            layers.push(Layer {
                qkv: Linear::stacked(w, &qkv, h, h, device, dtype)?,
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

    /// Runs the sentences `seqs` (token ids) as one batch and calls `visit(l, hidden)` for
    /// hidden states `0..=last` (0 = embeddings), each `[tokens, hidden]` f32 rows: the
    /// sentences' tokens one after another, without padding. On the CPU the batch runs
    /// packed that way; on other devices padded, through candle.
    pub fn forward(
        &self,
        seqs: &[Vec<u32>],
        last: usize,
        visit: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        ensure!(
            seqs.iter().all(|s| !s.is_empty()),
            "a sentence has no tokens"
        );
        if self.device.is_cpu() {
            self.forward_packed(seqs, last, visit)
        } else {
            self.forward_padded(seqs, last, visit)
        }
    }

    /// Word + token-type + position embeddings (before their LayerNorm) of the tokens `ids`
    /// at positions `pos`: `[tokens, hidden]`.
    fn embeddings(&self, ids: Vec<u32>, pos: Vec<u32>) -> Result<Tensor> {
        let max = self.config.max_position_embeddings;
        ensure!(
            pos.iter().all(|&p| (p as usize) < max),
            "a sequence exceeds the {max} positions of the encoder"
        );
        let n = ids.len();
        let ids = Tensor::from_vec(ids, n, &self.device)?;
        let pos = Tensor::from_vec(pos, n, &self.device)?;
        Ok(self
            .word
            .index_select(&ids, 0)?
            .broadcast_add(&self.token_type)?
            .add(&self.position.index_select(&pos, 0)?)?)
    }

    /// `create_position_ids_from_input_ids` for one row: `cumsum(ids != pad) · (ids != pad)
    /// + pad`, appended to `pos`.
    fn positions(&self, row: &[u32], pos: &mut Vec<u32>) {
        let pad = self.config.pad_token_id;
        let mut n = 0u32;
        pos.extend(row.iter().map(|&id| {
            n += (id != pad) as u32;
            if id != pad {
                n + pad
            } else {
                pad
            }
        }));
    }

    /// [`Xlmr::forward`] on the CPU: every sentence's tokens packed one after another, the
    /// matmuls on datm-model's kernels, LayerNorm, GELU and attention fused over slices.
    pub(crate) fn forward_packed(
        &self,
        seqs: &[Vec<u32>],
        last: usize,
        mut visit: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let c = &self.config;
        let (h, ff, heads) = (c.hidden_size, c.intermediate_size, c.num_attention_heads);
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let m: usize = lens.iter().sum();
        let mut pos = Vec::with_capacity(m);
        seqs.iter().for_each(|s| self.positions(s, &mut pos));
        let ids = seqs.concat();
        let mut x = self.embeddings(ids, pos)?.flatten_all()?.to_vec1::<f32>()?;
        self.emb_norm.rows(&mut x, None);
        visit(0, &x)?;
        let (mut qkv, mut ctx) = (vec![0f32; m * 3 * h], vec![0f32; m * h]);
        let (mut a, mut up) = (vec![0f32; m * h], vec![0f32; m * ff]);
        let scale = 1.0 / ((h / heads) as f32).sqrt();
        for (i, l) in self.layers.iter().take(last).enumerate() {
            l.qkv.forward_into(&x, m, Identity, &mut qkv)?;
            attend_packed(&qkv, &lens, (heads, h / heads), scale, &mut ctx)?;
            l.attn_out.forward_into(&ctx, m, Identity, &mut a)?;
            l.attn_norm.rows(&mut a, Some(&x));
            l.up.forward_into(&a, m, GeluErf, &mut up)?;
            l.down.forward_into(&up, m, Identity, &mut x)?;
            l.out_norm.rows(&mut x, Some(&a));
            visit(i + 1, &x)?;
        }
        Ok(())
    }

    /// [`Xlmr::forward`] through candle on any device: the sentences padded to the longest
    /// with the pad id (row `i` attending to its own tokens only), each hidden state copied
    /// back to the CPU without the padding.
    pub(crate) fn forward_padded(
        &self,
        seqs: &[Vec<u32>],
        last: usize,
        mut visit: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let pad = self.config.pad_token_id;
        let (b, t) = (seqs.len(), seqs.iter().map(Vec::len).max().unwrap_or(0));
        let mut ids = Vec::with_capacity(b * t);
        let mut pos = Vec::with_capacity(b * t);
        let mut keep = Vec::with_capacity(b * t);
        for row in seqs {
            let padded: Vec<u32> = row
                .iter()
                .copied()
                .chain(std::iter::repeat_n(pad, t - row.len()))
                .collect();
            self.positions(&padded, &mut pos);
            keep.extend((0..t).map(|i| if i < row.len() { 0f32 } else { f32::MIN }));
            ids.extend(padded);
        }
        let mut x = self.emb_norm.forward(&self.embeddings(ids, pos)?)?;
        let h = self.config.hidden_size;
        let mut emit = |l: usize, x: &Tensor| -> Result<()> {
            let all = x.flatten_all()?.to_vec1::<f32>()?;
            let rows: Vec<f32> = seqs
                .iter()
                .enumerate()
                .flat_map(|(i, s)| &all[i * t * h..(i * t + s.len()) * h])
                .copied()
                .collect();
            visit(l, &rows)
        };
        emit(0, &x)?;
        let mask = Tensor::from_vec(keep, (b, 1, 1, t), &self.device)?;
        for (i, layer) in self.layers.iter().take(last).enumerate() {
            x = self.layer(layer, &x, &mask, b, t)?;
            emit(i + 1, &x)?;
        }
        Ok(())
    }

    fn layer(&self, l: &Layer, x: &Tensor, mask: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let (h, nh) = (self.config.hidden_size, self.config.num_attention_heads);
        let dh = h / nh;
        let qkv = l.qkv.forward(x)?;
        let heads = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(1, i * h, h)?
                .reshape((b, t, nh, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
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
