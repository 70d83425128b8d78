//! The LLaMA family (`LlamaForCausalLM`: LLaMA-2/3, SmolLM2): pre-norm decoder with GQA,
//! RoPE (default, linear, llama3 scaling), RMSNorm and SwiGLU, tied or untied LM head.
//! Reference: transformers `models/llama/modeling_llama.py`.

use anyhow::Result;
use candle_core::{DType, Tensor};

use crate::arch::{Block, Decoder, Family};
use crate::config::ModelConfig;
use crate::lora::Ctx;
use crate::nn::{Activation, Attention, GatedMlp, KvCache, RmsNorm, StepTensors};
use crate::weights::WeightMap;

/// LLaMA's parts: plain embeddings and norms, SwiGLU.
const LLAMA: Family = Family {
    scaled_embeddings: false,
    norm_plus_one: false,
    qk_norm: false,
    activation: Activation::Silu,
};

/// A LLaMA decoder layer: pre-norm attention and MLP.
pub struct LlamaBlock {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: GatedMlp,
}

/// Builds the model from HF-named weights.
pub fn load(cfg: &ModelConfig, w: &WeightMap, dtype: DType) -> Result<Decoder<LlamaBlock>> {
    Decoder::load(cfg, w, dtype, LLAMA, |parts, i| {
        Ok(LlamaBlock {
            input_layernorm: parts.norm(i, "input_layernorm")?,
            self_attn: parts.attention(i)?,
            post_attention_layernorm: parts.norm(i, "post_attention_layernorm")?,
            mlp: parts.mlp(i)?,
        })
    })
}

impl Block for LlamaBlock {
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
        let x = (x + h)?;
        let h = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x, ctx)?, ctx)?;
        Ok((x + h)?)
    }

    fn projections(&self) -> (&Attention, &GatedMlp) {
        (&self.self_attn, &self.mlp)
    }

    fn projections_mut(&mut self) -> (&mut Attention, &mut GatedMlp) {
        (&mut self.self_attn, &mut self.mlp)
    }
}
