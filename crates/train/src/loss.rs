//! Token cross-entropy on the positions that carry a label, as a fused candle op.
//!
//! Logits for a 262k-token vocabulary are large, so the forward pass computes
//! `logsumexp(z) − z[target]` row by row and the backward pass writes
//! `(softmax(z) − onehot(target)) · g` in one sweep, instead of materialising `log_softmax`,
//! a one-hot gather and their gradients as separate tensors. Rows are spread over threads;
//! the exponentials run vectorised ([`datm_model::vmath`]), and each row's log-sum-exp is
//! computed once, in the forward pass, and kept for the backward one.
//!
//! On the CPU's packed kernels the LM head joins the loss ([`head_cross_entropy_sum`]): one
//! op from the final hidden states to the loss, whose logits and their gradient never become
//! tensors of candle's graph (which would zero a gradient buffer of the logits' size, add
//! into it and allocate the sum: three passes over e.g. 105 MB per micro-batch), and whose
//! logits buffer is reused from one micro-batch to the next.
//!
//! On a CUDA device the same op runs datm-model's kernels on the logits in their own
//! precision (no f32 copy of them); with the kernels off ([`datm_model::fused::cuda_kernels`])
//! the loss is candle's composed ops ([`composite_cross_entropy_sum`]).

use anyhow::{ensure, Result};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use datm_model::lora::FrozenProduct;
use datm_model::{vmath, Model};
use rayon::prelude::*;
use std::sync::{Mutex, PoisonError};

/// Checks `targets` against `n` rows of `vocab` logits.
fn check_targets(n: usize, vocab: usize, targets: &[u32]) -> Result<()> {
    ensure!(
        n == targets.len(),
        "{n} logit rows for {} targets",
        targets.len()
    );
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        anyhow::bail!("target token {bad} is outside the vocabulary of {vocab}");
    }
    Ok(())
}

/// Summed cross-entropy of the LM head's logits for `hidden` `[n, dim]` against `targets`,
/// as a scalar that backpropagates into `hidden`: [`cross_entropy_sum`] of
/// [`Model::lm_logits`], with the same bits, as one op where the head multiplies on the CPU's
/// packed kernels (see the module's notes).
pub fn head_cross_entropy_sum(model: &Model, hidden: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let head = match model.lm_head_product()? {
        Some(head) if hidden.device().is_cpu() && datm_model::fused::applies(hidden) => head,
        _ => return cross_entropy_sum(&model.lm_logits(hidden)?, targets),
    };
    let (n, dim) = hidden.dims2()?;
    ensure!(
        dim == head.in_dim(),
        "hidden states of {dim} features for an LM head of {}",
        head.in_dim()
    );
    check_targets(n, head.out_dim(), targets)?;
    let per_row = hidden.contiguous()?.apply_op1(HeadCrossEntropy {
        head,
        targets: targets.to_vec(),
        saved: Mutex::new(None),
    })?;
    Ok(per_row.sum_all()?)
}

/// Summed cross-entropy of `logits` `[n, vocab]` against `targets` (length n), as a scalar
/// that backpropagates into `logits`: the fused op on the CPU (in f32) and on CUDA devices
/// with the kernels on (in the logits' precision), [`composite_cross_entropy_sum`] otherwise.
pub fn cross_entropy_sum(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let (n, vocab) = logits.dims2()?;
    check_targets(n, vocab, targets)?;
    let logits = if logits.device().is_cpu() {
        logits.to_dtype(DType::F32)?.contiguous()?
    } else if datm_model::fused::applies(logits) {
        logits.contiguous()?
    } else {
        return composite_cross_entropy_sum(logits, targets);
    };
    let per_row = logits.apply_op1(RowCrossEntropy {
        targets: targets.to_vec(),
        lse: Mutex::new(None),
    })?;
    Ok(per_row.sum_all()?)
}

/// [`cross_entropy_sum`] out of candle's differentiable ops, in f32: `−Σ log_softmax(z)[target]`.
pub fn composite_cross_entropy_sum(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?.contiguous()?;
    let idx = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let logp = candle_nn::ops::log_softmax(&logits, 1)?;
    Ok(logp.gather(&idx, 1)?.sum_all()?.neg()?)
}

/// Per-row `logsumexp(z) − z[target]`.
struct RowCrossEntropy {
    targets: Vec<u32>,
    /// Each row's log-sum-exp, from the forward pass.
    lse: Mutex<Option<Vec<f32>>>,
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("cross-entropy needs contiguous f32 input"),
    }
}

/// Log-sum-exp of one row.
fn logsumexp(row: &[f32]) -> f32 {
    let (max, shift) = vmath::log_softmax_shift(row);
    max + shift
}

/// The log-sum-exp of every row of `z` (rows of `vocab` values).
fn row_logsumexps(z: &[f32], vocab: usize) -> Vec<f32> {
    z.par_chunks(vocab).map(logsumexp).collect()
}

/// Keeps a forward pass's `value` in `slot` for the backward pass.
fn keep<T>(slot: &Mutex<Option<T>>, value: T) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
}

/// What the forward pass kept in `slot`: taken, not copied (a second backward pass computes
/// it again).
fn taken<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Each row's `logsumexp(z) − z[target]`.
fn row_losses(z: &[f32], vocab: usize, lse: &[f32], targets: &[u32]) -> Vec<f32> {
    z.chunks(vocab)
        .zip(lse)
        .zip(targets)
        .map(|((row, &lse), &t)| lse - row[t as usize])
        .collect()
}

/// Each row of `z` (`vocab` values) replaced by `(softmax(z) − onehot(target)) · g_row`, the
/// gradient of its cross-entropy, from the row's log-sum-exp.
fn softmax_minus_onehot(z: &mut [f32], vocab: usize, targets: &[u32], lse: &[f32], g: &[f32]) {
    z.par_chunks_mut(vocab)
        .zip(targets.par_iter().zip(lse.par_iter()).zip(g.par_iter()))
        .for_each(|(row, ((&t, &lse), &gr))| {
            vmath::scaled_exp_in_place(row, lse, gr);
            row[t as usize] -= gr;
        });
}

/// The last micro-batch's logits buffer, taken by the next one ([`logits_buffer`]).
static LOGITS: Mutex<Vec<f32>> = Mutex::new(Vec::new());

/// A buffer of `len` values (contents unspecified), reusing the one last returned by
/// [`return_logits_buffer`]: a fresh one would be new pages, faulted in at every micro-batch.
fn logits_buffer(len: usize) -> Vec<f32> {
    let mut buf = std::mem::take(&mut *LOGITS.lock().unwrap_or_else(PoisonError::into_inner));
    buf.resize(len, 0.0);
    buf
}

/// Keeps `buf` for the next [`logits_buffer`].
fn return_logits_buffer(buf: Vec<f32>) {
    *LOGITS.lock().unwrap_or_else(PoisonError::into_inner) = buf;
}

/// Per-row cross-entropy of the LM head's logits for `[n, dim]` hidden states: the head's
/// product, `logsumexp(z) − z[target]`, and in the backward pass the loss's gradient through
/// the head, with the logits kept in between outside candle's graph.
struct HeadCrossEntropy {
    head: FrozenProduct,
    targets: Vec<u32>,
    /// The forward pass's logits and their rows' log-sum-exps.
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl HeadCrossEntropy {
    /// The logits of `n` hidden rows `x` and their rows' log-sum-exps.
    fn logits(&self, x: &[f32], n: usize) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let vocab = self.head.out_dim();
        let mut z = logits_buffer(n * vocab);
        self.head
            .forward_into(x, n, &mut z)
            .map_err(|e| candle_core::Error::Msg(format!("LM head: {e}")))?;
        let lse = row_logsumexps(&z, vocab);
        Ok((z, lse))
    }
}

impl CustomOp1 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "head-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, _) = l.shape().dims2()?;
        let (z, lse) = self.logits(contiguous_f32(s, l)?, n)?;
        let out = row_losses(&z, self.head.out_dim(), &lse, &self.targets);
        keep(&self.saved, (z, lse));
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let (n, dim) = arg.dims2()?;
        let (mut z, lse) = match taken(&self.saved) {
            Some(saved) => saved,
            None => {
                let x = arg.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
                self.logits(&x, n)?
            }
        };
        let vocab = self.head.out_dim();
        softmax_minus_onehot(&mut z, vocab, &self.targets, &lse, &g);
        let mut dx = vec![0f32; n * dim];
        self.head
            .backward_into(&z, n, &mut dx)
            .map_err(|e| candle_core::Error::Msg(format!("LM head (backward): {e}")))?;
        return_logits_buffer(z);
        Ok(Some(Tensor::from_vec(dx, (n, dim), arg.device())?))
    }
}

impl CustomOp1 for RowCrossEntropy {
    fn name(&self) -> &'static str {
        "row-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, vocab) = l.shape().dims2()?;
        let z = contiguous_f32(s, l)?;
        let lse = row_logsumexps(z, vocab);
        let out = row_losses(z, vocab, &lse, &self.targets);
        keep(&self.lse, lse);
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        datm_model::fused_cuda::cross_entropy(s, l, &self.targets)
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.to_dtype(DType::F32)?.contiguous()?;
        let lse = taken(&self.lse);
        let grad = arg.apply_op2_no_bwd(
            &g,
            &RowCrossEntropyGrad {
                targets: self.targets.clone(),
                lse,
            },
        )?;
        Ok(Some(grad))
    }
}

/// `(softmax(z) − onehot(target)) · g_row`, the gradient of [`RowCrossEntropy`].
struct RowCrossEntropyGrad {
    targets: Vec<u32>,
    /// The rows' log-sum-exps from the forward pass (computed again if absent).
    lse: Option<Vec<f32>>,
}

impl CustomOp2 for RowCrossEntropyGrad {
    fn name(&self) -> &'static str {
        "row-cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, vocab) = l1.shape().dims2()?;
        let z = contiguous_f32(s1, l1)?;
        let g = contiguous_f32(s2, l2)?;
        let recomputed;
        let lse = match &self.lse {
            Some(lse) if lse.len() == n => lse,
            _ => {
                recomputed = row_logsumexps(z, vocab);
                &recomputed
            }
        };
        let mut out = z.to_vec();
        softmax_minus_onehot(&mut out, vocab, &self.targets, lse, g);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let dz = datm_model::fused_cuda::cross_entropy_bwd((s1, l1), (s2, l2), &self.targets)?;
        Ok((dz, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op and candle's composed `log_softmax` + `gather` agree on value and gradient.
    #[test]
    fn fused_matches_composed() {
        let dev = Device::Cpu;
        let z = Var::from_tensor(&(Tensor::randn(0f32, 3.0, (5, 11), &dev).unwrap())).unwrap();
        let targets = [0u32, 10, 3, 3, 7];
        let fused = (cross_entropy_sum(z.as_tensor(), &targets).unwrap() * 0.5).unwrap();
        let idx = Tensor::new(&targets[..], &dev)
            .unwrap()
            .unsqueeze(1)
            .unwrap();
        let logp = candle_nn::ops::log_softmax(z.as_tensor(), 1).unwrap();
        let composed = (logp
            .gather(&idx, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .neg()
            .unwrap()
            * 0.5)
            .unwrap();
        let (a, b) = (
            fused.to_scalar::<f32>().unwrap(),
            composed.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        let ga = fused
            .backward()
            .unwrap()
            .get(&z)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let gb = composed
            .backward()
            .unwrap()
            .get(&z)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (x, y) in ga.iter().zip(&gb) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn rejects_out_of_vocabulary_targets() {
        let z = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
        let err = cross_entropy_sum(&z, &[4]).unwrap_err().to_string();
        assert!(err.contains("outside the vocabulary"), "{err}");
    }
}
