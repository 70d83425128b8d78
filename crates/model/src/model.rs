//! [`Model`]: a loaded architecture with its tokenizer, resident LoRA adapters and the
//! entry points used by decoding and training.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use datm_adapter::{Adapter, LoraConfig, LoraPair};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::arch::{load_architecture, Architecture};
use crate::checkpoint::{train_ctx, CheckpointedPass};
use crate::config::ModelConfig;
use crate::kernels::Precision;
use crate::lora::{Adapters, Ctx, LoraLinear, LoraWeights, SeededDropout};
use crate::nn::{KvCache, Layout};
use crate::tokenizer::Tokenizer;
use crate::weights::{Weight, WeightMap};

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compute dtype for dense weights; `None` = f32.
    pub dtype: Option<DType>,
    /// Where the weights live.
    pub device: Device,
    /// Inference-speed weights for quantized (GGUF) sources: k-quant, Q8_0 and (on the CPU)
    /// other int8-block tensors stay quantized and every linear layer and the LM head are
    /// re-stored for the packed CPU kernels: int8 blocks (groups of 32 or 16) for the int8
    /// products where the path has them fastest ([`crate::cpu::Isa::packs_int8_by_default`]),
    /// and the rest in bf16 where the kernel path multiplies bf16 faster than f32
    /// ([`crate::cpu::Isa::packs_bf16_by_default`]), else as `--dtype f32` packs them. These paths have no backward pass: for training, and for
    /// exact work, use `false`, which dequantizes everything to `dtype`.
    pub quantized: bool,
    /// With `quantized: false` and f32 weights on the CPU: keep GGUF tensors of int8 blocks
    /// (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K: Gemma-3's embedding table and tied LM head, a
    /// quantized model's projections) quantized instead of dequantizing them, in a quarter of
    /// the memory or less. Every use of them stays exact in f32: embedding rows are
    /// dequantized as they are looked up, the packed inference kernels
    /// ([`Model::pack_for_inference`]) and training's frozen forward products multiply by the
    /// int8 values widened exactly (the backward ones too for Q8_0, else by the dequantized
    /// weight); nothing else may use such a model (candle's quantized matmul rounds its
    /// inputs).
    pub keep_int_blocks: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: None,
            device: Device::Cpu,
            quantized: true,
            keep_int_blocks: false,
        }
    }
}

/// Everything a loader produces before the architecture is built.
pub struct ModelParts {
    /// HF-style `config.json`.
    pub config: Value,
    /// HF-named weights.
    pub weights: WeightMap,
    /// The tokenizer, if the source has one.
    pub tokenizer: Option<Tokenizer>,
}

/// Reads an HF model directory or a `.gguf` file without building the model. GGUF weights
/// stay quantized where `opts.quantized` asks for it, else they are dequantized to
/// `opts.dtype` (f32 by default).
pub fn load_parts(path: &Path, opts: &LoadOptions) -> Result<ModelParts> {
    if path.is_dir() {
        let config = crate::hf::read_json(&path.join("config.json"))?;
        let files = crate::hf::safetensors_files(path)?;
        let weights =
            crate::hf::load_safetensors(&files, &opts.device, &path.display().to_string())?;
        let tokenizer = if path.join("tokenizer.json").exists() {
            Some(Tokenizer::from_hf_dir(path)?)
        } else {
            None
        };
        return Ok(ModelParts {
            config,
            weights,
            tokenizer,
        });
    }
    if path.extension().is_some_and(|e| e == "gguf") {
        let g = crate::gguf::load(path, gguf_mode(opts), &opts.device)?;
        return Ok(ModelParts {
            config: g.config,
            weights: g.weights,
            tokenizer: Some(g.tokenizer),
        });
    }
    if !path.exists() {
        bail!("{}: no such model directory or file", path.display());
    }
    bail!(
        "{}: expected an HF model directory or a .gguf file",
        path.display()
    )
}

/// Whether `path` is a `.gguf` file (not a directory).
fn is_gguf_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gguf") && path.is_file()
}

/// How [`crate::gguf`] loads the weights for `opts`: which quantized tensors stay quantized
/// ([`crate::gguf::stays_quantized`]).
fn gguf_mode(opts: &LoadOptions) -> crate::gguf::LoadMode {
    use crate::gguf::LoadMode;
    let f32_on_cpu = opts.dtype.unwrap_or(DType::F32) == DType::F32 && opts.device.is_cpu();
    if opts.quantized {
        LoadMode::Quantized
    } else if opts.keep_int_blocks && f32_on_cpu {
        LoadMode::F32KeepIntBlocks
    } else {
        LoadMode::Dequantize(opts.dtype.unwrap_or(DType::F32))
    }
}

/// A loaded model: architecture, tokenizer, generation defaults and LoRA adapters.
pub struct Model {
    arch: Box<dyn Architecture>,
    raw_config: Value,
    tokenizer: Option<Tokenizer>,
    eos_token_ids: Vec<u32>,
    adapters: BTreeMap<String, LoraConfig>,
    active: Option<String>,
    dtype: DType,
    device: Device,
    source: PathBuf,
}

/// The layout of a right-padded training batch: `input_ids` and `attention_mask`
/// `[batch, len]`, positions `0..len` as in an HF forward without `position_ids`, keys only
/// where the mask is 1.
fn train_layout(input_ids: &Tensor, attention_mask: &Tensor) -> Result<Layout> {
    let (b, l) = input_ids.dims2()?;
    let mask: Vec<Vec<u32>> = attention_mask.to_dtype(DType::U32)?.to_vec2()?;
    ensure!(
        mask.len() == b && mask.iter().all(|m| m.len() == l),
        "attention_mask must be [{b}, {l}]"
    );
    let q_pos: Vec<Vec<i64>> = (0..b).map(|_| (0..l as i64).collect()).collect();
    let k_pos = mask
        .iter()
        .map(|m| {
            m.iter()
                .enumerate()
                .map(|(i, &v)| (v != 0).then_some(i as i64))
                .collect()
        })
        .collect();
    Ok(Layout { q_pos, k_pos })
}
impl Model {
    /// Loads an HF directory or a `.gguf` file.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        Self::load_then(path, opts, false, |_| Ok(()))
    }

    /// Loads like [`Model::load`], then packs the model for inference
    /// ([`Model::pack_for_inference`]) while a GGUF file's tokenizer is still building.
    pub fn load_for_inference(path: &Path, opts: &LoadOptions) -> Result<Model> {
        Self::load_then(path, opts, false, Model::pack_for_inference)
    }

    /// Loads a `.gguf` file for inference with the int8 products ([`Precision::Int8`]) for
    /// its int8 blocks (groups of 32 or 16) wherever the kernel path has them
    /// ([`crate::cpu::Isa::int8_products`]), not only where they are the default
    /// ([`crate::cpu::Isa::packs_int8_by_default`]); everything else as
    /// [`Model::load_for_inference`] loads a GGUF file with its default options. `opts`
    /// gives the device (the CPU) and nothing else. An error for other files, and on a path
    /// without the int8 products.
    pub fn load_with_int8_products(path: &Path, opts: &LoadOptions) -> Result<Model> {
        ensure!(
            is_gguf_file(path) && opts.device.is_cpu(),
            "int8 products apply to a GGUF model's int8 blocks on the CPU; {} is not a .gguf file on the CPU",
            path.display()
        );
        crate::cpu::active()?.ensure_int8_products()?;
        let opts = LoadOptions {
            dtype: None,
            quantized: true,
            ..opts.clone()
        };
        Self::load_then(path, &opts, true, Model::pack_for_inference)
    }

    /// Loads an HF directory or a `.gguf` file and runs `then` on the model before its GGUF
    /// tokenizer is joined; `int8`: quantized weights packed for the int8 products wherever
    /// the path has them ([`Model::build`]).
    fn load_then(
        path: &Path,
        opts: &LoadOptions,
        int8: bool,
        then: impl FnOnce(&mut Model) -> Result<()>,
    ) -> Result<Model> {
        if !is_gguf_file(path) {
            let parts = load_parts(path, opts)?;
            let mut model = Model::build(parts, opts, path, int8)
                .with_context(|| format!("cannot load model {}", path.display()))?;
            then(&mut model)?;
            return Ok(model);
        }
        // A GGUF tokenizer (up to 262k tokens, merges derived from their scores) is built
        // on a thread of its own while the weights load and pack.
        std::thread::scope(|s| {
            let tokenizer = s.spawn(|| crate::gguf::load_tokenizer(path));
            let (config, weights) = crate::gguf::load_weights(path, gguf_mode(opts), &opts.device)?;
            let parts = ModelParts {
                config,
                weights,
                tokenizer: None,
            };
            let mut model = Model::build(parts, opts, path, int8)
                .with_context(|| format!("cannot load model {}", path.display()))?;
            then(&mut model)?;
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            model.set_tokenizer(tokenizer);
            Ok(model)
        })
    }

    /// Makes `tokenizer` the model's, with its end-of-sequence ids where it has any.
    fn set_tokenizer(&mut self, tokenizer: Tokenizer) {
        if !tokenizer.eos_ids().is_empty() {
            self.eos_token_ids = tokenizer.eos_ids().to_vec();
        }
        self.tokenizer = Some(tokenizer);
    }

    /// Builds a model from loaded parts; `source` names it in messages.
    pub fn from_parts(parts: ModelParts, opts: &LoadOptions, source: &Path) -> Result<Model> {
        Self::build(parts, opts, source, false)
    }

    /// [`Model::from_parts`]; `int8`: quantized weights packed for the int8 products wherever
    /// the path has them, not only where they are the default.
    fn build(parts: ModelParts, opts: &LoadOptions, source: &Path, int8: bool) -> Result<Model> {
        let origin = if source.is_dir() {
            source.join("config.json")
        } else {
            source.to_path_buf()
        };
        let origin = origin.display().to_string();
        let cfg = ModelConfig::from_json(&parts.config, &origin)?;
        // A bad `DATM_CPU` is an error here, before any kernel runs.
        crate::cpu::active()?;
        let dtype = opts.dtype.unwrap_or(DType::F32);
        let from_quantized = parts.weights.has_quantized();
        let weights = prepare_weights(parts.weights, gguf_mode(opts), dtype)?;
        let mut arch = load_architecture(&cfg, &weights, dtype)?;
        drop(weights);
        if opts.quantized && from_quantized {
            // int8 products where the path has them fastest (`Isa::packs_int8_by_default`:
            // AMD's AVX512-VNNI and AVX2), the other weights beside them and every weight elsewhere
            // bf16 where the path multiplies bf16 faster (`Isa::packs_bf16_by_default`: AMX,
            // AMD's AVX512-BF16 and AVX2), else f32 as `--dtype f32` packs them (int8 blocks
            // widened exactly); the int8 products on request.
            let precision = if int8 || crate::cpu::active()?.packs_int8_by_default() {
                Precision::Int8
            } else {
                Precision::int8_fallback()?
            };
            pack_for_inference(arch.as_mut(), precision)?;
        }
        let mut model = Model {
            arch,
            raw_config: parts.config,
            tokenizer: None,
            eos_token_ids: cfg.eos_token_ids.clone(),
            adapters: BTreeMap::new(),
            active: None,
            dtype,
            device: opts.device.clone(),
            source: source.to_path_buf(),
        };
        if let Some(tokenizer) = parts.tokenizer {
            model.set_tokenizer(tokenizer);
        }
        Ok(model)
    }

    /// Re-stores the f32 weights of the linear layers and the LM head for the packed f32
    /// inference kernel of [`crate::kernels`] on the active kernel path, and those of a bf16
    /// model (`--dtype bf16`) for the bf16 kernel: the same values, faster decoding (a bf16
    /// model's products take bf16 inputs and sum in f32, as PyTorch's bf16 matmul does), no
    /// backward pass (a packed model refuses to train). Other weights are left as they are.
    pub fn pack_for_inference(&mut self) -> Result<()> {
        let precision = if self.dtype == DType::BF16 {
            Precision::Bf16
        } else {
            Precision::F32
        };
        pack_for_inference(self.arch.as_mut(), precision)
    }

    /// Sets the arithmetic of every frozen linear layer and the LM head in training on the
    /// CPU's kernels (see [`crate::lora::LoraLinear::set_frozen_precision`]): bf16 products with f32 sums
    /// on an f32 model, the mixed precision of PyTorch's bf16 autocast.
    pub fn set_frozen_precision(&mut self, precision: Precision) {
        for (_, lin) in self.arch.linears_mut() {
            lin.set_frozen_precision(precision);
        }
        self.arch
            .head_mut()
            .linear_mut()
            .set_frozen_precision(precision);
    }

    /// The normalised configuration.
    pub fn config(&self) -> &ModelConfig {
        self.arch.config()
    }

    /// The `config.json` as loaded.
    pub fn raw_config(&self) -> &Value {
        &self.raw_config
    }

    /// Where the model came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The tokenizer (an error if the model came without one).
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .with_context(|| format!("{}: model has no tokenizer", self.source.display()))
    }

    /// End-of-sequence ids (the tokenizer's, which follow `generation_config.json` first, else
    /// `config.json`'s).
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Attaches a PEFT adapter under `name` (replacing one of that name), refusing adapters
    /// whose modules or shapes do not fit this model.
    pub fn attach_adapter(&mut self, name: &str, adapter: &Adapter) -> Result<()> {
        let shapes: Vec<(String, (usize, usize))> = self
            .arch
            .linears()
            .into_iter()
            .map(|(n, l)| (n, (l.out_dim(), l.in_dim())))
            .collect();
        adapter.check_against(shapes.iter().map(|(n, s)| (n.as_str(), *s)))?;
        ensure!(
            !adapter.modules.is_empty(),
            "adapter `{name}` has no LoRA modules"
        );
        let dropout = adapter.config.lora_dropout as f32;
        let device = self.device.clone();
        self.detach_adapter(name);
        for (module, lin) in self.arch.linears_mut() {
            let Some(pair) = adapter.modules.get(&module) else {
                continue;
            };
            lin.attach(LoraWeights {
                name: name.to_string(),
                a: Var::from_tensor(&pair.a.to_device(&device)?.to_dtype(DType::F32)?)?,
                b: Var::from_tensor(&pair.b.to_device(&device)?.to_dtype(DType::F32)?)?,
                scaling: adapter.scaling_for(&module),
                dropout,
            })?;
        }
        self.adapters
            .insert(name.to_string(), adapter.config.clone());
        Ok(())
    }

    /// Creates a fresh trainable adapter as PEFT initialises one (A Kaiming-uniform, B zero)
    /// on every module `config` targets; `seed` makes A reproducible.
    pub fn new_adapter(&mut self, name: &str, config: &LoraConfig, seed: u64) -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut modules = BTreeMap::new();
        for (module, lin) in self.arch.linears() {
            if !config.target_matches(&module) {
                continue;
            }
            let r = config.rank_for(&module);
            let bound = 1.0 / (lin.in_dim() as f64).sqrt();
            let a: Vec<f32> = (0..r * lin.in_dim())
                .map(|_| rng.gen_range(-bound..bound) as f32)
                .collect();
            let a = Tensor::from_vec(a, (r, lin.in_dim()), &Device::Cpu)?;
            let b = Tensor::zeros((lin.out_dim(), r), DType::F32, &Device::Cpu)?;
            modules.insert(module, LoraPair { a, b });
        }
        // A config targeting nothing is refused by `attach_adapter`, with PEFT's message.
        self.attach_adapter(name, &Adapter::new(config.clone(), modules)?)
    }

    /// Removes an adapter from every layer; returns whether it was resident.
    pub fn detach_adapter(&mut self, name: &str) -> bool {
        for (_, lin) in self.arch.linears_mut() {
            lin.detach(name);
        }
        if self.active.as_deref() == Some(name) {
            self.active = None;
        }
        self.adapters.remove(name).is_some()
    }

    /// Names of the resident adapters.
    pub fn adapter_names(&self) -> Vec<String> {
        self.adapters.keys().cloned().collect()
    }

    /// Chooses the adapter used by [`Model::forward_train`] and by default in generation.
    pub fn set_active_adapter(&mut self, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            ensure!(
                self.adapters.contains_key(n),
                "no adapter named `{n}` is attached"
            );
        }
        self.active = name.map(str::to_string);
        Ok(())
    }

    /// The active adapter.
    pub fn active_adapter(&self) -> Option<&str> {
        self.active.as_deref()
    }

    /// The trainable LoRA variables of an adapter, by PEFT tensor name
    /// (`base_model.model.{module}.lora_A.weight`), in module order.
    pub fn lora_vars(&self, name: &str) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (module, lin) in self.arch.linears() {
            if let Some(l) = lin.adapter(name) {
                out.push((
                    format!("base_model.model.{module}.lora_A.weight"),
                    l.a.clone(),
                ));
                out.push((
                    format!("base_model.model.{module}.lora_B.weight"),
                    l.b.clone(),
                ));
            }
        }
        out
    }

    /// A snapshot of a resident adapter in PEFT form (for saving after training).
    pub fn export_adapter(&self, name: &str) -> Result<Adapter> {
        let config = self
            .adapters
            .get(name)
            .with_context(|| format!("no adapter named `{name}` is attached"))?;
        let mut modules = BTreeMap::new();
        for (module, lin) in self.arch.linears() {
            if let Some(l) = lin.adapter(name) {
                let a = l.a.as_tensor().to_device(&Device::Cpu)?.copy()?;
                let b = l.b.as_tensor().to_device(&Device::Cpu)?.copy()?;
                modules.insert(module, LoraPair { a, b });
            }
        }
        Adapter::new(config.clone(), modules)
    }

    /// Training forward pass: `input_ids` and `attention_mask` `[batch, len]` (mask 1 = token,
    /// 0 = padding; positions are `0..len` as in an HF forward without `position_ids`).
    /// Returns final hidden states `[batch, len, hidden]` with the active adapter applied,
    /// dropout on and only differentiable ops; apply [`Model::lm_logits`] to the positions
    /// that need a loss. The LoRA dropout masks are a function of `dropout_seed` alone (see
    /// [`SeededDropout`]), so equal seeds give bit-identical passes; dense base weights are
    /// frozen (no weight gradients are computed).
    pub fn forward_train(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        dropout_seed: u64,
    ) -> Result<Tensor> {
        let layout = train_layout(input_ids, attention_mask)?;
        let dropout = SeededDropout::new(dropout_seed);
        let mut cache = KvCache::new(self.config().num_layers, input_ids.dim(0)?);
        self.arch.forward(
            &input_ids.to_dtype(DType::U32)?,
            &layout,
            &mut cache,
            &train_ctx(self.active.as_deref(), &dropout),
        )
    }

    /// Like [`Model::forward_train`] with activation (gradient) checkpointing per decoder
    /// layer: only each layer's input is kept, and [`CheckpointedPass::backward`] runs each
    /// layer again, last to first, to take its gradients. Same loss and gradients, the
    /// memory of one layer's activations instead of all of them.
    pub fn forward_train_checkpointed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        dropout_seed: u64,
    ) -> Result<CheckpointedPass<'_>> {
        let layout = train_layout(input_ids, attention_mask)?;
        CheckpointedPass::run(
            self.arch.as_ref(),
            &input_ids.to_dtype(DType::U32)?,
            &layout,
            SeededDropout::new(dropout_seed),
            self.active.as_deref(),
        )
    }

    /// f32 vocabulary logits for hidden states `[…, hidden]` in training mode: a dense head
    /// weight is frozen, so backward computes only the gradient of `hidden`.
    pub fn lm_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.arch.head().forward(hidden, true)
    }

    /// The LM head's frozen product for a fused training loss over it, where the CPU's
    /// packed kernels give [`Model::lm_logits`] exactly ([`crate::arch::LmHead::frozen_product`]).
    pub fn lm_head_product(&self) -> Result<Option<crate::lora::FrozenProduct>> {
        self.arch.head().frozen_product()
    }

    /// Inference forward of one step for all rows: new tokens `ids[r]` appended to `cache`
    /// row `r` at positions following its last key. Returns last-position logits `[rows, vocab]`.
    pub fn step(
        &self,
        ids: &[Vec<u32>],
        cache: &mut KvCache,
        adapter: Option<&str>,
    ) -> Result<Tensor> {
        let mut logits = Vec::new();
        self.step_into(ids, cache, Adapters::All(adapter), &mut logits)?;
        let vocab = logits.len() / ids.len().max(1);
        Ok(Tensor::from_vec(logits, (ids.len(), vocab), &Device::Cpu)?.to_device(&self.device)?)
    }

    /// Like [`Model::step`] with an adapter per row (or one for all), writing the logits
    /// row-major into `logits` (resized; decoding reuses one buffer across steps).
    pub fn step_into(
        &self,
        ids: &[Vec<u32>],
        cache: &mut KvCache,
        adapters: Adapters<'_>,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let hidden = self.step_hidden(ids, cache, adapters)?;
        self.head_into(&hidden, logits)
    }

    /// The logits of final hidden states `[rows, hidden]` (as [`Model::step_hidden`] returns
    /// them), written row-major into `logits` (resized).
    pub fn head_into(&self, hidden: &Tensor, logits: &mut Vec<f32>) -> Result<()> {
        self.arch.head().forward_into(hidden, logits)
    }

    /// [`Model::step_into`] without the LM head: the last position's final hidden states
    /// `[rows, hidden]`.
    pub fn step_hidden(
        &self,
        ids: &[Vec<u32>],
        cache: &mut KvCache,
        adapters: Adapters<'_>,
    ) -> Result<Tensor> {
        self.check_adapters(adapters)?;
        let rows = ids.len();
        ensure!(
            rows == cache.rows(),
            "step has {rows} rows but the cache {}",
            cache.rows()
        );
        let q = ids.first().map_or(0, Vec::len);
        ensure!(
            ids.iter().all(|r| r.len() == q),
            "all rows of a step must add the same number of tokens"
        );
        let q_pos: Vec<Vec<i64>> = cache
            .k_pos
            .iter()
            .map(|kp| {
                let next = kp.iter().rev().find_map(|p| *p).map_or(0, |p| p + 1);
                (next..next + q as i64).collect()
            })
            .collect();
        let layout = cache.layout_for(q_pos);
        let flat: Vec<u32> = ids.concat();
        let t = Tensor::from_vec(flat, (rows, q), &self.device)?;
        let ctx = Ctx {
            adapters,
            ..Ctx::default()
        };
        let hidden = self.arch.forward(&t, &layout, cache, &ctx)?;
        Ok(hidden.narrow(1, q - 1, 1)?.squeeze(1)?)
    }

    /// Full-sequence logits `[len, vocab]` for one token sequence (inference mode).
    pub fn logits(&self, ids: &[u32], adapter: Option<&str>) -> Result<Tensor> {
        let mut cache = KvCache::new(self.config().num_layers, 1);
        let layout = cache.layout_for(vec![(0..ids.len() as i64).collect()]);
        let t = Tensor::from_vec(ids.to_vec(), (1, ids.len()), &self.device)?;
        let hidden = self.arch.forward(
            &t,
            &layout,
            &mut cache,
            &Ctx {
                adapters: Adapters::All(adapter),
                ..Ctx::default()
            },
        )?;
        self.arch.head().forward(&hidden.squeeze(0)?, false)
    }

    /// An empty KV cache with `rows` rows for this model.
    pub fn new_cache(&self, rows: usize) -> KvCache {
        KvCache::new(self.config().num_layers, rows)
    }

    /// The LoRA-capable linear layers by HF module path.
    pub fn linears(&self) -> Vec<(String, &LoraLinear)> {
        self.arch.linears()
    }

    /// Checks that every adapter named is attached.
    pub(crate) fn check_adapters(&self, adapters: Adapters<'_>) -> Result<()> {
        for n in adapters.names() {
            ensure!(
                self.adapters.contains_key(n),
                "no adapter named `{n}` is attached"
            );
        }
        Ok(())
    }
}

/// Re-stores every linear layer and the LM head for the packed inference kernels (see
/// [`LoraLinear::pack`]); layers that do not fit stay as they are.
fn pack_for_inference(arch: &mut dyn Architecture, precision: Precision) -> Result<()> {
    use rayon::prelude::*;
    arch.linears_mut()
        .into_par_iter()
        .try_for_each(|(_, lin)| lin.pack(precision).map(|_| ()))?;
    arch.head_mut().linear_mut().pack(precision)?;
    Ok(())
}

/// Dequantizes what should not stay quantized under `mode` ([`crate::gguf::stays_quantized`])
/// and casts dense weights to `dtype`.
fn prepare_weights(w: WeightMap, mode: crate::gguf::LoadMode, dtype: DType) -> Result<WeightMap> {
    let mut out = WeightMap::new(w.origin().to_string());
    for (n, weight) in w.into_weights() {
        let weight = match weight {
            Weight::Quantized(q)
                if crate::gguf::stays_quantized(mode, q.dtype(), q.device().is_cpu()) =>
            {
                Weight::Quantized(q)
            }
            Weight::Quantized(q) => Weight::Dense(q.dequantize(&q.device())?.to_dtype(dtype)?),
            Weight::Dense(t) => Weight::Dense(t),
        };
        out.insert(n, weight);
    }
    Ok(out)
}
