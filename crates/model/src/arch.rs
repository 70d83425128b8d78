//! What every architecture provides, and the parts they share (LM head, module naming).
//!
//! A new family is one file with its [`Family`] and its layer ([`Block`]), loaded as a
//! [`Decoder`], plus one line in [`load_architecture`].

use anyhow::Result;
use candle_core::{DType, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::lora::{Ctx, LoraLinear};
use crate::nn::{
    Activation, Attention, AttentionSpec, Embedding, GatedMlp, KvCache, Layout, RmsNorm,
    StepTensors,
};
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

/// One decoder layer of a family (the families differ in their layers only).
pub trait Block: Send + Sync {
    /// The layer on hidden states `x` `[rows, q, hidden]`, appending to `cache`.
    fn forward(
        &self,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor>;

    /// Its attention and MLP, which hold the LoRA-capable projections.
    fn projections(&self) -> (&Attention, &GatedMlp);

    /// Mutable access to the same.
    fn projections_mut(&mut self) -> (&mut Attention, &mut GatedMlp);
}

/// A decoder-only model of one family: the [`Trunk`] around a stack of its layers.
pub struct Decoder<B> {
    trunk: Trunk,
    layers: Vec<B>,
}

impl<B: Block> Decoder<B> {
    /// Loads `family`'s trunk and, with `block`, its `num_layers` layers.
    pub fn load(
        cfg: &ModelConfig,
        w: &WeightMap,
        dtype: DType,
        family: Family,
        block: impl Fn(&PartLoader, usize) -> Result<B>,
    ) -> Result<Self> {
        let parts = PartLoader::new(cfg, w, dtype, family);
        let layers = (0..cfg.num_layers)
            .map(|i| block(&parts, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Decoder {
            trunk: parts.trunk()?,
            layers,
        })
    }
}

impl<B: Block> Architecture for Decoder<B> {
    fn config(&self) -> &ModelConfig {
        &self.trunk.cfg
    }

    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.trunk.embed.forward(ids)
    }

    fn layer(
        &self,
        i: usize,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        self.layers[i].forward(x, step, cache, ctx)
    }

    fn final_norm(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        self.trunk.norm.forward(x, ctx)
    }

    fn head(&self) -> &LmHead {
        &self.trunk.head
    }

    fn head_mut(&mut self) -> &mut LmHead {
        &mut self.trunk.head
    }

    fn linears(&self) -> Vec<(String, &LoraLinear)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter().enumerate() {
            let (a, m) = b.projections();
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
        out
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter_mut().enumerate() {
            let (a, m) = b.projections_mut();
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
        out
    }
}

/// What every family has around its decoder layers: the configuration, the token
/// embeddings, the final norm and the LM head.
pub struct Trunk {
    cfg: ModelConfig,
    embed: Embedding,
    norm: RmsNorm,
    head: LmHead,
}

/// Where families differ in the parts they share.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Embeddings scaled by √hidden (Gemma).
    pub scaled_embeddings: bool,
    /// RMSNorm weights stored as `w` for `(1 + w)` (Gemma).
    pub norm_plus_one: bool,
    /// RMSNorm on queries and keys (Gemma-3).
    pub qk_norm: bool,
    /// The gated MLP's activation.
    pub activation: Activation,
}

/// Loads a family's parts from HF-named weights (`model.layers.{i}.…`).
pub struct PartLoader<'a> {
    w: &'a WeightMap,
    cfg: &'a ModelConfig,
    dtype: DType,
    family: Family,
    spec: AttentionSpec,
}

impl<'a> PartLoader<'a> {
    /// A loader for `family`'s parts of the model `cfg` describes, in `dtype`.
    pub fn new(cfg: &'a ModelConfig, w: &'a WeightMap, dtype: DType, family: Family) -> Self {
        let spec = AttentionSpec {
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: cfg.head_dim,
            hidden: cfg.hidden_size,
            scale: cfg.attn_scale,
            softcap: cfg.attn_softcap,
            bias: cfg.attention_bias,
            qk_norm_eps: family.qk_norm.then_some(cfg.rms_norm_eps),
            dtype,
        };
        PartLoader {
            w,
            cfg,
            dtype,
            family,
            spec,
        }
    }

    /// Layer `i`'s RMSNorm `name` (`input_layernorm`, …).
    pub fn norm(&self, i: usize, name: &str) -> Result<RmsNorm> {
        self.rms_norm(&format!("model.layers.{i}.{name}.weight"))
    }

    /// The RMSNorm of weight `name`.
    fn rms_norm(&self, name: &str) -> Result<RmsNorm> {
        let (hidden, eps) = (self.cfg.hidden_size, self.cfg.rms_norm_eps);
        RmsNorm::load(self.w, name, hidden, eps, self.family.norm_plus_one)
    }

    /// Layer `i`'s self-attention.
    pub fn attention(&self, i: usize) -> Result<Attention> {
        let prefix = format!("model.layers.{i}.self_attn");
        Attention::load(self.w, &prefix, &self.spec, i, &self.cfg.layers[i])
    }

    /// Layer `i`'s gated MLP.
    pub fn mlp(&self, i: usize) -> Result<GatedMlp> {
        let c = self.cfg;
        let prefix = format!("model.layers.{i}.mlp");
        let act = self.family.activation;
        let (hidden, inter) = (c.hidden_size, c.intermediate_size);
        GatedMlp::load(self.w, &prefix, hidden, inter, c.mlp_bias, act, self.dtype)
    }

    /// The embeddings, the final norm and the LM head.
    fn trunk(&self) -> Result<Trunk> {
        let c = self.cfg;
        let scale = self
            .family
            .scaled_embeddings
            .then(|| (c.hidden_size as f64).sqrt());
        let name = "model.embed_tokens.weight";
        let embed = Embedding::load(self.w, name, c.vocab_size, c.hidden_size, scale, self.dtype)?;
        Ok(Trunk {
            head: LmHead::load(self.w, c, &embed, self.dtype)?,
            norm: self.rms_norm("model.norm.weight")?,
            cfg: c.clone(),
            embed,
        })
    }
}

/// Builds the architecture named by the config.
pub fn load_architecture(
    cfg: &ModelConfig,
    w: &WeightMap,
    dtype: DType,
) -> Result<Box<dyn Architecture>> {
    Ok(match cfg.arch {
        Arch::Llama => Box::new(crate::llama::load(cfg, w, dtype)?),
        Arch::Gemma3 => Box::new(crate::gemma3::load(cfg, w, dtype)?),
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
