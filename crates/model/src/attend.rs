//! Attention at inference on the CPU in one pass per (row, kv head): scores, soft-cap,
//! mask, softmax and the weighted sum of values, instead of a dozen candle ops and their
//! intermediate tensors. No backward pass: training uses the composite ops of `nn`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use crate::vmath::{axpy, dot};

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
    q.contiguous()?.apply_op3_no_bwd(
        k,
        v,
        &AttendOp {
            mask: mask.contiguous()?,
            scale: scale as f32,
            softcap: softcap.map(|c| c as f32),
        },
    )
}

struct AttendOp {
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
            let (r, g) = (task / kvh, task % kvh);
            let queries = &qd[task * n * d..(task + 1) * n * d];
            // Scores of all the kv head's queries, each key read once: `[n, keys]`.
            let mut scores = vec![0f32; n * keys];
            for j in 0..keys {
                let kj = kk.at(r, g, j);
                for (i, q) in queries.chunks_exact(d).enumerate() {
                    let raw = dot(q, kj) * self.scale;
                    let capped = match self.softcap {
                        Some(c) => (raw / c).tanh() * c,
                        None => raw,
                    };
                    scores[i * keys + j] = capped + mask[(r * q_len + i % q_len) * keys + j];
                }
            }
            for row in scores.chunks_exact_mut(keys) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for s in row.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                for s in row.iter_mut() {
                    *s /= sum;
                }
            }
            // Weighted values, each value read once.
            for j in 0..keys {
                let vj = vv.at(r, g, j);
                for (i, o) in block.chunks_exact_mut(d).enumerate() {
                    axpy(scores[i * keys + j], vj, o);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, kvh, n, d))))
    }
}
