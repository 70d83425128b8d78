//! HF `config.json` for the supported architectures.
//!
//! Both the classic layout (`rope_theta`, `rope_scaling`, `rope_local_base_freq`) written by
//! transformers 4.x and the Hub, and the `rope_parameters` layout written by transformers 5.x
//! are accepted.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// How rotary position embeddings are computed for one kind of layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// Base frequency θ.
    pub theta: f64,
    /// Frequency scaling variant.
    pub scaling: RopeScaling,
}

/// RoPE scaling variants (HF `rope_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    Default,
    /// Positions divided by `factor` (inverse frequencies divided by it).
    Linear {
        /// The scaling factor.
        factor: f64,
    },
    /// LLaMA-3.1 frequency-dependent scaling.
    Llama3 {
        /// The scaling factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context length of the original model.
        original_max_position_embeddings: f64,
    },
}

impl RopeConfig {
    /// Inverse frequencies for a head dimension `dim` (`dim / 2` values).
    pub fn inv_freq(&self, dim: usize) -> Vec<f32> {
        let base: Vec<f64> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / self.theta.powf(i as f64 / dim as f64))
            .collect();
        let scaled = match &self.scaling {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => {
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen > low_wavelen {
                            f / factor
                        } else if wavelen < high_wavelen {
                            f
                        } else {
                            let smooth = (old / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        };
        // HF computes inv_freq in float32.
        scaled.into_iter().map(|f| f as f32).collect()
    }

    /// Parses a `rope_scaling` / `rope_parameters` object (or its absence) with base `theta`.
    fn parse(params: Option<&Value>, theta: f64, origin: &str) -> Result<Self> {
        let Some(p) = params.filter(|p| !p.is_null()) else {
            return Ok(RopeConfig {
                theta,
                scaling: RopeScaling::Default,
            });
        };
        let theta = p.get("rope_theta").and_then(Value::as_f64).unwrap_or(theta);
        let kind = p
            .get("rope_type")
            .or_else(|| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num = |key: &str| -> Result<f64> {
            p.get(key)
                .and_then(Value::as_f64)
                .with_context(|| format!("{origin}: rope scaling `{kind}` needs a number `{key}`"))
        };
        let scaling = match kind {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear { factor: num("factor")? },
            "llama3" => RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            },
            other => bail!(
                "{origin}: unsupported rope scaling type `{other}` (supported: default, linear, llama3)"
            ),
        };
        Ok(RopeConfig { theta, scaling })
    }
}

/// Hyperparameters shared by the decoder architectures, normalised from `config.json`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Which architecture.
    pub arch: Arch,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (GQA).
    pub num_kv_heads: usize,
    /// Per-head dimension.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Whether the LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v/o projections.
    pub attention_bias: bool,
    /// Bias on gate/up/down projections.
    pub mlp_bias: bool,
    /// End-of-sequence token ids from `config.json`.
    pub eos_token_ids: Vec<u32>,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
    /// Per-layer attention settings.
    pub layers: Vec<LayerAttention>,
    /// Attention scores are multiplied by this (1/√head_dim, or query_pre_attn_scalar^-½).
    pub attn_scale: f64,
    /// Tanh soft-capping of attention scores.
    pub attn_softcap: Option<f64>,
    /// Tanh soft-capping of final logits.
    pub final_softcap: Option<f64>,
}

/// Attention settings of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAttention {
    /// Only the last `window` positions (including the query's own) are visible.
    pub sliding_window: Option<usize>,
    /// RoPE of this layer.
    pub rope: RopeConfig,
}

/// The supported architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `LlamaForCausalLM` (LLaMA-2/3, SmolLM2, …).
    Llama,
    /// `Gemma3ForCausalLM` text model (`gemma3_text`).
    Gemma3,
}

/// Fields common to both config layouts.
#[derive(Deserialize)]
struct RawCommon {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    eos_token_id: Option<Value>,
    bos_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
}

/// Reads a token id field that may be a number or a list of numbers.
pub fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Parses a `config.json` value; `origin` names the file in errors.
    pub fn from_json(v: &Value, origin: &str) -> Result<Self> {
        let arch = detect_arch(v, origin)?;
        let raw: RawCommon = serde_json::from_value(v.clone())
            .with_context(|| format!("{origin}: not a valid config for {arch:?}"))?;
        let act = raw
            .hidden_act
            .as_deref()
            .or(raw.hidden_activation.as_deref());
        let head_dim = raw
            .head_dim
            .unwrap_or(raw.hidden_size / raw.num_attention_heads.max(1));
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        let (layers, attn_scale, eps_default, tie_default) = match arch {
            Arch::Llama => {
                check_act(act, &["silu"], origin)?;
                let theta = f("rope_theta").unwrap_or(10000.0);
                let params = v.get("rope_parameters").or_else(|| v.get("rope_scaling"));
                let rope = RopeConfig::parse(params, theta, origin)?;
                let layer = LayerAttention {
                    sliding_window: None,
                    rope,
                };
                (
                    vec![layer; raw.num_hidden_layers],
                    (head_dim as f64).powf(-0.5),
                    1e-6,
                    false,
                )
            }
            Arch::Gemma3 => {
                check_act(act, &["gelu_pytorch_tanh", "gelu_tanh"], origin)?;
                let layers = gemma3_layers(v, raw.num_hidden_layers, origin)?;
                let scalar = f("query_pre_attn_scalar").unwrap_or(256.0);
                (layers, scalar.powf(-0.5), 1e-6, true)
            }
        };
        Ok(ModelConfig {
            arch,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(eps_default),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(tie_default),
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            eos_token_ids: token_ids(raw.eos_token_id.as_ref()),
            bos_token_id: raw.bos_token_id,
            pad_token_id: raw.pad_token_id,
            layers,
            attn_scale,
            attn_softcap: f("attn_logit_softcapping"),
            final_softcap: f("final_logit_softcapping"),
        })
    }
}

fn check_act(act: Option<&str>, ok: &[&str], origin: &str) -> Result<()> {
    match act {
        Some(a) if !ok.contains(&a) => {
            bail!(
                "{origin}: unsupported activation `{a}` (supported: {})",
                ok.join(", ")
            )
        }
        _ => Ok(()),
    }
}

/// Finds the architecture from `architectures` or `model_type`.
fn detect_arch(v: &Value, origin: &str) -> Result<Arch> {
    let archs: Vec<&str> = v
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
    if archs.contains(&"LlamaForCausalLM") || (archs.is_empty() && model_type == "llama") {
        return Ok(Arch::Llama);
    }
    if archs.contains(&"Gemma3ForCausalLM") || (archs.is_empty() && model_type == "gemma3_text") {
        return Ok(Arch::Gemma3);
    }
    bail!(
        "{origin}: unsupported architecture {:?} (model_type {model_type:?}); supported: \
         LlamaForCausalLM (llama), Gemma3ForCausalLM (gemma3_text)",
        archs
    )
}

/// Gemma-3's per-layer sliding/global pattern and RoPE bases.
fn gemma3_layers(v: &Value, n: usize, origin: &str) -> Result<Vec<LayerAttention>> {
    let window = v
        .get("sliding_window")
        .and_then(Value::as_u64)
        .map(|w| w as usize);
    let types: Vec<String> = match v.get("layer_types").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .map(|t| t.as_str().unwrap_or("").to_string())
            .collect(),
        None => {
            let pattern = v
                .get("sliding_window_pattern")
                .or_else(|| v.get("_sliding_window_pattern"))
                .and_then(Value::as_u64)
                .unwrap_or(6) as usize;
            (0..n)
                .map(|i| {
                    if (i + 1) % pattern.max(1) != 0 {
                        "sliding_attention"
                    } else {
                        "full_attention"
                    }
                    .to_string()
                })
                .collect()
        }
    };
    anyhow::ensure!(
        types.len() == n,
        "{origin}: layer_types has {} entries, expected num_hidden_layers = {n}",
        types.len()
    );
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let params = v.get("rope_parameters");
    let per = |kind: &str| params.and_then(|p| p.get(kind));
    let global = match per("full_attention") {
        Some(p) => RopeConfig::parse(Some(p), f("rope_theta").unwrap_or(1e6), origin)?,
        None => RopeConfig::parse(
            v.get("rope_scaling"),
            f("rope_theta").unwrap_or(1e6),
            origin,
        )?,
    };
    let local_theta = f("rope_local_base_freq").unwrap_or(1e4);
    let local = RopeConfig::parse(per("sliding_attention"), local_theta, origin)?;
    types
        .iter()
        .map(|t| match t.as_str() {
            "sliding_attention" => {
                let w = window
                    .with_context(|| format!("{origin}: sliding layers need `sliding_window`"))?;
                Ok(LayerAttention {
                    sliding_window: Some(w),
                    rope: local.clone(),
                })
            }
            "full_attention" => Ok(LayerAttention {
                sliding_window: None,
                rope: global.clone(),
            }),
            other => bail!("{origin}: unsupported layer type `{other}`"),
        })
        .collect()
}
