//! The LoRA-aware linear layer shared by every architecture.
//!
//! `y = x·Wᵀ + b + Σ B·A·dropout(x)·scaling` for the adapter chosen by the forward
//! [`Ctx`], PEFT's formula. The base weight is dense or quantized (GGUF k-quants through
//! candle's `QMatMul`); adapters are `Var`s so they can be trained.

use anyhow::{ensure, Context, Result};
use candle_core::backend::BackendStorage;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Storage, Tensor, Var};
use rand::{Rng, SeedableRng};
use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use crate::blocks::IntBlocks;
use crate::kernels::{PackedMatrix, Precision};
use crate::weights::Weight;

/// Per-forward choices: training mode (dropout on, differentiable ops only) and the adapters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// Training mode: LoRA dropout is applied, only differentiable ops are used and dense
    /// base weights are frozen (no weight gradient is computed, see [`frozen_matmul_t`]).
    pub train: bool,
    /// The adapter of each row.
    pub adapters: Adapters<'a>,
    /// Source of the LoRA dropout masks in training mode (no dropout when `None`).
    pub dropout: Option<&'a SeededDropout>,
}

/// Which adapter each row of a forward pass uses (rows are the first dimension of every
/// layer input).
#[derive(Debug, Clone, Copy)]
pub enum Adapters<'a> {
    /// The same adapter on every row (`None` = the base model).
    All(Option<&'a str>),
    /// Row `i` uses entry `i`. Rows of different adapters share the base matmuls; each run of
    /// consecutive rows with the same adapter gets that adapter's delta (Punica's SGMV
    /// grouping), so a row's output is the one it would have in a batch of its adapter alone.
    PerRow(&'a [Option<&'a str>]),
}

impl Default for Adapters<'_> {
    fn default() -> Self {
        Adapters::All(None)
    }
}

impl<'a> Adapters<'a> {
    /// Runs of consecutive rows with the same adapter: `(first row, rows, adapter)`;
    /// `rows` is the batch size, checked against a per-row list.
    pub fn runs(&self, rows: usize) -> Result<Vec<(usize, usize, Option<&'a str>)>> {
        let names = match self {
            Adapters::All(name) => return Ok(vec![(0, rows, *name)]),
            Adapters::PerRow(names) => names,
        };
        ensure!(
            names.len() == rows,
            "{} per-row adapters given for a batch of {rows} rows",
            names.len()
        );
        let mut runs: Vec<(usize, usize, Option<&'a str>)> = Vec::new();
        for (i, &name) in names.iter().enumerate() {
            match runs.last_mut() {
                Some(run) if run.2 == name => run.1 += 1,
                _ => runs.push((i, 1, name)),
            }
        }
        Ok(runs)
    }

    /// Every distinct adapter named.
    pub fn names(&self) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = match self {
            Adapters::All(name) => name.iter().copied().collect(),
            Adapters::PerRow(names) => names.iter().flatten().copied().collect(),
        };
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Deterministic dropout masks for one forward pass: the `n`-th dropout call of the pass
/// draws its mask from a `StdRng` seeded with a mix of the pass seed and `n`. Layers run in
/// a fixed order, so the masks depend only on the seed, never on thread scheduling.
#[derive(Debug)]
pub struct SeededDropout {
    seed: u64,
    calls: Cell<u64>,
}

impl SeededDropout {
    /// Masks for a forward pass with this seed.
    pub fn new(seed: u64) -> Self {
        SeededDropout {
            seed,
            calls: Cell::new(0),
        }
    }

    /// Dropout calls drawn so far in this pass.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// Draws the next masks as call `n` onwards did: a layer run again (activation
    /// checkpointing) gets the masks of its first run.
    pub fn rewind(&self, n: u64) {
        self.calls.set(n);
    }

    /// Zeroes each element of `x` with probability `p` and scales the rest by `1/(1-p)`.
    pub fn apply(&self, x: &Tensor, p: f32) -> Result<Tensor> {
        let mask = self.mask(x, p)?;
        Ok((x * mask)?)
    }

    /// The next mask for `x` (its shape, dtype and device): each element `1/(1-p)`, or 0 with
    /// probability `p`.
    pub fn mask(&self, x: &Tensor, p: f32) -> Result<Tensor> {
        ensure!(
            (0.0..1.0).contains(&p),
            "dropout probability {p} not in [0, 1)"
        );
        let n = self.calls.get();
        self.calls.set(n + 1);
        let call_seed = splitmix64(self.seed ^ splitmix64(n));
        let scale = 1.0 / (1.0 - p);
        // Fixed-size chunks, each with its own stream, filled in parallel: the mask depends
        // on the seed only, not on the number of threads.
        let mask = crate::pool::par_collect(x.elem_count(), DROPOUT_CHUNK, |i| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(splitmix64(call_seed ^ i as u64));
            std::iter::repeat_with(move || if rng.gen::<f32>() >= p { scale } else { 0.0 })
        });
        Ok(Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?)
    }
}

/// Mask values drawn from one random stream.
const DROPOUT_CHUNK: usize = 4096;

/// SplitMix64's finaliser: a bijective mix so nearby seeds give unrelated streams.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One resident adapter's matrices on one layer.
#[derive(Debug, Clone)]
pub struct LoraWeights {
    /// Adapter name.
    pub name: String,
    /// `lora_A`, shape `[r, in]`.
    pub a: Var,
    /// `lora_B`, shape `[out, r]`.
    pub b: Var,
    /// `alpha / r` (or `alpha / √r` for rsLoRA).
    pub scaling: f64,
    /// Dropout probability on the adapter input at train time.
    pub dropout: f32,
}

/// The base weight of a linear layer.
#[derive(Debug, Clone)]
enum Base {
    Dense(Tensor),
    Quantized(QMatMul, Arc<QTensor>),
    Packed(Arc<PackedMatrix>),
}

/// A linear layer (`[out, in]` weight, optional bias) with any number of resident LoRA adapters.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    base: Base,
    bias: Option<Tensor>,
    adapters: Vec<LoraWeights>,
    /// The resident adapters' factors for the packed kernels, while the base is packed.
    packed_adapters: Vec<PackedLora>,
    /// A dense f32 base weight packed for training on the CPU, once it trains.
    frozen: OnceLock<Arc<FrozenPanels>>,
    /// The arithmetic of `frozen` ([`LoraLinear::set_frozen_precision`]).
    frozen_precision: Precision,
    in_dim: usize,
    out_dim: usize,
}

impl LoraLinear {
    /// Builds a layer from a weight (`[out, in]`) and optional bias; dense weights are cast to
    /// `dtype`.
    pub fn new(weight: Weight, bias: Option<Tensor>, dtype: DType) -> Result<Self> {
        let dims = weight.dims();
        ensure!(dims.len() == 2, "linear weight must be 2-D, got {dims:?}");
        let base = match weight {
            Weight::Dense(t) => Base::Dense(t.to_dtype(dtype)?),
            Weight::Quantized(q) => Base::Quantized(QMatMul::from_arc(q.clone())?, q),
        };
        let bias = bias.map(|b| b.to_dtype(dtype)).transpose()?;
        Ok(LoraLinear {
            base,
            bias,
            adapters: Vec::new(),
            packed_adapters: Vec::new(),
            frozen: OnceLock::new(),
            frozen_precision: Precision::F32,
            in_dim: dims[1],
            out_dim: dims[0],
        })
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The base weight as a dense tensor (dequantized if needed), `[out, in]`.
    pub fn dense_weight(&self) -> Result<Tensor> {
        Ok(match &self.base {
            Base::Dense(t) => t.clone(),
            Base::Quantized(_, q) => q.dequantize(&q.device())?,
            Base::Packed(m) => m.to_tensor()?,
        })
    }

    /// Re-stores the base weight for the packed inference kernels of [`crate::kernels`]
    /// on the active kernel path (no backward pass). `Precision::F32` keeps the values
    /// exactly and applies only to f32 weights; `Precision::Bf16` rounds them;
    /// `Precision::Int8` applies to GGUF int8 blocks (groups of 32 or 16 inputs), other
    /// weights taking [`Precision::int8_fallback`]. Returns
    /// false, leaving the layer as it is, when the weight is not an f32 or quantized weight
    /// on the CPU, or (bf16) its input size is odd.
    pub fn pack(&mut self, precision: Precision) -> Result<bool> {
        let precision = match &self.base {
            Base::Quantized(_, q) if IntBlocks::supports(q.dtype()) => precision,
            _ if precision == Precision::Int8 => Precision::int8_fallback()?,
            _ => precision,
        };
        let fits = match &self.base {
            Base::Dense(t) => {
                t.device().is_cpu() && (t.dtype() == DType::F32 || precision == Precision::Bf16)
            }
            Base::Quantized(_, q) => q.device().is_cpu(),
            Base::Packed(_) => false,
        };
        if !fits || (precision == Precision::Bf16 && !self.in_dim.is_multiple_of(2)) {
            return Ok(false);
        }
        let m = match &self.base {
            // Int8 blocks pack from their blocks, without an f32 copy of the weight
            // (Gemma-3's tied LM head: 671 MB): in f32 as their int8 values and scales, in
            // bf16 rounded a row at a time.
            Base::Quantized(_, q) if IntBlocks::supports(q.dtype()) => {
                let (n, k) = (self.out_dim, self.in_dim);
                PackedMatrix::pack_int_blocks(q.dtype(), &q.data()?, n, k, precision)?
            }
            // Borrowed, not copied: a tied LM head's weight is the (large) embedding table.
            _ => with_f32_data(&self.dense_weight()?, |w| {
                PackedMatrix::pack(w, self.out_dim, self.in_dim, precision)
            })?,
        };
        self.base = Base::Packed(Arc::new(m));
        // A packed layer never trains: the training packs, if any, are dropped.
        self.frozen = OnceLock::new();
        self.packed_adapters = self
            .adapters
            .iter()
            .map(PackedLora::pack)
            .collect::<Result<_>>()?;
        Ok(true)
    }

    /// The arithmetic of the frozen base weight in training on the CPU's kernels: `F32`
    /// (the default) multiplies exactly as PyTorch's f32 layers do; `Bf16` rounds the weight
    /// and the inputs of its products (forward and backward) to bf16 and sums in f32, as
    /// PyTorch's bf16 autocast does, leaving everything else f32.
    pub fn set_frozen_precision(&mut self, precision: Precision) {
        if precision != self.frozen_precision {
            self.frozen_precision = precision;
            self.frozen = OnceLock::new();
        }
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Adds (or replaces) an adapter; `a` must be `[r, in]` and `b` `[out, r]`.
    pub fn attach(&mut self, lora: LoraWeights) -> Result<()> {
        let (ad, bd) = (lora.a.dims(), lora.b.dims());
        ensure!(
            ad.len() == 2
                && bd.len() == 2
                && ad[1] == self.in_dim
                && bd[0] == self.out_dim
                && ad[0] == bd[1],
            "adapter `{}` has lora_A {ad:?} and lora_B {bd:?}, expected [r, {}] and [{}, r]",
            lora.name,
            self.in_dim,
            self.out_dim
        );
        self.detach(&lora.name);
        if matches!(self.base, Base::Packed(_)) {
            self.packed_adapters.push(PackedLora::pack(&lora)?);
        }
        self.adapters.push(lora);
        Ok(())
    }

    /// Removes an adapter; returns whether it was there.
    pub fn detach(&mut self, name: &str) -> bool {
        let before = self.adapters.len();
        self.adapters.retain(|l| l.name != name);
        self.packed_adapters.retain(|p| p.name != name);
        before != self.adapters.len()
    }

    /// The adapter of that name on this layer.
    pub fn adapter(&self, name: &str) -> Option<&LoraWeights> {
        self.adapters.iter().find(|l| l.name == name)
    }

    /// `B·A·scaling` of an adapter (`[out, in]`, f32), PEFT's `get_delta_weight`.
    pub fn delta_weight(&self, name: &str) -> Result<Option<Tensor>> {
        let Some(l) = self.adapter(name) else {
            return Ok(None);
        };
        let b = l.b.as_tensor().to_dtype(DType::F32)?;
        let a = l.a.as_tensor().to_dtype(DType::F32)?;
        Ok(Some((b.matmul(&a)? * l.scaling)?))
    }

    /// Folds an adapter into a dense copy of the base weight (PEFT's `merge_and_unload`) and
    /// returns the merged weight in `dtype`.
    pub fn merged_weight(&self, name: &str, dtype: DType) -> Result<Tensor> {
        let w = self.dense_weight()?;
        let merged = match self.delta_weight(name)? {
            Some(d) => (w.to_dtype(DType::F32)? + d)?,
            None => w,
        };
        Ok(merged.to_dtype(dtype)?)
    }

    /// Applies the layer to `x` (`[rows, …, in]`), with each row's adapter from `ctx`.
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if let Some(y) = self.forward_fused_train(x, ctx)? {
            return Ok(y);
        }
        let y = self.forward_base(x, ctx.train)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let rows = if x.rank() < 2 { 1 } else { x.dim(0)? };
        let runs = ctx.adapters.runs(rows)?;
        let resident = |name: Option<&str>| name.and_then(|n| self.adapter(n));
        if let [(_, _, name)] = runs.as_slice() {
            return match resident(*name) {
                Some(l) => Ok((&y + self.delta(l, x, &y, ctx)?)?),
                None => Ok(y),
            };
        }
        if runs.iter().all(|r| resident(r.2).is_none()) {
            return Ok(y);
        }
        let parts = runs
            .iter()
            .map(|&(start, n, name)| {
                let ys = y.narrow(0, start, n)?;
                match resident(name) {
                    Some(l) => Ok((&ys + self.delta(l, &x.narrow(0, start, n)?, &ys, ctx)?)?),
                    None => Ok(ys),
                }
            })
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Training on the CPU with one adapter, an f32 base weight packed for training and no
    /// bias: the whole layer as one op ([`FrozenLoraLinear`]); `None` where that does not
    /// apply.
    fn forward_fused_train(&self, x: &Tensor, ctx: &Ctx) -> Result<Option<Tensor>> {
        let (None, true) = (&self.bias, ctx.train && x.rank() >= 2) else {
            return Ok(None);
        };
        let [(_, _, Some(name))] = ctx.adapters.runs(x.dim(0)?)?[..] else {
            return Ok(None);
        };
        let Some(l) = self.adapter(name) else {
            return Ok(None);
        };
        let f32s = [x.dtype(), l.a.dtype(), l.b.dtype()] == [DType::F32; 3];
        let Some(panels) = self.frozen_panels()?.filter(|_| f32s) else {
            return Ok(None);
        };
        let mask = match ctx.dropout {
            Some(d) if l.dropout > 0.0 => Some(d.mask(x, l.dropout)?.flatten_to(x.rank() - 2)?),
            _ => None,
        };
        let op = FrozenLoraLinear {
            panels,
            mask,
            scaling: l.scaling,
        };
        let out = self.out_dim;
        rows_op(x, out, |x2| {
            Ok(x2.apply_op3(l.a.as_tensor(), l.b.as_tensor(), op)?)
        })
        .map(Some)
    }

    /// PEFT's `B·A·dropout(x)·scaling` of adapter `l`, in the dtype of the base output `y`.
    fn delta(&self, l: &LoraWeights, x: &Tensor, y: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if let Some(p) = self.packed_adapters.iter().find(|p| p.name == l.name) {
            return p.delta(x, l.scaling, y.dtype());
        }
        let xin = x.to_dtype(l.a.dtype())?;
        let xin = match ctx.dropout {
            Some(d) if ctx.train && l.dropout > 0.0 => d.apply(&xin, l.dropout)?,
            _ => xin,
        };
        // Scaling the rank-r intermediate instead of the output saves a pass over `[…, out]`.
        let low = (matmul_t(&xin, l.a.as_tensor())? * l.scaling)?;
        let up = matmul_t(&low, l.b.as_tensor())?;
        Ok(up.to_dtype(y.dtype())?)
    }

    fn forward_base(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.base {
            Base::Dense(w) if train => match self.frozen_panels()? {
                Some(panels) => panels.matmul_t(&x.to_dtype(DType::F32)?),
                None => frozen_matmul_t(&x.to_dtype(w.dtype())?, w),
            },
            // Exact: int8 blocks on the CPU (kept by `LoadOptions::keep_int_blocks`) multiply as
            // its dequantized f32 weight would, in training and in inference (a training
            // model's validation loss), never through QMatMul's rounded inputs.
            Base::Quantized(_, q) if train || exact_on_cpu(q) => {
                let x32 = x.to_dtype(DType::F32)?;
                let y = match self.frozen_panels()? {
                    Some(panels) => panels.matmul_t(&x32)?,
                    None => frozen_matmul_t(&x32, &q.dequantize(&q.device())?)?,
                };
                Ok(y.to_dtype(x.dtype())?)
            }
            Base::Dense(w) => matmul_t(&x.to_dtype(w.dtype())?, w),
            Base::Quantized(q, _) => {
                use candle_core::Module;
                let x32 = x.to_dtype(DType::F32)?;
                Ok(q.forward(&x32)
                    .context("quantized matmul")?
                    .to_dtype(x.dtype())?)
            }
            Base::Packed(_) if train => {
                anyhow::bail!("this layer is packed for inference and cannot be trained")
            }
            Base::Packed(m) => {
                let y = packed_matmul(m, x)?;
                let mut out = x.dims().to_vec();
                *out.last_mut().expect("rank >= 1") = self.out_dim;
                Ok(Tensor::from_vec(y, out, x.device())?.to_dtype(x.dtype())?)
            }
        }
    }

    /// The base weight packed for training on the CPU's kernels (packed on the first call)
    /// in the layer's frozen precision (f32 where a size is odd, which bf16 cannot pack):
    /// an f32 weight, or one of GGUF int8 blocks (in f32 as its int8 values: both products
    /// for Q8_0, the forward one for the other types); `None` where they do not
    /// apply: other weights, weights off the CPU, or the CPU fast paths off
    /// ([`crate::fused::set_cpu_fast_paths`]).
    fn frozen_panels(&self) -> Result<Option<Arc<FrozenPanels>>> {
        let fits = match &self.base {
            Base::Dense(w) => w.dtype() == DType::F32 && w.device().is_cpu(),
            Base::Quantized(_, q) => exact_on_cpu(q),
            Base::Packed(_) => false,
        };
        if !fits || !crate::fused::cpu_fast_paths() {
            return Ok(None);
        }
        if let Some(p) = self.frozen.get() {
            return Ok(Some(p.clone()));
        }
        let even = self.in_dim.is_multiple_of(2) && self.out_dim.is_multiple_of(2);
        let precision = if even {
            self.frozen_precision
        } else {
            Precision::F32
        };
        let panels = Arc::new(match &self.base {
            Base::Quantized(_, q) if q.dtype() == candle_core::quantized::GgmlDType::Q8_0 => {
                FrozenPanels::pack_q8_0(&q.data()?, self.out_dim, self.in_dim, precision)?
            }
            Base::Quantized(_, q) if precision == Precision::F32 => {
                FrozenPanels::pack_int_blocks(q, &self.dense_weight()?)?
            }
            _ => FrozenPanels::pack(&self.dense_weight()?, precision)?,
        });
        Ok(Some(self.frozen.get_or_init(|| panels).clone()))
    }

    /// The frozen base product of a layer without bias on the CPU's packed training
    /// kernels (in its frozen precision), for fused ops built on it; `None` where
    /// [`LoraLinear::forward`] in training mode would not multiply by those panels.
    pub fn frozen_product(&self) -> Result<Option<FrozenProduct>> {
        if self.bias.is_some() {
            return Ok(None);
        }
        Ok(self.frozen_panels()?.map(FrozenProduct))
    }

    /// For a packed layer without bias: `x · wᵀ` as f32 values written into `out` (resized,
    /// its allocation reused), returning true; false, with `out` untouched, for other layers.
    /// Adapters are not applied.
    pub fn forward_packed_into(&self, x: &Tensor, out: &mut Vec<f32>) -> Result<bool> {
        match (&self.base, &self.bias) {
            (Base::Packed(m), None) => {
                packed_matmul_into(m, x, out)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// An adapter's factors packed for the inference kernels of a packed layer. Each output of
/// [`PackedMatrix`] is one FMA chain over its inputs in order, whatever the number of rows,
/// so a row's delta is the same alone or in any batch (candle's GEMM changes its summation
/// with the row count on some CPUs), and the same on every kernel path.
#[derive(Debug, Clone)]
struct PackedLora {
    name: String,
    /// `lora_A`, `[r, in]`.
    a: Arc<PackedMatrix>,
    /// `lora_B`, `[out, r]`.
    b: Arc<PackedMatrix>,
}

impl PackedLora {
    fn pack(l: &LoraWeights) -> Result<Self> {
        let pack = |t: &Tensor| -> Result<Arc<PackedMatrix>> {
            let (n, k) = t.dims2()?;
            let m = with_f32_data(t, |w| PackedMatrix::pack(w, n, k, Precision::F32))?;
            Ok(Arc::new(m))
        };
        Ok(PackedLora {
            name: l.name.clone(),
            a: pack(l.a.as_tensor())?,
            b: pack(l.b.as_tensor())?,
        })
    }

    /// `B·A·x·scaling` (inference: no dropout) for `x` `[…, in]`, in `dtype`.
    fn delta(&self, x: &Tensor, scaling: f64, dtype: DType) -> Result<Tensor> {
        let mut low = packed_matmul(&self.a, x)?;
        let scaling = scaling as f32;
        low.iter_mut().for_each(|v| *v *= scaling);
        let up = self.b.matmul_t(&low, low.len() / self.a.n())?;
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = self.b.n();
        Ok(Tensor::from_vec(up, dims, x.device())?.to_dtype(dtype)?)
    }
}

/// Whether a quantized weight multiplies exactly, through its dequantized values: int8
/// blocks on the CPU ([`IntBlocks`]), whose `int8 × scale − offset` values f32 holds exactly.
fn exact_on_cpu(q: &QTensor) -> bool {
    IntBlocks::supports(q.dtype()) && q.device().is_cpu()
}

/// A frozen f32 base weight packed for training, in f32 or bf16: `W` for the forward `x·Wᵀ`
/// and `Wᵀ` for the backward `∂x = ∂y·W`, on the packed kernels of [`crate::kernels`], which multiply
/// without repacking the weight at every call as candle's GEMM does (twice the weight's
/// memory, for a faster step).
#[derive(Debug)]
struct FrozenPanels {
    w: PackedMatrix,
    wt: PackedMatrix,
}

impl FrozenPanels {
    /// A row-major `[n, k]` weight of GGUF Q8_0 blocks: in f32 kept as its int8 values.
    fn pack_q8_0(blocks: &[u8], n: usize, k: usize, precision: Precision) -> Result<Self> {
        Ok(FrozenPanels {
            w: PackedMatrix::pack_q8_0(blocks, n, k, precision)?,
            wt: PackedMatrix::pack_q8_0_transposed(blocks, n, k, precision)?,
        })
    }

    /// A weight of other GGUF int8 blocks in f32: the forward product from its int8 values,
    /// the backward one from its dequantized weight `dense` (the same values).
    fn pack_int_blocks(q: &QTensor, dense: &Tensor) -> Result<Self> {
        let (n, k) = dense.dims2()?;
        Ok(FrozenPanels {
            w: PackedMatrix::pack_int_blocks(q.dtype(), &q.data()?, n, k, Precision::F32)?,
            wt: with_f32_data(dense, |data| {
                PackedMatrix::pack_transposed(data, n, k, Precision::F32)
            })?,
        })
    }

    fn pack(w: &Tensor, precision: Precision) -> Result<Self> {
        let (n, k) = w.dims2()?;
        with_f32_data(w, |data| {
            Ok(FrozenPanels {
                w: PackedMatrix::pack(data, n, k, precision)?,
                wt: PackedMatrix::pack_transposed(data, n, k, precision)?,
            })
        })
    }

    /// `x · Wᵀ` for f32 `x` `[…, in]`, differentiable in `x` only.
    fn matmul_t(self: Arc<Self>, x: &Tensor) -> Result<Tensor> {
        let out = self.w.n();
        rows_op(x, out, |x2| Ok(x2.apply_op1(FrozenPackedMatmulT(self))?))
    }
}

/// A frozen layer's packed training weight ([`LoraLinear::frozen_product`]): its product
/// and the product's input gradient on row-major f32 slices, the arithmetic of the layer's
/// training forward and backward passes.
#[derive(Debug, Clone)]
pub struct FrozenProduct(Arc<FrozenPanels>);

impl FrozenProduct {
    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.0.w.n()
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.0.wt.n()
    }

    /// `x · Wᵀ` for `x` `[m, in]` into `out` `[m, out]`.
    pub fn forward_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        self.0.w.matmul_t_into(x, m, out)
    }

    /// `∂y · W` for `∂y` `[m, out]` into `out` `[m, in]`: the input's gradient.
    pub fn backward_into(&self, dy: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        self.0.wt.matmul_t_into(dy, m, out)
    }
}

/// The custom op behind [`FrozenPanels::matmul_t`]: `[m, in]` f32 input times the packed
/// weight.
struct FrozenPackedMatmulT(Arc<FrozenPanels>);

impl CustomOp1 for FrozenPackedMatmulT {
    fn name(&self) -> &'static str {
        "frozen-packed-matmul-t"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, _) = xl.shape().dims2()?;
        let (op, w) = ("frozen packed matmul", &self.0.w);
        let out = w
            .matmul_t(crate::fused::f32_slice(op, x, xl)?, m)
            .map_err(|e| candle_core::Error::Msg(format!("{op}: {e}")))?;
        Ok((CpuStorage::F32(out), Shape::from((m, w.n()))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None); // No gradient flows to the input (FrozenLoraLinear::bwd).
        }
        let dx = packed_matmul(&self.0.wt, dy).map_err(|e| {
            candle_core::Error::Msg(format!("frozen packed matmul (backward): {e}"))
        })?;
        Ok(Some(Tensor::from_vec(
            dx,
            (dy.dim(0)?, self.0.wt.n()),
            dy.device(),
        )?))
    }
}

/// PEFT's `x·Wᵀ + B·A·dropout(x)·scaling` in training, as one candle op over f32 `x`
/// (`[m, in]`), `A` (`[r, in]`) and `B` (`[out, r]`), the frozen `W` packed: the same
/// arithmetic as the composed ops of [`LoraLinear::forward`], without the five intermediate
/// tensors candle's autograd would keep, each with a zeroed gradient and an addition in the
/// backward pass.
struct FrozenLoraLinear {
    panels: Arc<FrozenPanels>,
    /// The dropout mask of `x`, `[m, in]` (none without dropout).
    mask: Option<Tensor>,
    scaling: f64,
}

impl FrozenLoraLinear {
    /// `dropout(x)` of a `[m, in]` tensor.
    fn dropped(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.mask {
            Some(mask) => x * mask,
            None => Ok(x.clone()),
        }
    }

    /// `∂x = ∂y·W + dropout(∂low·A)` for the input `x`, with `∂low = ∂y·B·scaling`.
    fn input_grad(
        &self,
        x: &Tensor,
        a: &Tensor,
        dy: &Tensor,
        dlow: &Tensor,
    ) -> candle_core::Result<Tensor> {
        const OP: &str = "frozen LoRA linear (backward)";
        let dx_lora = self.dropped(&dlow.matmul(a)?)?.contiguous()?;
        let mut dx = packed_matmul(&self.panels.wt, dy)
            .map_err(|e| candle_core::Error::Msg(format!("{OP}: {e}")))?;
        crate::fused::with_f32(OP, &dx_lora, |lora| {
            dx.iter_mut().zip(lora).for_each(|(d, l)| *d += l);
            Ok(())
        })?;
        Tensor::from_vec(dx, x.shape(), x.device())
    }
}

impl candle_core::CustomOp3 for FrozenLoraLinear {
    fn name(&self) -> &'static str {
        "frozen-lora-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        const OP: &str = "frozen LoRA linear";
        let (m, k) = xl.shape().dims2()?;
        let ((r, _), (n, _)) = (al.shape().dims2()?, bl.shape().dims2()?);
        let x = crate::fused::f32_slice(OP, xs, xl)?;
        let at = al.transpose(0, 1)?;
        let low = match &self.mask {
            Some(mask) => {
                let dropped = crate::fused::with_f32(OP, mask, |mask| {
                    Ok(x.iter().zip(mask).map(|(v, m)| v * m).collect())
                })?;
                let dl = Layout::contiguous((m, k));
                CpuStorage::F32(dropped).matmul(a, (1, m, r, k), &dl, &at)?
            }
            None => xs.matmul(a, (1, m, r, k), xl, &at)?,
        };
        let low = low.affine(&Layout::contiguous((m, r)), self.scaling, 0.0)?;
        let up = low.matmul(
            b,
            (1, m, n, r),
            &Layout::contiguous((m, r)),
            &bl.transpose(0, 1)?,
        )?;
        let mut y = self
            .panels
            .w
            .matmul_t(x, m)
            .map_err(|e| candle_core::Error::Msg(format!("{OP}: {e}")))?;
        let up = crate::fused::f32_slice(OP, &up, &Layout::contiguous((m, n)))?;
        y.iter_mut().zip(up).for_each(|(y, u)| *y += u);
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // An input no gradient flows to (the first layer's, computed from the frozen
        // embeddings) gets none: its product by the frozen weight is the largest part here.
        let wants_dx = x.track_op();
        let (x, a, b) = (x.detach(), a.detach(), b.detach());
        let dropped = self.dropped(&x)?;
        let low = (dropped.matmul(&a.t()?)? * self.scaling)?;
        let db = dy.t()?.matmul(&low)?;
        let dlow = (dy.matmul(&b)? * self.scaling)?;
        let da = dlow.t()?.matmul(&dropped)?;
        let dx = match wants_dx {
            true => Some(self.input_grad(&x, &a, dy, &dlow)?),
            false => None,
        };
        Ok((dx, Some(da), Some(db)))
    }
}

/// `x` (`[…, in]`, any float dtype) times a packed weight, into `out` as `[rows, out]`.
fn packed_matmul_into(m: &PackedMatrix, x: &Tensor, out: &mut Vec<f32>) -> Result<()> {
    let rows = leading_rows(x);
    out.resize(rows * m.n(), 0.0);
    with_f32_data(x, |flat| m.matmul_t_into(flat, rows, out))
}

/// `x` (`[…, in]`, any float dtype) times a packed weight, as a new `[rows, out]` buffer.
fn packed_matmul(m: &PackedMatrix, x: &Tensor) -> Result<Vec<f32>> {
    with_f32_data(x, |flat| m.matmul_t(flat, leading_rows(x)))
}

/// Rows of `x` (`[…, in]`) flattened to 2-D: the product of its leading dimensions.
fn leading_rows(x: &Tensor) -> usize {
    let dims = x.dims();
    dims[..dims.len() - 1].iter().product()
}

/// `f` applied to the values of a CPU tensor as a row-major f32 slice: borrowed when the
/// tensor is a contiguous f32 one, converted otherwise.
fn with_f32_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.to_dtype(DType::F32)?.contiguous()?;
    crate::fused::with_f32("packed weight or input", &t, |data| Ok(f(data)))?
}

/// `x · wᵀ` for `x` of any rank ≥ 2 and a 2-D `w`, flattening leading dims for one GEMM.
pub(crate) fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let (lead, k) = dims.split_at(dims.len() - 1);
    let rows: usize = lead.iter().product();
    let y = x.reshape((rows, k[0]))?.matmul(&w.t()?)?;
    let mut out = lead.to_vec();
    out.push(w.dim(0)?);
    Ok(y.reshape(out)?)
}

/// `x · wᵀ` like [`matmul_t`], but with `w` treated as a frozen constant: the backward pass
/// computes only `∂x = ∂y · w`, never the (large, unused) gradient of `w`. Runs as a candle
/// custom op on CPU tensors of any float dtype candle's matmul supports (f32, bf16, f16, f64);
/// on other devices, or with the CPU fast paths off ([`crate::fused::set_cpu_fast_paths`]),
/// it falls back to the plain matmul.
pub fn frozen_matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !w.device().is_cpu() || !crate::fused::cpu_fast_paths() {
        return matmul_t(x, w);
    }
    rows_op(x, w.dim(0)?, |x2| {
        Ok(x2.apply_op1(FrozenMatmulT(w.clone()))?)
    })
}

/// `op` applied to `x` (`[…, in]`) flattened to `[rows, in]`, its `[rows, out]` result
/// shaped back to `[…, out]`.
fn rows_op(x: &Tensor, out: usize, op: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let dims = x.dims();
    let (lead, k) = dims.split_at(dims.len() - 1);
    let rows: usize = lead.iter().product();
    let y = op(&x.reshape((rows, k[0]))?)?;
    let mut shape = lead.to_vec();
    shape.push(out);
    Ok(y.reshape(shape)?)
}

/// The custom op behind [`frozen_matmul_t`]: `[m, k]` input times the captured `[n, k]`
/// weight, transposed.
struct FrozenMatmulT(Tensor);

impl CustomOp1 for FrozenMatmulT {
    fn name(&self) -> &'static str {
        "frozen-matmul-t"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, k) = xl.shape().dims2()?;
        let (n, wk) = self.0.dims2()?;
        if wk != k {
            candle_core::bail!("frozen matmul: input has {k} features, weight [{n}, {wk}]");
        }
        let (storage, wl) = self.0.storage_and_layout();
        let Storage::Cpu(w) = &*storage else {
            candle_core::bail!("frozen matmul: weight is not on the CPU");
        };
        let y = x.matmul(w, (1, m, n, k), xl, &wl.transpose(0, 1)?)?;
        Ok((y, Shape::from((m, n))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None); // No gradient flows to the input (FrozenLoraLinear::bwd).
        }
        Ok(Some(dy.matmul(&self.0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Largest absolute difference between two tensors of one shape.
    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .expect("same shapes")
    }

    /// The fused training layer gives the composed ops' output and gradients in `x`, `A` and
    /// `B`, with dropout and without, in f32 and bf16: in bf16 the base product's operands
    /// are rounded to bf16 (the output gradient too, in the backward pass).
    #[test]
    fn fused_training_layer_matches_the_composed_ops() -> Result<()> {
        let dev = Device::Cpu;
        let (m, k, n, r, scaling) = (7, 24, 70, 4, 2.0);
        let w = Tensor::randn(0f32, 0.5, (n, k), &dev)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (m, k), &dev)?)?;
        let a = Var::from_tensor(&Tensor::randn(0f32, 0.3, (r, k), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, (n, r), &dev)?)?;
        let g = Tensor::randn(0f32, 1.0, (m, n), &dev)?;
        for precision in [Precision::F32, Precision::Bf16] {
            let round = |t: &Tensor| -> Result<Tensor> {
                Ok(match precision {
                    Precision::Bf16 => t.to_dtype(DType::BF16)?.to_dtype(DType::F32)?,
                    _ => t.clone(),
                })
            };
            let panels = Arc::new(FrozenPanels::pack(&w, precision)?);
            let wr = round(&w)?;
            // The base product's part of ∂x, added by hand: candle's autograd would round
            // the gradient of a bf16 cast's input too.
            let dx_base = round(&g)?.matmul(&wr)?;
            for mask in [None, Some(SeededDropout::new(7).mask(x.as_tensor(), 0.25)?)] {
                let dropped = match &mask {
                    Some(mask) => (x.as_tensor() * mask)?,
                    None => x.as_tensor().clone(),
                };
                let op = FrozenLoraLinear {
                    panels: panels.clone(),
                    mask,
                    scaling,
                };
                let fused = x.as_tensor().apply_op3(a.as_tensor(), b.as_tensor(), op)?;
                let low = (matmul_t(&dropped, a.as_tensor())? * scaling)?;
                let base = matmul_t(&round(&x.as_tensor().detach())?, &wr)?;
                let composed = (base + matmul_t(&low, b.as_tensor())?)?;
                assert!(max_diff(&fused, &composed) < 1e-5, "{precision:?}");
                let gf = (fused * &g)?.sum_all()?.backward()?;
                let gc = (composed * &g)?.sum_all()?.backward()?;
                for v in [&x, &a, &b] {
                    let (f, c) = (gf.get(v).expect("grad"), gc.get(v).expect("grad"));
                    let c = match v.dims() == x.dims() {
                        true => (c + &dx_base)?,
                        false => c.clone(),
                    };
                    let diff = max_diff(f, &c);
                    assert!(diff < 1e-4, "{precision:?} {:?}: {diff}", v.dims());
                }
            }
        }
        Ok(())
    }

    /// An input that no gradient flows to (not a variable, not computed from one) gets no
    /// gradient from the fused layer, and `A` and `B` the same gradients as with a tracked
    /// input.
    #[test]
    fn fused_training_layer_skips_an_untracked_input() -> Result<()> {
        let dev = Device::Cpu;
        let (m, k, n, r) = (5, 16, 40, 4);
        let w = Tensor::randn(0f32, 0.5, (n, k), &dev)?;
        let panels = Arc::new(FrozenPanels::pack(&w, Precision::F32)?);
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let tracked = Var::from_tensor(&x)?;
        let a = Var::from_tensor(&Tensor::randn(0f32, 0.3, (r, k), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, (n, r), &dev)?)?;
        let grads = |x: &Tensor| -> Result<_> {
            let op = FrozenLoraLinear {
                panels: panels.clone(),
                mask: None,
                scaling: 2.0,
            };
            let y = x.apply_op3(a.as_tensor(), b.as_tensor(), op)?;
            Ok(y.sqr()?.sum_all()?.backward()?)
        };
        let (plain, with_x) = (grads(&x)?, grads(tracked.as_tensor())?);
        assert!(plain.get(&x).is_none());
        assert!(with_x.get(tracked.as_tensor()).is_some());
        for v in [&a, &b] {
            let (p, t) = (plain.get(v).expect("grad"), with_x.get(v).expect("grad"));
            assert_eq!(max_diff(p, t), 0.0);
        }
        Ok(())
    }
}
