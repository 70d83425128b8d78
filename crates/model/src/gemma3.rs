//! Gemma-3 text (`Gemma3ForCausalLM`, `gemma3_text`): interleaved sliding-window and global
//! attention with per-type RoPE bases, q/k RMSNorm, sandwich norms around attention and MLP,
//! GeGLU, `(1 + w)` RMSNorm, embeddings scaled by √hidden, scores scaled by
//! `query_pre_attn_scalar^-½`, optional soft-capping. Reference: transformers
//! `models/gemma3/modeling_gemma3.py`.

use anyhow::Result;
use candle_core::{DType, Tensor};

use crate::arch::{Architecture, LmHead};
use crate::config::ModelConfig;
use crate::lora::{Ctx, LoraLinear};
use crate::nn::{
    Activation, Attention, AttentionSpec, Embedding, GatedMlp, KvCache, RmsNorm, StepTensors,
};
use crate::weights::WeightMap;

struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    pre_feedforward_layernorm: RmsNorm,
    mlp: GatedMlp,
    post_feedforward_layernorm: RmsNorm,
}

/// A loaded Gemma-3 text model.
pub struct Gemma3 {
    cfg: ModelConfig,
    embed: Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    head: LmHead,
}

impl Gemma3 {
    /// Builds the model from HF-named weights.
    pub fn load(cfg: &ModelConfig, w: &WeightMap, dtype: DType) -> Result<Self> {
        let (hd, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        let spec = AttentionSpec {
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: cfg.head_dim,
            hidden: hd,
            scale: cfg.attn_scale,
            softcap: cfg.attn_softcap,
            bias: cfg.attention_bias,
            qk_norm_eps: Some(eps),
            dtype,
        };
        let norm = |p: &str, n: &str| RmsNorm::load(w, &format!("{p}.{n}.weight"), hd, eps, true);
        let layers = (0..cfg.num_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                Ok(Block {
                    input_layernorm: norm(&p, "input_layernorm")?,
                    self_attn: Attention::load(
                        w,
                        &format!("{p}.self_attn"),
                        &spec,
                        i,
                        &cfg.layers[i],
                    )?,
                    post_attention_layernorm: norm(&p, "post_attention_layernorm")?,
                    pre_feedforward_layernorm: norm(&p, "pre_feedforward_layernorm")?,
                    mlp: GatedMlp::load(
                        w,
                        &format!("{p}.mlp"),
                        hd,
                        cfg.intermediate_size,
                        cfg.mlp_bias,
                        Activation::GeluTanh,
                        dtype,
                    )?,
                    post_feedforward_layernorm: norm(&p, "post_feedforward_layernorm")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let scale = Some((hd as f64).sqrt());
        let embed = Embedding::load(
            w,
            "model.embed_tokens.weight",
            cfg.vocab_size,
            hd,
            scale,
            dtype,
        )?;
        let head = LmHead::load(w, cfg, &embed, dtype)?;
        let norm = RmsNorm::load(w, "model.norm.weight", hd, eps, true)?;
        Ok(Gemma3 {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            head,
        })
    }
}

impl Architecture for Gemma3 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed.forward(ids)
    }

    fn layer(
        &self,
        i: usize,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        let b = &self.layers[i];
        let h = b
            .self_attn
            .forward(&b.input_layernorm.forward(x, ctx)?, step, cache, ctx)?;
        let x = (x + b.post_attention_layernorm.forward(&h, ctx)?)?;
        let h = b
            .mlp
            .forward(&b.pre_feedforward_layernorm.forward(&x, ctx)?, ctx)?;
        Ok((x + b.post_feedforward_layernorm.forward(&h, ctx)?)?)
    }

    fn final_norm(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        self.norm.forward(x, ctx)
    }

    fn head(&self) -> &LmHead {
        &self.head
    }

    fn head_mut(&mut self) -> &mut LmHead {
        &mut self.head
    }

    fn linears(&self) -> Vec<(String, &LoraLinear)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter().enumerate() {
            crate::arch::push_block_linears(&mut out, i, &b.self_attn, &b.mlp);
        }
        out
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter_mut().enumerate() {
            crate::arch::push_block_linears_mut(&mut out, i, &mut b.self_attn, &mut b.mlp);
        }
        out
    }
}
