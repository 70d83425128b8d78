//! Attention at inference on the CPU in one pass per (row, kv head): scores, soft-cap,
//! mask, softmax and the weighted sum of values, instead of a dozen candle ops and their
//! intermediate tensors, each pass compiled for the active kernel path ([`crate::cpu`]).
//! No backward pass: training uses the composite ops of `nn`. [`attend_packed`] is the
//! encoders' variant: unmasked attention over sequences packed without padding.

use std::ops::Range;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use anyhow::ensure;

use crate::cpu::{self, Isa};
use crate::kernels::{pack_small, small_product};
use crate::simd::{self, Task, Vector};
use crate::vmath::softmax_v;

/// Whether [`attend`] can run on these tensors (f32 on the CPU).
pub fn applies(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    [q, k, v]
        .iter()
        .all(|t| t.dtype() == DType::F32 && t.device().is_cpu())
}

/// `softmax(softcap(q·kᵀ·scale) + mask) · v` for queries `q` `[rows, kvh, n, d]` (the `rep`
/// query heads of each kv head, each with `q_len` positions: `n = rep·q_len`), keys and
/// values `[rows, kvh, keys, d]` (any strides, contiguous last dimension) and the additive
/// mask `[rows, 1, 1, q_len, keys]`; returns `[rows, kvh, n, d]`.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    softcap: Option<f64>,
) -> candle_core::Result<Tensor> {
    attend_on(cpu::isa(), q, k, v, mask, scale, softcap)
}

/// Self-attention of sequences packed one after another without padding (an encoder's
/// batch): row `r` of `qkv` holds token `r`'s query, key and value (`[q | k | v]`, each
/// `heads · d` values, head after head), `lens` the sequences' lengths in order. Each token
/// attends to every token of its sequence: `out` (`[rows, heads · d]`) gets
/// `softmax(q·kᵀ·scale)·v` of every head. In parallel over the sequences; the products run
/// on the register tiles of the packed matmuls.
pub fn attend_packed(
    qkv: &[f32],
    lens: &[usize],
    (heads, d): (usize, usize),
    scale: f32,
    out: &mut [f32],
) -> anyhow::Result<()> {
    attend_packed_on(cpu::isa(), qkv, lens, (heads, d), scale, out)
}

/// [`attend_packed`] on kernel path `isa`.
fn attend_packed_on(
    isa: Isa,
    qkv: &[f32],
    lens: &[usize],
    (heads, d): (usize, usize),
    scale: f32,
    out: &mut [f32],
) -> anyhow::Result<()> {
    let (h, rows) = (heads * d, lens.iter().sum::<usize>());
    ensure!(h > 0, "attention needs heads of at least one value");
    ensure!(
        qkv.len() == rows * 3 * h && out.len() == rows * h,
        "attention over {rows} rows of {heads}×{d}: {} inputs, {} outputs",
        qkv.len(),
        out.len()
    );
    let mut rest = qkv;
    let inputs: Vec<&[f32]> = lens
        .iter()
        .map(|len| {
            let (seq, tail) = rest.split_at(len * 3 * h);
            rest = tail;
            seq
        })
        .collect();
    let outputs: Vec<usize> = lens.iter().map(|len| len * h).collect();
    crate::pool::par_split(out, &outputs, |i, block| {
        let task = Sequence {
            qkv: inputs[i],
            heads,
            d,
            scale,
            out: block,
        };
        simd::run(isa, task)
    });
    Ok(())
}

/// The attention of one packed sequence, all heads.
struct Sequence<'a> {
    /// `[t, 3 · heads · d]`.
    qkv: &'a [f32],
    heads: usize,
    d: usize,
    scale: f32,
    /// `[t, heads · d]`.
    out: &'a mut [f32],
}

impl Task for Sequence<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(self) {
        let (d, h) = (self.d, self.heads * self.d);
        let t = self.out.len() / h;
        if t == 0 {
            return;
        }
        let (qkv, stride) = (self.qkv, 3 * h);
        // Rows of scores padded to whole registers with −∞ (weight 0 after the softmax), so
        // that the softmax runs on registers only.
        let tp = t.next_multiple_of(V::LANES);
        let (mut keys, mut values, mut scores) = (Vec::new(), Vec::new(), vec![0f32; t * tp]);
        for g in 0..self.heads {
            scores.fill(f32::NEG_INFINITY);
            let (q0, k0, v0) = (g * d, h + g * d, 2 * h + g * d);
            // Keys as a `[t, d]` operand (scores = q · keysᵀ), values as `[d, t]`.
            pack_small(t, d, V::NR, |j, e| qkv[j * stride + k0 + e], &mut keys);
            pack_small(d, t, V::NR, |e, j| qkv[j * stride + v0 + e], &mut values);
            // SAFETY (both products and the softmax): the caller guarantees the CPU runs `V`.
            unsafe { small_product::<V>(&keys, (t, d), &qkv[q0..], stride, t, &mut scores, tp) };
            for row in scores.chunks_exact_mut(tp) {
                row[..t].iter_mut().for_each(|s| *s *= self.scale);
                // SAFETY: as above.
                unsafe { softmax_v::<V>(row) };
            }
            let out = &mut self.out[g * d..];
            // SAFETY: as above.
            unsafe { small_product::<V>(&values, (d, t), &scores, tp, t, out, h) };
        }
    }
}

/// [`attend`] on kernel path `isa`.
fn attend_on(
    isa: Isa,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    softcap: Option<f64>,
) -> candle_core::Result<Tensor> {
    q.contiguous()?.apply_op3_no_bwd(
        k,
        v,
        &AttendOp {
            isa,
            mask: mask.contiguous()?,
            scale: scale as f32,
            softcap: softcap.map(|c| c as f32),
        },
    )
}

struct AttendOp {
    isa: Isa,
    mask: Tensor,
    scale: f32,
    softcap: Option<f32>,
}

/// A `[rows, kvh, keys, d]` operand: its data and where row `r`, head `g`, key `j` starts.
struct Strided<'a> {
    data: &'a [f32],
    offset: usize,
    stride: [usize; 3],
    d: usize,
}

impl<'a> Strided<'a> {
    fn new(op: &str, s: &'a CpuStorage, l: &Layout, d: usize) -> candle_core::Result<Self> {
        let CpuStorage::F32(data) = s else {
            candle_core::bail!("{op}: expected f32 keys/values, got {:?}", s.dtype());
        };
        let st = l.stride();
        if st.len() != 4 || st[3] != 1 {
            candle_core::bail!("{op}: keys/values need a contiguous last dimension, {l:?}");
        }
        Ok(Strided {
            data,
            offset: l.start_offset(),
            stride: [st[0], st[1], st[2]],
            d,
        })
    }

    fn at(&self, r: usize, g: usize, j: usize) -> &'a [f32] {
        let o = self.offset + r * self.stride[0] + g * self.stride[1] + j * self.stride[2];
        &self.data[o..o + self.d]
    }
}

impl CustomOp3 for AttendOp {
    fn name(&self) -> &'static str {
        "attend"
    }

    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (rows, kvh, n, d) = lq.shape().dims4()?;
        let keys = lk.shape().dims4()?.2;
        let (mrows, _, _, q_len, mkeys) = self.mask.dims5()?;
        if lk.shape() != lv.shape()
            || lk.shape().dims4()? != (rows, kvh, keys, d)
            || mrows != rows
            || mkeys != keys
            || q_len == 0
            || n % q_len != 0
        {
            candle_core::bail!(
                "{name}: q {:?}, k {:?}, v {:?}, mask {:?} do not fit",
                lq.shape(),
                lk.shape(),
                lv.shape(),
                self.mask.shape()
            );
        }
        let CpuStorage::F32(qd) = sq else {
            candle_core::bail!("{name}: expected f32 queries");
        };
        let qd = &qd[lq.start_offset()..];
        let (kk, vv) = (
            Strided::new(name, sk, lk, d)?,
            Strided::new(name, sv, lv, d)?,
        );
        crate::fused::with_f32(name, &self.mask, |mask| {
            self.attend_all(qd, &kk, &vv, mask, (rows, kvh, n, d, keys, q_len))
        })
    }
}

impl AttendOp {
    /// The output `[rows, kvh, n, d]` from queries, keys, values and the mask's data.
    fn attend_all(
        &self,
        qd: &[f32],
        kk: &Strided,
        vv: &Strided,
        mask: &[f32],
        (rows, kvh, n, d, keys, q_len): (usize, usize, usize, usize, usize, usize),
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = vec![0f32; rows * kvh * n * d];
        crate::pool::par_chunks(&mut out, n * d, |task, block| {
            let r = task / kvh;
            let head = Head {
                op: self,
                at: (task / kvh, task % kvh),
                queries: &qd[task * n * d..(task + 1) * n * d],
                kk,
                vv,
                mask: &mask[r * q_len * keys..(r + 1) * q_len * keys],
                q_len,
                block,
            };
            simd::run(self.isa, head)
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, kvh, n, d))))
    }
}

/// The attention of one (row, kv head): all its queries against its keys and values.
struct Head<'a> {
    op: &'a AttendOp,
    /// (row, kv head).
    at: (usize, usize),
    /// `[n, d]`.
    queries: &'a [f32],
    kk: &'a Strided<'a>,
    vv: &'a Strided<'a>,
    /// `[q_len, keys]`.
    mask: &'a [f32],
    /// Query positions (the mask's rows).
    q_len: usize,
    /// The output `[n, d]`.
    block: &'a mut [f32],
}

impl Task for Head<'_> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<V: Vector>(mut self) {
        let d = self.kk.d;
        let (n, q_len, all) = (self.queries.len() / d, self.q_len, self.mask);
        let keys = all.len() / q_len;
        // The queries of one position, one per query head, see the same keys: they pass
        // over each key and value together, up to four at a time.
        for (p, mask) in all.chunks_exact(keys).enumerate() {
            // Only the keys from the first to the last one a query sees enter its sums, so
            // a row's output is the same bits whatever padding its batch adds around it.
            let span = visible_span(mask);
            if span.is_empty() {
                continue;
            }
            let heads: Vec<usize> = (p..n).step_by(q_len).collect();
            for group in heads.chunks(4) {
                // SAFETY: the caller guarantees the CPU runs `V`; the group's queries are
                // distinct, so are their output blocks.
                unsafe {
                    match *group {
                        [a, b, c, e] => self.queries_together::<V, 4>([a, b, c, e], mask, &span),
                        [a, b, c] => self.queries_together::<V, 3>([a, b, c], mask, &span),
                        [a, b] => self.queries_together::<V, 2>([a, b], mask, &span),
                        [a, ..] => self.queries_together::<V, 1>([a], mask, &span),
                        [] => {}
                    }
                }
            }
        }
    }
}

impl Head<'_> {
    /// The outputs of queries `ids` (distinct, of one position: `mask` and its `span`
    /// theirs) over the keys of the span: the scores of each key for all of them, soft-cap,
    /// mask and softmax per query, then the values' weighted sums, each value read once
    /// for all, lane block by lane block with the sums in registers (each sum the FMA chain
    /// over the keys in order that one value after the other gives).
    ///
    /// # Safety
    /// The CPU runs `V`; `ids` are distinct queries of the head.
    #[inline(always)]
    unsafe fn queries_together<V: Vector, const Q: usize>(
        &mut self,
        ids: [usize; Q],
        mask: &[f32],
        span: &Range<usize>,
    ) {
        let ((r, g), d) = (self.at, self.kk.d);
        let queries = ids.map(|i| &self.queries[i * d..(i + 1) * d]);
        let mut scores = vec![[0f32; Q]; span.len()];
        for (j, s) in span.clone().zip(&mut scores) {
            // SAFETY: the caller's contract.
            let raw = unsafe { crate::vmath::dots_v::<V, Q>(queries, self.kk.at(r, g, j)) };
            for (s, raw) in s.iter_mut().zip(raw) {
                let raw = raw * self.op.scale;
                let capped = match self.op.softcap {
                    Some(c) => (raw / c).tanh() * c,
                    None => raw,
                };
                *s = capped + mask[j];
            }
        }
        let mut row = vec![0f32; span.len()];
        for q in 0..Q {
            row.iter_mut().zip(&scores).for_each(|(r, s)| *r = s[q]);
            // SAFETY: the caller's contract.
            unsafe { softmax_v::<V>(&mut row) };
            scores.iter_mut().zip(&row).for_each(|(s, r)| s[q] = *r);
        }
        let vv = self.vv;
        let values: Vec<&[f32]> = span.clone().map(|j| vv.at(r, g, j)).collect();
        let out = self.block.as_mut_ptr();
        // SAFETY: the caller's contract: the queries' output blocks are distinct `d` values
        // of `block`, borrowed mutably here.
        let outs = ids.map(|i| unsafe { std::slice::from_raw_parts_mut(out.add(i * d), d) });
        // SAFETY: the caller's contract.
        unsafe { crate::vmath::weighted_sums_v::<V, Q>(&scores, &values, outs) };
    }
}

/// The additive mask value of a hidden key, as the decoder's masks write it: a key masked
/// with it (or anything lower, `-inf` included) adds exactly nothing to a query's softmax.
pub(crate) const MASKED: f32 = -1e30;

/// The keys a mask row sees, from the first to the last (empty when it sees none).
fn visible_span(mask: &[f32]) -> Range<usize> {
    let seen = |m: &f32| *m > MASKED;
    match (mask.iter().position(seen), mask.iter().rposition(seen)) {
        (Some(first), Some(last)) => first..last + 1,
        _ => 0..0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn tensor(shape: &[usize], seed: usize) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(flat_data(n, seed), shape, &Device::Cpu).unwrap()
    }

    /// Every kernel path against the textbook formula in f64, with soft-cap, a causal mask,
    /// two query heads per kv head and a head size that leaves register tails.
    #[test]
    fn matches_the_formula_on_every_path() {
        let (rows, kvh, rep, q_len, keys, d) = (2, 2, 2, 3, 7, 20);
        let n = rep * q_len;
        let (q, k, v) = (
            tensor(&[rows, kvh, n, d], 1),
            tensor(&[rows, kvh, keys, d], 2),
            tensor(&[rows, kvh, keys, d], 3),
        );
        let mask: Vec<f32> = (0..rows * q_len * keys)
            .map(|i| {
                let (t, j) = ((i / keys) % q_len, i % keys);
                if j > keys - q_len + t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (rows, 1, 1, q_len, keys), &Device::Cpu).unwrap();
        let (scale, cap) = (0.3, 2.0);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (qv, kv, vv, mv) = (flat(&q), flat(&k), flat(&v), flat(&mask));
        let mut want = vec![0f64; rows * kvh * n * d];
        for r in 0..rows {
            for g in 0..kvh {
                for i in 0..n {
                    let at = |j: usize| ((r * kvh + g) * keys + j) * d;
                    let qi = &qv[((r * kvh + g) * n + i) * d..][..d];
                    let s: Vec<f64> = (0..keys)
                        .map(|j| {
                            let dot: f64 =
                                (0..d).map(|t| qi[t] as f64 * kv[at(j) + t] as f64).sum();
                            (dot * scale / cap).tanh() * cap
                                + mv[(r * q_len + i % q_len) * keys + j] as f64
                        })
                        .collect();
                    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for t in 0..d {
                        want[((r * kvh + g) * n + i) * d + t] =
                            (0..keys).map(|j| e[j] / sum * vv[at(j) + t] as f64).sum();
                    }
                }
            }
        }
        for isa in cpu::available() {
            let got = attend_on(isa, &q, &k, &v, &mask, scale, Some(cap)).unwrap();
            for (g, w) in flat(&got).iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{isa}: {g} vs {w}");
            }
        }
    }

    /// Packed sequences (lengths around the register widths, one empty) against the
    /// formula in f64, on every path.
    #[test]
    fn packed_sequences_match_the_formula_on_every_path() {
        let (heads, d, scale) = (3, 20, 0.25f32);
        let h = heads * d;
        let lens = [1, 7, 0, 17, 70];
        let rows: usize = lens.iter().sum();
        let qkv = flat_data(rows * 3 * h, 5);
        let mut want = vec![0f64; rows * h];
        let mut start = 0;
        for &t in &lens {
            for g in 0..heads {
                let at = |j: usize, part: usize| (start + j) * 3 * h + part * h + g * d;
                for i in 0..t {
                    let s: Vec<f64> = (0..t)
                        .map(|j| {
                            let dot: f64 = (0..d)
                                .map(|e| qkv[at(i, 0) + e] as f64 * qkv[at(j, 1) + e] as f64)
                                .sum();
                            dot * scale as f64
                        })
                        .collect();
                    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = s.iter().map(|x| (x - max).exp()).sum();
                    for e in 0..d {
                        want[(start + i) * h + g * d + e] = (0..t)
                            .map(|j| (s[j] - max).exp() / sum * qkv[at(j, 2) + e] as f64)
                            .sum();
                    }
                }
            }
            start += t;
        }
        for isa in cpu::available() {
            let mut got = vec![f32::NAN; rows * h];
            attend_packed_on(isa, &qkv, &lens, (heads, d), scale, &mut got).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((*g as f64 - w).abs() < 1e-5, "{isa} {i}: {g} vs {w}");
            }
            assert!(attend_packed_on(isa, &qkv, &lens[1..], (heads, d), scale, &mut got).is_err());
        }
    }

    /// A row's keys with padding around them (hidden keys before and after, as a batch
    /// pads shorter prompts and a causal or sliding-window mask hides keys) give the same
    /// bits as the keys alone, on every path.
    #[test]
    fn padding_leaves_a_rows_output_unchanged_on_every_path() {
        let (kvh, n, d, keys) = (2, 3, 20, 13);
        let q = tensor(&[1, kvh, n, d], 5);
        let (k, v) = (tensor(&[1, kvh, keys, d], 6), tensor(&[1, kvh, keys, d], 7));
        let mask = |m: Vec<f32>| {
            let wide = m.len() / n;
            Tensor::from_vec(m, (1, 1, 1, n, wide), &Device::Cpu)
        };
        for (before, after) in [(1, 0), (4, 3), (9, 0), (0, 11)] {
            let pad = |t: &Tensor| {
                let z = |len| Tensor::zeros((1, kvh, len, d), DType::F32, &Device::Cpu);
                let parts = [z(before).unwrap(), t.clone(), z(after).unwrap()];
                Tensor::cat(&parts, 2).unwrap()
            };
            // Query `i` sees keys `i..keys - 2 + i`; the padding is hidden from all.
            let seen = |i: usize, j: usize| (i..keys - 2 + i).contains(&j);
            let alone: Vec<f32> = (0..n * keys)
                .map(|x| {
                    if seen(x / keys, x % keys) {
                        0.0
                    } else {
                        MASKED
                    }
                })
                .collect();
            let wide = before + keys + after;
            let padded: Vec<f32> = (0..n * wide)
                .map(|x| {
                    let (i, j) = (x / wide, x % wide);
                    let inside = (before..before + keys).contains(&j) && seen(i, j - before);
                    if inside {
                        0.0
                    } else if j % 2 == 0 {
                        MASKED
                    } else {
                        f32::NEG_INFINITY
                    }
                })
                .collect();
            for isa in cpu::available() {
                let run = |k: &Tensor, v: &Tensor, m: Vec<f32>| {
                    let got = attend_on(isa, &q, k, v, &mask(m).unwrap(), 0.3, None).unwrap();
                    got.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                };
                assert_eq!(
                    run(&k, &v, alone.clone()),
                    run(&pad(&k), &pad(&v), padded.clone()),
                    "{isa}: {before} hidden keys before, {after} after"
                );
            }
        }
    }

    fn flat_data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 997) as f32 / 997.0 - 0.5) * 2.0)
            .collect()
    }
}
