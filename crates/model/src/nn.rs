//! Building blocks shared by the architectures: RMSNorm, RoPE, attention with a KV cache
//! and masks, gated MLPs, embeddings. Every op here has a backward pass (see the candle
//! notes on fused ops that silently drop gradients): candle's fused kernels are used only
//! when `Ctx::train` is false, and training in f32 on the CPU uses datm's own fused ops
//! with backward passes ([`crate::fused`]).

use anyhow::Result;
use candle_core::{CpuStorage, DType, Device, Tensor, D};
use std::collections::HashMap;

use crate::config::{LayerAttention, RopeConfig};
use crate::fused;
use crate::lora::{Ctx, LoraLinear};
use crate::weights::{Weight, WeightMap};

/// RMSNorm: `x / rms(x) · w`, computed in f32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// Effective weight in f32 (Gemma's `1 + w` already added).
    weight: Tensor,
    eps: f64,
    /// LLaMA casts the normalised value back to the input dtype before the multiply; Gemma
    /// multiplies in f32 and then casts.
    cast_before_mul: bool,
}

impl RmsNorm {
    /// Loads `name` (shape `[dim]`); `plus_one` gives Gemma's `(1 + w)` variant.
    pub fn load(w: &WeightMap, name: &str, dim: usize, eps: f64, plus_one: bool) -> Result<Self> {
        let t = dense(w.get(name, &[dim])?)?.to_dtype(DType::F32)?;
        let weight = if plus_one { (t + 1.0)? } else { t };
        Ok(RmsNorm {
            weight,
            eps,
            cast_before_mul: !plus_one,
        })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let dtype = x.dtype();
        if fused::applies(x) {
            return Ok(fused::rms_norm(
                x,
                &self.weight,
                self.eps,
                self.cast_before_mul,
            )?);
        }
        if !ctx.train && dtype == DType::F32 && x.is_contiguous() {
            return Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?);
        }
        composite_rms_norm(x, &self.weight, self.eps, self.cast_before_mul)
    }
}

/// RMSNorm of `x` over its last dimension out of differentiable candle ops, in f32 and back
/// to x's precision: the norm's path where the fused op does not run, and its twin. With
/// `cast_before_mul` the normalised row is rounded to x's precision before the f32 `weight`
/// multiplies it (LLaMA), otherwise after (Gemma).
pub fn composite_rms_norm(
    x: &Tensor,
    weight: &Tensor,
    eps: f64,
    cast_before_mul: bool,
) -> Result<Tensor> {
    let dtype = x.dtype();
    let xf = x.to_dtype(DType::F32)?;
    let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = xf.broadcast_div(&(ms + eps)?.sqrt()?)?;
    if cast_before_mul {
        Ok(normed
            .to_dtype(dtype)?
            .broadcast_mul(&weight.to_dtype(dtype)?)?)
    } else {
        Ok(normed.broadcast_mul(weight)?.to_dtype(dtype)?)
    }
}

/// A dense tensor from a weight (dequantizing if needed).
pub fn dense(w: Weight) -> Result<Tensor> {
    Ok(match w {
        Weight::Dense(t) => t,
        Weight::Quantized(q) => q.dequantize(&q.device())?,
    })
}

/// Loads a linear layer `{prefix}.weight` (`[out, in]`) and optional `{prefix}.bias`.
pub fn linear(
    w: &WeightMap,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    dtype: DType,
) -> Result<LoraLinear> {
    let weight = w.get(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
    let b = if bias {
        Some(dense(w.get(&format!("{prefix}.bias"), &[out_dim])?)?)
    } else {
        None
    };
    LoraLinear::new(weight, b, dtype)
}

/// Where each row's queries and keys sit: positions for RoPE and masking. Keys that are
/// padding have no position.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per row, the positions of this step's query tokens.
    pub q_pos: Vec<Vec<i64>>,
    /// Per row, the positions of all keys (cache then new tokens); `None` = padding.
    pub k_pos: Vec<Vec<Option<i64>>>,
}

/// Per-step tensors shared by all layers: masks per window size and RoPE tables per config.
pub struct StepTensors {
    masks: HashMap<Option<usize>, Tensor>,
    ropes: Vec<(Tensor, Tensor)>,
    rope_of_layer: Vec<usize>,
}

impl StepTensors {
    /// Builds masks and cos/sin tables for a layout.
    pub fn new(
        layout: &Layout,
        layers: &[LayerAttention],
        head_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut masks = HashMap::new();
        for l in layers {
            if let std::collections::hash_map::Entry::Vacant(e) = masks.entry(l.sliding_window) {
                e.insert(build_mask(layout, l.sliding_window, device)?);
            }
        }
        let mut configs: Vec<&RopeConfig> = Vec::new();
        let mut rope_of_layer = Vec::with_capacity(layers.len());
        for l in layers {
            let idx = match configs.iter().position(|c| **c == l.rope) {
                Some(i) => i,
                None => {
                    configs.push(&l.rope);
                    configs.len() - 1
                }
            };
            rope_of_layer.push(idx);
        }
        let ropes = configs
            .iter()
            .map(|c| rope_tables(layout, c, head_dim, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(StepTensors {
            masks,
            ropes,
            rope_of_layer,
        })
    }

    fn mask(&self, window: Option<usize>) -> &Tensor {
        &self.masks[&window]
    }

    fn rope(&self, layer: usize) -> &(Tensor, Tensor) {
        &self.ropes[self.rope_of_layer[layer]]
    }
}

/// Additive f32 mask `[rows, 1, 1, q, k]`: 0 where visible, a large negative number elsewhere.
fn build_mask(layout: &Layout, window: Option<usize>, device: &Device) -> Result<Tensor> {
    let rows = layout.q_pos.len();
    let q = layout.q_pos.first().map_or(0, Vec::len);
    let k = layout.k_pos.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(rows * q * k);
    for (qp, kp) in layout.q_pos.iter().zip(&layout.k_pos) {
        for &qi in qp {
            for kj in kp {
                let visible = match *kj {
                    Some(kj) => kj <= qi && window.is_none_or(|w| qi - kj < w as i64),
                    None => false,
                };
                data.push(if visible { 0f32 } else { crate::attend::MASKED });
            }
        }
    }
    Ok(Tensor::from_vec(data, (rows, 1, 1, q, k), device)?)
}

/// cos/sin tables `[rows, q, head_dim / 2]` (f32) for the query positions.
fn rope_tables(
    layout: &Layout,
    rope: &RopeConfig,
    head_dim: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let inv = rope.inv_freq(head_dim);
    let rows = layout.q_pos.len();
    let q = layout.q_pos.first().map_or(0, Vec::len);
    let mut freqs = Vec::with_capacity(rows * q * head_dim / 2);
    for qp in &layout.q_pos {
        for &p in qp {
            // HF: inv_freq[None] @ position[:, None] in f32.
            freqs.extend(inv.iter().map(|f| f * p as f32));
        }
    }
    let f = Tensor::from_vec(freqs, (rows, q, head_dim / 2), device)?;
    Ok((f.cos()?, f.sin()?))
}

/// Applies rotate-half RoPE to `x` `[rows, heads, q, d]` with half tables `[rows, q, d/2]`:
/// datm's fused op where it runs ([`fused::applies`]), else candle's kernel at inference in
/// f32, the differentiable formula otherwise.
fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor, train: bool) -> Result<Tensor> {
    let dtype = x.dtype();
    if fused::applies(x) {
        return Ok(fused::rope(x, cos, sin)?);
    }
    if !train && dtype == DType::F32 {
        return Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?);
    }
    composite_rope(x, cos, sin)
}

/// Rotate-half RoPE out of differentiable candle ops (the tables cast to x's precision): the
/// path where the fused op does not run, and its twin.
pub fn composite_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    let full = |t: &Tensor| -> Result<Tensor> {
        Ok(Tensor::cat(&[t, t], D::Minus1)?
            .unsqueeze(1)?
            .to_dtype(dtype)?)
    };
    Ok((x.broadcast_mul(&full(cos)?)? + rotated.broadcast_mul(&full(sin)?)?)?)
}

/// Keys are stored with room for this many more positions, so that decoding appends in place.
const CACHE_CHUNK: usize = 64;

/// Per-layer key/value cache: buffers `[rows, kv_heads, capacity, head_dim]` of which the
/// first `len` positions are used.
#[derive(Debug, Default)]
pub struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
    len: usize,
    /// The buffers of the previous row selection, reused by the next one (CPU only).
    spare: Option<(Tensor, Tensor)>,
}

impl LayerCache {
    /// Keeps (and reorders, duplicates) rows by index. On the CPU, a selection of as many
    /// rows as there are (a beam-search step) moves only the rows that change, in place,
    /// row `t` from position `starts[t]` on (the positions before it hold the same keys in
    /// both rows); another one gathers the used positions into the spare buffers, which
    /// then swap with the current ones: no allocation and no copy of unused capacity at
    /// each step.
    fn select_rows(&mut self, idx: &[usize], starts: &[usize]) -> Result<()> {
        let Some((k, v)) = &self.kv else {
            return Ok(());
        };
        if !k.device().is_cpu() {
            let ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
            let ids = Tensor::from_vec(ids, idx.len(), k.device())?;
            self.kv = Some((k.index_select(&ids, 0)?, v.index_select(&ids, 0)?));
            return Ok(());
        }
        let (rows, h, cap, d) = k.dims4()?;
        if idx.len() == rows {
            let op = MoveRows {
                idx,
                starts,
                len: self.len,
            };
            k.inplace_op1(&op)?;
            v.inplace_op1(&op)?;
            return Ok(());
        }
        let shape = (idx.len(), h, cap, d);
        let (sk, sv) = match self.spare.take() {
            Some((sk, sv)) if sk.dims4()? == shape => (sk, sv),
            _ => (
                Tensor::zeros(shape, k.dtype(), k.device())?,
                Tensor::zeros(shape, v.dtype(), v.device())?,
            ),
        };
        let op = GatherRows { idx, len: self.len };
        sk.inplace_op2(k, &op)?;
        sv.inplace_op2(v, &op)?;
        self.spare = self.kv.replace((sk, sv));
        Ok(())
    }

    /// The used part of the buffers.
    fn view(&self) -> Result<Option<(Tensor, Tensor)>> {
        match &self.kv {
            Some((k, v)) => Ok(Some((k.narrow(2, 0, self.len)?, v.narrow(2, 0, self.len)?))),
            None => Ok(None),
        }
    }

    /// Appends `k`, `v` (`[rows, kv_heads, q, head_dim]`) and returns all keys and values.
    /// In training mode the result is built by concatenation so that gradients flow;
    /// otherwise it is written in place into buffers grown in chunks.
    fn append(&mut self, k: Tensor, v: Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let q = k.dim(2)?;
        if train {
            let (k, v) = match self.view()? {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            self.len = k.dim(2)?;
            self.kv = Some((k.clone(), v.clone()));
            return Ok((k, v));
        }
        let cap = self.kv.as_ref().map_or(Ok(0), |(k, _)| k.dim(2))?;
        if self.len + q > cap {
            let grown = with_capacity(self.view()?, &k, self.len + q + CACHE_CHUNK)?;
            self.kv = Some(grown);
        }
        let (bk, bv) = self.kv.as_ref().expect("allocated above");
        bk.slice_set(&k.contiguous()?, 2, self.len)?;
        bv.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len += q;
        Ok(self.view()?.expect("allocated above"))
    }
}

/// New zeroed buffers shaped like `like` with `cap` positions, holding `old` at the start.
fn with_capacity(
    old: Option<(Tensor, Tensor)>,
    like: &Tensor,
    cap: usize,
) -> Result<(Tensor, Tensor)> {
    let (r, h, _, d) = like.dims4()?;
    let k = Tensor::zeros((r, h, cap, d), like.dtype(), like.device())?;
    let v = Tensor::zeros((r, h, cap, d), like.dtype(), like.device())?;
    if let Some((ok, ov)) = old {
        k.slice_set(&ok.contiguous()?, 2, 0)?;
        v.slice_set(&ov.contiguous()?, 2, 0)?;
    }
    Ok((k, v))
}

/// The KV cache of a batch: per-layer tensors plus the key positions of each row.
///
/// Not `Clone`: inference appends write into the buffers in place.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    /// Per row, the position of each cached key (`None` = left padding).
    pub k_pos: Vec<Vec<Option<i64>>>,
    /// Per row, the leading positions it shares with the other copies of the row it was
    /// copied from, if any (`None`: a row never copied).
    shared: Vec<Option<SharedPrefix>>,
}

/// Leading positions that hold the same keys and values in every row copied from one row:
/// beams copied from a prompt's prefill share the prompt's positions (and the padding in
/// front of them) for as long as they live, so a beam's reordering need not move those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SharedPrefix {
    /// The copy that made the rows (unique in the process).
    origin: u64,
    /// Positions shared, from the first.
    len: usize,
}

impl SharedPrefix {
    /// A new origin for the copies of a row of `len` positions.
    fn new(len: usize) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        SharedPrefix {
            origin: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            len,
        }
    }
}

impl KvCache {
    /// An empty cache for `layers` layers and `rows` rows.
    pub fn new(layers: usize, rows: usize) -> Self {
        KvCache {
            layers: (0..layers).map(|_| LayerCache::default()).collect(),
            k_pos: vec![Vec::new(); rows],
            shared: vec![None; rows],
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.k_pos.len()
    }

    /// Number of cached keys per row (including padding).
    pub fn len(&self) -> usize {
        self.k_pos.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps (and reorders, duplicates) rows by index: beam expansion and reordering.
    pub fn select_rows(&mut self, idx: &[usize]) -> Result<()> {
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.rows()) {
            anyhow::bail!("row {bad} selected from a cache of {} rows", self.rows());
        }
        let shared = self.shared_after(idx);
        // Where each row starts to differ from the one that takes its place.
        let starts: Vec<usize> = shared
            .iter()
            .enumerate()
            .map(
                |(t, new)| match (self.shared.get(t).copied().flatten(), new) {
                    (Some(old), Some(new)) if old.origin == new.origin => old.len,
                    _ => 0,
                },
            )
            .collect();
        let failed = std::sync::Mutex::new(None);
        crate::pool::par_chunks(&mut self.layers, 1, |_, l| {
            if let Err(e) = l[0].select_rows(idx, &starts) {
                failed.lock().expect("not poisoned").get_or_insert(e);
            }
        });
        if let Some(e) = failed.into_inner().expect("not poisoned") {
            return Err(e);
        }
        self.k_pos = idx.iter().map(|&i| self.k_pos[i].clone()).collect();
        self.shared = shared;
        Ok(())
    }

    /// The shared prefixes of the rows `idx` selects: a row's own, or, for a row never
    /// copied before and selected more than once, a new one of all its positions.
    fn shared_after(&self, idx: &[usize]) -> Vec<Option<SharedPrefix>> {
        let mut fresh: Vec<Option<SharedPrefix>> = vec![None; self.rows()];
        idx.iter()
            .map(|&src| {
                self.shared[src].or_else(|| {
                    let copies = idx.iter().filter(|&&i| i == src).count();
                    (copies > 1).then(|| *fresh[src].get_or_insert(SharedPrefix::new(self.len())))
                })
            })
            .collect()
    }

    /// Stacks caches row-wise, left-padding shorter ones (padding keys are masked out).
    pub fn stack(caches: &[KvCache]) -> Result<KvCache> {
        let max = caches.iter().map(KvCache::len).max().unwrap_or(0);
        let n_layers = caches.first().map_or(0, |c| c.layers.len());
        let mut layers = Vec::with_capacity(n_layers);
        for li in 0..n_layers {
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for c in caches {
                let Some((k, v)) = c.layers[li].view()? else {
                    continue;
                };
                let pad = max - c.len();
                ks.push(pad_keys(&k, pad, 0)?);
                vs.push(pad_keys(&v, pad, 0)?);
            }
            let kv = if ks.is_empty() {
                None
            } else {
                let k = pad_keys(&Tensor::cat(&ks, 0)?, 0, CACHE_CHUNK)?;
                let v = pad_keys(&Tensor::cat(&vs, 0)?, 0, CACHE_CHUNK)?;
                Some((k, v))
            };
            layers.push(LayerCache {
                kv,
                len: max,
                spare: None,
            });
        }
        let k_pos = caches
            .iter()
            .flat_map(|c| {
                c.k_pos.iter().map(|kp| {
                    std::iter::repeat_n(None, max - kp.len())
                        .chain(kp.iter().copied())
                        .collect()
                })
            })
            .collect();
        // The padding put in front of a cache's rows is the same in each of them.
        let shared = caches
            .iter()
            .flat_map(|c| {
                let pad = max - c.len();
                c.shared.iter().map(move |s| {
                    s.map(|s| SharedPrefix {
                        len: s.len + pad,
                        ..s
                    })
                })
            })
            .collect();
        Ok(KvCache {
            layers,
            k_pos,
            shared,
        })
    }

    /// Drops leading key slots that are padding in every row.
    pub fn trim_padding(&mut self) -> Result<()> {
        let common = self
            .k_pos
            .iter()
            .map(|kp| kp.iter().take_while(|p| p.is_none()).count())
            .min()
            .unwrap_or(0);
        if common == 0 {
            return Ok(());
        }
        for l in &mut self.layers {
            if let Some((k, v)) = l.view()? {
                let n = l.len - common;
                let k = pad_keys(&k.narrow(2, common, n)?, 0, CACHE_CHUNK)?;
                let v = pad_keys(&v.narrow(2, common, n)?, 0, CACHE_CHUNK)?;
                l.kv = Some((k, v));
                l.len = n;
            }
        }
        for kp in &mut self.k_pos {
            kp.drain(..common);
        }
        for s in self.shared.iter_mut().flatten() {
            s.len = s.len.saturating_sub(common);
        }
        Ok(())
    }

    /// The layout of a step that appends `q_pos[r]` to each row.
    pub fn layout_for(&self, q_pos: Vec<Vec<i64>>) -> Layout {
        let k_pos = self
            .k_pos
            .iter()
            .zip(&q_pos)
            .map(|(kp, qp)| {
                kp.iter()
                    .copied()
                    .chain(qp.iter().map(|&p| Some(p)))
                    .collect()
            })
            .collect();
        Layout { q_pos, k_pos }
    }

    /// Records the positions appended by a step (call after all layers ran).
    pub fn commit(&mut self, layout: &Layout) {
        self.k_pos = layout.k_pos.clone();
    }

    fn layer(&mut self, i: usize) -> &mut LayerCache {
        &mut self.layers[i]
    }
}

/// Copies rows `idx` of a `[rows, heads, capacity, dim]` CPU buffer into the destination
/// `[idx.len(), heads, capacity, dim]`, the first `len` positions of each head.
struct GatherRows<'a> {
    idx: &'a [usize],
    len: usize,
}

impl GatherRows<'_> {
    fn copy<T: Copy>(&self, dst: &mut [T], src: &[T], h: usize, cap: usize, d: usize) {
        let row = h * cap * d;
        for (to, &from) in self.idx.iter().enumerate() {
            for head in 0..h {
                let (o, i) = (to * row + head * cap * d, from * row + head * cap * d);
                dst[o..o + self.len * d].copy_from_slice(&src[i..i + self.len * d]);
            }
        }
    }
}

impl candle_core::InplaceOp2 for GatherRows<'_> {
    fn name(&self) -> &'static str {
        "kv-gather-rows"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &candle_core::Layout,
        src: &CpuStorage,
        sl: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let (rows, h, cap, d) = sl.shape().dims4()?;
        let contiguous = |l: &candle_core::Layout| l.is_contiguous() && l.start_offset() == 0;
        if !contiguous(dl)
            || !contiguous(sl)
            || dl.shape().dims4()? != (self.idx.len(), h, cap, d)
            || self.idx.iter().any(|&i| i >= rows)
            || self.len > cap
        {
            candle_core::bail!("{}: mismatched buffers {dl:?} / {sl:?}", self.name());
        }
        match (dst, src) {
            (CpuStorage::F32(o), CpuStorage::F32(i)) => self.copy(o, i, h, cap, d),
            (CpuStorage::BF16(o), CpuStorage::BF16(i)) => self.copy(o, i, h, cap, d),
            (CpuStorage::F16(o), CpuStorage::F16(i)) => self.copy(o, i, h, cap, d),
            (CpuStorage::F64(o), CpuStorage::F64(i)) => self.copy(o, i, h, cap, d),
            _ => candle_core::bail!("{}: unsupported or mixed dtypes", self.name()),
        }
        Ok(())
    }
}

/// Row `t` of a cache buffer `[rows, heads, capacity, dim]` takes positions `starts[t]..len`
/// of row `idx[t]`, in place (`idx` has one entry per row): only the rows that change are
/// written, from the rows that stay or from copies of those that are overwritten first.
struct MoveRows<'a> {
    idx: &'a [usize],
    /// Per row, the first position to move (the earlier ones equal the source's).
    starts: &'a [usize],
    len: usize,
}

impl MoveRows<'_> {
    fn apply<T: Copy>(&self, buf: &mut [T], h: usize, cap: usize, d: usize) {
        let row = h * cap * d;
        let moved = |t: usize| self.idx[t] != t;
        // Sources that are overwritten themselves, saved first (their used positions).
        let mut saved: Vec<(usize, Vec<T>)> = Vec::new();
        for t in (0..self.idx.len()).filter(|&t| moved(t)) {
            let src = self.idx[t];
            if moved(src) && !saved.iter().any(|(s, _)| *s == src) {
                let mut copy = Vec::with_capacity(h * self.len * d);
                for head in 0..h {
                    copy.extend_from_slice(&buf[src * row + head * cap * d..][..self.len * d]);
                }
                saved.push((src, copy));
            }
        }
        for t in (0..self.idx.len()).filter(|&t| moved(t)) {
            let src = self.idx[t];
            let copy = saved.iter().find(|(s, _)| *s == src);
            let start = self.starts[t].min(self.len);
            let n = (self.len - start) * d;
            for head in 0..h {
                let to = t * row + (head * cap + start) * d;
                match copy {
                    Some((_, copy)) => {
                        buf[to..to + n].copy_from_slice(&copy[(head * self.len + start) * d..][..n])
                    }
                    None => {
                        let from = src * row + (head * cap + start) * d;
                        buf.copy_within(from..from + n, to);
                    }
                }
            }
        }
    }
}

impl candle_core::InplaceOp1 for MoveRows<'_> {
    fn name(&self) -> &'static str {
        "kv-move-rows"
    }

    fn cpu_fwd(&self, buf: &mut CpuStorage, l: &candle_core::Layout) -> candle_core::Result<()> {
        let (rows, h, cap, d) = l.shape().dims4()?;
        if !(l.is_contiguous() && l.start_offset() == 0)
            || self.idx.len() != rows
            || self.starts.len() != rows
            || self.idx.iter().any(|&i| i >= rows)
            || self.len > cap
        {
            candle_core::bail!("{}: mismatched buffer {l:?}", self.name());
        }
        match buf {
            CpuStorage::F32(b) => self.apply(b, h, cap, d),
            CpuStorage::BF16(b) => self.apply(b, h, cap, d),
            CpuStorage::F16(b) => self.apply(b, h, cap, d),
            CpuStorage::F64(b) => self.apply(b, h, cap, d),
            _ => candle_core::bail!("{}: unsupported dtype", self.name()),
        }
        Ok(())
    }
}

/// `t` (`[rows, heads, keys, dim]`) with `before` zero keys in front and `after` behind.
fn pad_keys(t: &Tensor, before: usize, after: usize) -> Result<Tensor> {
    if before == 0 && after == 0 {
        return Ok(t.clone());
    }
    let (r, h, _, d) = t.dims4()?;
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(Tensor::zeros((r, h, before, d), t.dtype(), t.device())?);
    }
    parts.push(t.clone());
    if after > 0 {
        parts.push(Tensor::zeros((r, h, after, d), t.dtype(), t.device())?);
    }
    Ok(Tensor::cat(&parts, 2)?)
}

/// Multi-head attention with GQA, optional q/k norms, soft-capping and a sliding window.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Query projection.
    pub q_proj: LoraLinear,
    /// Key projection.
    pub k_proj: LoraLinear,
    /// Value projection.
    pub v_proj: LoraLinear,
    /// Output projection.
    pub o_proj: LoraLinear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
    window: Option<usize>,
    layer: usize,
}

/// Static attention settings for [`Attention::load`].
pub struct AttentionSpec {
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head size.
    pub head_dim: usize,
    /// Model width.
    pub hidden: usize,
    /// Score scale.
    pub scale: f64,
    /// Tanh soft-cap of scores.
    pub softcap: Option<f64>,
    /// Bias on projections.
    pub bias: bool,
    /// Gemma-style q/k RMSNorm with this epsilon.
    pub qk_norm_eps: Option<f64>,
    /// Compute dtype.
    pub dtype: DType,
}

impl Attention {
    /// Loads `{prefix}.{q,k,v,o}_proj` (and `q_norm`/`k_norm` if the spec asks).
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        spec: &AttentionSpec,
        layer: usize,
        la: &LayerAttention,
    ) -> Result<Self> {
        let (h, kv, d) = (spec.num_heads, spec.num_kv_heads, spec.head_dim);
        anyhow::ensure!(
            kv > 0 && h % kv == 0,
            "{}: {h} heads not divisible by {kv} kv heads",
            w.origin()
        );
        let lin = |n: &str, i, o| linear(w, &format!("{prefix}.{n}"), i, o, spec.bias, spec.dtype);
        let norm = |n: &str| -> Result<Option<RmsNorm>> {
            spec.qk_norm_eps
                .map(|eps| RmsNorm::load(w, &format!("{prefix}.{n}.weight"), d, eps, true))
                .transpose()
        };
        Ok(Attention {
            q_proj: lin("q_proj", spec.hidden, h * d)?,
            k_proj: lin("k_proj", spec.hidden, kv * d)?,
            v_proj: lin("v_proj", spec.hidden, kv * d)?,
            o_proj: lin("o_proj", h * d, spec.hidden)?,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            num_heads: h,
            num_kv_heads: kv,
            head_dim: d,
            scale: spec.scale,
            softcap: spec.softcap,
            window: la.sliding_window,
            layer,
        })
    }

    /// Attends `x` `[rows, q, hidden]`, appending its keys/values to `cache`.
    pub fn forward(
        &self,
        x: &Tensor,
        step: &StepTensors,
        cache: &mut KvCache,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        let (rows, q_len, _) = x.dims3()?;
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            Ok(t.reshape((rows, q_len, n, d))?.transpose(1, 2)?)
        };
        let mut q = heads(self.q_proj.forward(x, ctx)?, h)?;
        let mut k = heads(self.k_proj.forward(x, ctx)?, kvh)?;
        let v = heads(self.v_proj.forward(x, ctx)?, kvh)?;
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q.contiguous()?, ctx)?;
            k = kn.forward(&k.contiguous()?, ctx)?;
        }
        let (cos, sin) = step.rope(self.layer);
        let q = apply_rope(&q, cos, sin, ctx.train)?;
        let k = apply_rope(&k, cos, sin, ctx.train)?.contiguous()?;
        let v = v.contiguous()?;
        let (k, v) = cache.layer(self.layer).append(k, v, ctx.train)?;
        let rep = h / kvh;
        // Group query heads by their kv head: [rows, kvh, rep*q, d], no copy of k/v.
        let q = q.contiguous()?.reshape((rows, kvh, rep * q_len, d))?;
        let mask = step.mask(self.window);
        let out = if !ctx.train && crate::attend::applies(&q, &k, &v) {
            crate::attend::attend(&q, &k, &v, mask, self.scale, self.softcap)?
        } else {
            self.attend_composite(&q, &k, &v, mask, ctx.train)?
        };
        let out = out
            .reshape((rows, h, q_len, d))?
            .transpose(1, 2)?
            .reshape((rows, q_len, h * d))?;
        self.o_proj.forward(&out, ctx)
    }

    /// [`crate::attend::attend`] from differentiable candle ops (training, other dtypes and
    /// devices): queries `[rows, kvh, rep·q, d]` grouped by kv head, keys and values
    /// `[rows, kvh, keys, d]`, mask `[rows, 1, 1, q, keys]`.
    fn attend_composite(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        let (rows, kvh, n, _) = q.dims4()?;
        let (keys, q_len) = (k.dim(2)?, mask.dim(3)?);
        let scores = (q.matmul(&k.t()?)? * self.scale)?.to_dtype(DType::F32)?;
        let scores = match self.softcap {
            Some(c) => ((scores / c)?.tanh()? * c)?,
            None => scores,
        };
        let scores = scores
            .reshape((rows, kvh, n / q_len, q_len, keys))?
            .broadcast_add(mask)?;
        let probs = if train && fused::applies(&scores) {
            fused::softmax_last_dim(&scores)?
        } else if train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?
        };
        let probs = probs.to_dtype(v.dtype())?.reshape((rows, kvh, n, keys))?;
        Ok(probs.matmul(v)?)
    }
}

pub use crate::vmath::Activation;

/// `down(act(gate(x)) · up(x))`.
#[derive(Debug, Clone)]
pub struct GatedMlp {
    /// Gate projection.
    pub gate_proj: LoraLinear,
    /// Up projection.
    pub up_proj: LoraLinear,
    /// Down projection.
    pub down_proj: LoraLinear,
    act: Activation,
}

impl GatedMlp {
    /// Loads `{prefix}.{gate,up,down}_proj`.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        hidden: usize,
        inter: usize,
        bias: bool,
        act: Activation,
        dtype: DType,
    ) -> Result<Self> {
        let lin = |n: &str, i, o| linear(w, &format!("{prefix}.{n}"), i, o, bias, dtype);
        Ok(GatedMlp {
            gate_proj: lin("gate_proj", hidden, inter)?,
            up_proj: lin("up_proj", hidden, inter)?,
            down_proj: lin("down_proj", inter, hidden)?,
            act,
        })
    }

    /// Applies the MLP.
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let g = self.gate_proj.forward(x, ctx)?;
        let u = self.up_proj.forward(x, ctx)?;
        let h = if fused::applies(&g) && u.dtype() == g.dtype() {
            fused::gated(&g, &u, self.act)?
        } else {
            composite_gated(&g, &u, self.act)?
        };
        self.down_proj.forward(&h, ctx)
    }
}

/// `act(gate) · up` out of candle's ops: the path where the fused op does not run, and its
/// twin.
pub fn composite_gated(gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    let a = match act {
        Activation::Silu => candle_nn::ops::silu(gate)?,
        Activation::GeluTanh => gate.gelu()?,
    };
    Ok((a * up)?)
}

/// Token embeddings (dense or quantized lookup table) with an optional scale.
#[derive(Debug, Clone)]
pub struct Embedding {
    table: Weight,
    scale: Option<f64>,
    dtype: DType,
}

impl Embedding {
    /// Loads `name` (`[vocab, hidden]`).
    pub fn load(
        w: &WeightMap,
        name: &str,
        vocab: usize,
        hidden: usize,
        scale: Option<f64>,
        dtype: DType,
    ) -> Result<Self> {
        let table = match w.get(name, &[vocab, hidden])? {
            Weight::Dense(t) => Weight::Dense(t.to_dtype(dtype)?),
            q => q,
        };
        Ok(Embedding {
            table,
            scale,
            dtype,
        })
    }

    /// The table as a weight (for a tied LM head).
    pub fn weight(&self) -> &Weight {
        &self.table
    }

    /// Looks up `ids` `[rows, q]` → `[rows, q, hidden]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let e = match &self.table {
            Weight::Dense(t) => {
                let (r, q) = ids.dims2()?;
                t.index_select(&ids.flatten_all()?, 0)?
                    .reshape((r, q, t.dim(1)?))?
            }
            Weight::Quantized(qt) => qt.embedding(ids)?.to_dtype(self.dtype)?,
        };
        match self.scale {
            // HF casts the scale to the weight dtype first.
            Some(s) => Ok((e.clone() * round_to(s, self.dtype))?),
            None => Ok(e),
        }
    }
}

/// `v` rounded to `dtype`'s precision (as HF does for Gemma's embedding scale).
fn round_to(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::BF16 => half::bf16::from_f64(v).to_f64(),
        DType::F16 => half::f16::from_f64(v).to_f64(),
        _ => v as f32 as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moving rows in place equals gathering them into a new buffer, for swaps, cycles,
    /// duplicates and rows that stay, from each row's start on, and leaves the positions
    /// before it and the unused capacity of the rows as they were.
    #[test]
    fn moving_rows_in_place_equals_a_gather() {
        let (rows, h, cap, d, len) = (5, 2, 4, 3, 3);
        let row = h * cap * d;
        let buf: Vec<f32> = (0..rows * row).map(|i| i as f32).collect();
        for idx in [
            vec![0, 1, 2, 3, 4],
            vec![1, 0, 2, 3, 4],
            vec![1, 2, 0, 4, 3],
            vec![0, 0, 1, 1, 4],
            vec![3, 3, 3, 0, 2],
            vec![4, 4, 4, 4, 4],
        ] {
            let mut moved = buf.clone();
            let starts: Vec<usize> = (0..rows).map(|t| t % 3).collect();
            let op = MoveRows {
                idx: &idx,
                starts: &starts,
                len,
            };
            op.apply(&mut moved, h, cap, d);
            for (t, &src) in idx.iter().enumerate() {
                for head in 0..h {
                    for p in 0..cap {
                        let at = |r: usize| r * row + (head * cap + p) * d;
                        let want = if p < len && (p >= starts[t] || src == t) {
                            &buf[at(src)..][..d]
                        } else {
                            &buf[at(t)..][..d]
                        };
                        assert_eq!(
                            &moved[at(t)..][..d],
                            want,
                            "{idx:?} row {t} head {head} pos {p}"
                        );
                    }
                }
            }
        }
    }

    /// A cache's row selections (beams copied from a prefill, reordered within and across
    /// copies, some dropped, padded by a stack and trimmed) hold what selecting the rows of
    /// its keys and values by index gives, whatever positions they skip.
    #[test]
    fn selections_of_copied_rows_equal_an_index_select() -> Result<()> {
        let (h, d) = (2, 3);
        let mut counter = 0f32;
        let mut fresh = |rows: usize, q: usize| -> Result<Tensor> {
            let n = rows * h * q * d;
            counter += n as f32;
            let values: Vec<f32> = (0..n).map(|i| counter + i as f32).collect();
            Ok(Tensor::from_vec(
                values,
                (rows, h, q, d),
                &candle_core::Device::Cpu,
            )?)
        };
        let mut cache = KvCache::new(1, 2);
        let mut append = |cache: &mut KvCache, q: usize| -> Result<()> {
            let rows = cache.rows();
            let (k, v) = (fresh(rows, q)?, fresh(rows, q)?);
            cache.layer(0).append(k, v, false)?;
            for kp in &mut cache.k_pos {
                let at = kp.len() as i64;
                kp.extend((at..at + q as i64).map(Some));
            }
            Ok(())
        };
        append(&mut cache, 3)?;
        let check = |cache: &mut KvCache, idx: &[usize]| -> Result<()> {
            let (k, v) = cache.layers[0].view()?.expect("filled");
            let ids = Tensor::new(
                idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                k.device(),
            )?;
            let select = |t: &Tensor| t.contiguous()?.index_select(&ids, 0);
            let want = (select(&k)?, select(&v)?);
            cache.select_rows(idx)?;
            let (k, v) = cache.layers[0].view()?.expect("filled");
            for (got, want) in [(k, want.0), (v, want.1)] {
                assert_eq!(
                    got.flatten_all()?.to_vec1::<f32>()?,
                    want.flatten_all()?.to_vec1::<f32>()?,
                    "{idx:?}"
                );
            }
            Ok(())
        };
        check(&mut cache, &[0, 0, 0, 1, 1])?;
        assert_eq!(cache.shared[0], cache.shared[2]);
        assert_ne!(cache.shared[0], cache.shared[3]);
        append(&mut cache, 1)?;
        check(&mut cache, &[1, 0, 0, 4, 3])?;
        append(&mut cache, 2)?;
        check(&mut cache, &[2, 2, 1, 3, 3])?;
        check(&mut cache, &[3, 0, 1, 2, 4])?;
        let mut newcomer = KvCache::new(1, 1);
        append(&mut newcomer, 2)?;
        cache = KvCache::stack(&[cache, newcomer])?;
        append(&mut cache, 1)?;
        check(&mut cache, &[1, 0, 2, 3, 4, 5, 5])?;
        append(&mut cache, 1)?;
        check(&mut cache, &[6, 5, 4, 0, 2, 1, 3])?;
        // Only the newcomer's copies stay: the padding in front of them goes.
        check(&mut cache, &[0, 1, 1, 0])?;
        cache.trim_padding()?;
        assert_eq!(cache.len(), 4);
        append(&mut cache, 1)?;
        check(&mut cache, &[1, 0, 3, 2])?;
        Ok(())
    }
}
