//! Gemma-3 text (`Gemma3ForCausalLM`, `gemma3_text`): interleaved sliding-window and global
//! attention with per-type RoPE bases, q/k RMSNorm, sandwich norms around attention and MLP,
//! GeGLU, `(1 + w)` RMSNorm, embeddings scaled by √hidden, scores scaled by
//! `query_pre_attn_scalar^-½`, optional soft-capping. Reference: transformers
//! `models/gemma3/modeling_gemma3.py`.

use anyhow::Result;
use candle_core::{DType, Tensor};

use crate::arch::{Block, Decoder, Family};
use crate::config::ModelConfig;
use crate::lora::Ctx;
use crate::nn::{Activation, Attention, GatedMlp, KvCache, RmsNorm, StepTensors};
use crate::weights::WeightMap;

/// Gemma-3's parts: embeddings scaled by √hidden, `(1 + w)` norms, q/k norms, GeGLU.
const GEMMA3: Family = Family {
    scaled_embeddings: true,
    norm_plus_one: true,
    qk_norm: true,
    activation: Activation::GeluTanh,
};

/// A Gemma-3 decoder layer: sandwich norms around attention and the MLP.
pub struct Gemma3Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    pre_feedforward_layernorm: RmsNorm,
    mlp: GatedMlp,
    post_feedforward_layernorm: RmsNorm,
}

/// Builds the model from HF-named weights.
pub fn load(cfg: &ModelConfig, w: &WeightMap, dtype: DType) -> Result<Decoder<Gemma3Block>> {
    Decoder::load(cfg, w, dtype, GEMMA3, |parts, i| {
        Ok(Gemma3Block {
            input_layernorm: parts.norm(i, "input_layernorm")?,
            self_attn: parts.attention(i)?,
            post_attention_layernorm: parts.norm(i, "post_attention_layernorm")?,
            pre_feedforward_layernorm: parts.norm(i, "pre_feedforward_layernorm")?,
            mlp: parts.mlp(i)?,
            post_feedforward_layernorm: parts.norm(i, "post_feedforward_layernorm")?,
        })
    })
}

impl Block for Gemma3Block {
    fn forward(
        &self,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.input_layernorm.forward(x, ctx)?, step, cache, ctx)?;
        let x = (x + self.post_attention_layernorm.forward(&h, ctx)?)?;
        let h = self
            .mlp
            .forward(&self.pre_feedforward_layernorm.forward(&x, ctx)?, ctx)?;
        Ok((x + self.post_feedforward_layernorm.forward(&h, ctx)?)?)
    }

    fn projections(&self) -> (&Attention, &GatedMlp) {
        (&self.self_attn, &self.mlp)
    }

    fn projections_mut(&mut self) -> (&mut Attention, &mut GatedMlp) {
        (&mut self.self_attn, &mut self.mlp)
    }
}
