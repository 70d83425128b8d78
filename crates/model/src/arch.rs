//! What every architecture provides, and the parts they share (LM head, module naming).
//!
//! A new architecture is one file implementing [`Architecture`] plus one line in
//! [`load_architecture`].

use anyhow::Result;
use candle_core::{DType, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::lora::{Ctx, LoraLinear};
use crate::nn::{Attention, Embedding, GatedMlp, KvCache, Layout, StepTensors};
use crate::weights::WeightMap;

/// A decoder-only language model.
pub trait Architecture: Send + Sync {
    /// The normalised configuration.
    fn config(&self) -> &ModelConfig;

    /// The input embeddings of `ids` `[rows, q]`: `[rows, q, hidden]`.
    fn embed(&self, ids: &Tensor) -> Result<Tensor>;

    /// Decoder layer `i` on hidden states `x` `[rows, q, hidden]`, appending to `cache`.
    fn layer(
        &self,
        i: usize,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor>;

    /// The final norm of the last layer's output.
    fn final_norm(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor>;

    /// Runs the decoder on `ids` `[rows, q]` laid out as `layout`, appending to `cache`;
    /// returns final-norm hidden states `[rows, q, hidden]`.
    fn forward(
        &self,
        ids: &Tensor,
        layout: &Layout,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        let cfg = self.config();
        let step = StepTensors::new(layout, &cfg.layers, cfg.head_dim, ids.device())?;
        let mut x = self.embed(ids)?;
        for i in 0..cfg.num_layers {
            x = self.layer(i, &x, &step, cache, ctx)?;
        }
        cache.commit(layout);
        self.final_norm(&x, ctx)
    }

    /// The LM head.
    fn head(&self) -> &LmHead;

    /// Mutable access to the LM head.
    fn head_mut(&mut self) -> &mut LmHead;

    /// The LoRA-capable linear layers by HF module path (`model.layers.0.self_attn.q_proj`).
    fn linears(&self) -> Vec<(String, &LoraLinear)>;

    /// Mutable access to the same layers.
    fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)>;
}

/// Builds the architecture named by the config.
pub fn load_architecture(
    cfg: &ModelConfig,
    w: &WeightMap,
    dtype: DType,
) -> Result<Box<dyn Architecture>> {
    Ok(match cfg.arch {
        Arch::Llama => Box::new(crate::llama::Llama::load(cfg, w, dtype)?),
        Arch::Gemma3 => Box::new(crate::gemma3::Gemma3::load(cfg, w, dtype)?),
    })
}

/// The output projection to vocabulary logits (tied to the embeddings or separate), with
/// optional final tanh soft-capping.
#[derive(Debug, Clone)]
pub struct LmHead {
    proj: LoraLinear,
    softcap: Option<f64>,
}

impl LmHead {
    /// `lm_head.weight`, or the embedding matrix when tied.
    pub fn load(w: &WeightMap, cfg: &ModelConfig, embed: &Embedding, dtype: DType) -> Result<Self> {
        let weight = if cfg.tie_word_embeddings {
            embed.weight().clone()
        } else {
            w.get("lm_head.weight", &[cfg.vocab_size, cfg.hidden_size])?
        };
        Ok(LmHead {
            proj: LoraLinear::new(weight, None, dtype)?,
            softcap: cfg.final_softcap,
        })
    }

    /// f32 logits for hidden states `[…, hidden]`; `train` freezes a dense head weight (no
    /// weight gradient in backward).
    pub fn forward(&self, hidden: &Tensor, train: bool) -> Result<Tensor> {
        let logits = self
            .proj
            .forward(
                hidden,
                &Ctx {
                    train,
                    ..Ctx::default()
                },
            )?
            .to_dtype(DType::F32)?;
        match self.softcap {
            Some(c) => Ok(((logits / c)?.tanh()? * c)?),
            None => Ok(logits),
        }
    }

    /// The head's frozen product on the CPU's packed kernels, for training's fused loss:
    /// `None` where [`LmHead::forward`] does more than that product (a logit soft-cap, a
    /// bias) or where the kernels do not apply to the weight.
    pub fn frozen_product(&self) -> Result<Option<crate::lora::FrozenProduct>> {
        match self.softcap {
            Some(_) => Ok(None),
            None => self.proj.frozen_product(),
        }
    }

    /// Like [`LmHead::forward`] for hidden states `[rows, hidden]`, writing the logits
    /// row-major into `out` (resized; a buffer reused across decoding steps keeps its
    /// allocation).
    pub fn forward_into(&self, hidden: &Tensor, out: &mut Vec<f32>) -> Result<()> {
        if !self.proj.forward_packed_into(hidden, out)? {
            let logits = self
                .proj
                .forward(hidden, &Ctx::default())?
                .to_dtype(DType::F32)?;
            out.clear();
            out.extend(logits.flatten_all()?.to_vec1::<f32>()?);
        }
        if let Some(c) = self.softcap {
            let c = c as f32;
            for v in out.iter_mut() {
                *v = (*v / c).tanh() * c;
            }
        }
        Ok(())
    }

    /// The projection layer.
    pub fn linear(&self) -> &LoraLinear {
        &self.proj
    }

    /// Mutable access to the projection layer.
    pub fn linear_mut(&mut self) -> &mut LoraLinear {
        &mut self.proj
    }
}

fn block_names(i: usize) -> [String; 7] {
    let p = format!("model.layers.{i}");
    [
        format!("{p}.self_attn.q_proj"),
        format!("{p}.self_attn.k_proj"),
        format!("{p}.self_attn.v_proj"),
        format!("{p}.self_attn.o_proj"),
        format!("{p}.mlp.gate_proj"),
        format!("{p}.mlp.up_proj"),
        format!("{p}.mlp.down_proj"),
    ]
}

/// Appends a standard block's seven projections with their HF names.
pub fn push_block_linears<'a>(
    out: &mut Vec<(String, &'a LoraLinear)>,
    i: usize,
    a: &'a Attention,
    m: &'a GatedMlp,
) {
    let layers = [
        &a.q_proj,
        &a.k_proj,
        &a.v_proj,
        &a.o_proj,
        &m.gate_proj,
        &m.up_proj,
        &m.down_proj,
    ];
    out.extend(block_names(i).into_iter().zip(layers));
}

/// Mutable twin of [`push_block_linears`].
pub fn push_block_linears_mut<'a>(
    out: &mut Vec<(String, &'a mut LoraLinear)>,
    i: usize,
    a: &'a mut Attention,
    m: &'a mut GatedMlp,
) {
    let layers = [
        &mut a.q_proj,
        &mut a.k_proj,
        &mut a.v_proj,
        &mut a.o_proj,
        &mut m.gate_proj,
        &mut m.up_proj,
        &mut m.down_proj,
    ];
    out.extend(block_names(i).into_iter().zip(layers));
}
