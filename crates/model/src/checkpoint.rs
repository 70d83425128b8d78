//! Activation (gradient) checkpointing per decoder layer, on any device.
//!
//! A training pass normally keeps every intermediate tensor of every layer until backward
//! (attention scores, MLP activations, the dropout masks): at the paper's batch and lengths
//! on a 7B model that is far more memory than the weights. [`CheckpointedPass`] keeps only
//! each layer's input; backward runs each layer again, last to first, with the same dropout
//! masks, and backpropagates the gradient of its output through it (`Σ out ⊙ ∂out`), which
//! gives the layer's LoRA gradients and the gradient of its input. The cost is one more
//! forward pass per step.

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::arch::Architecture;
use crate::lora::{Adapters, Ctx, SeededDropout};
use crate::nn::{KvCache, Layout, StepTensors};

/// A checkpointed training forward pass ([`crate::Model::forward_train_checkpointed`]).
pub struct CheckpointedPass<'m> {
    arch: &'m dyn Architecture,
    adapter: Option<&'m str>,
    step: StepTensors,
    rows: usize,
    dropout: SeededDropout,
    /// Each layer's input (no graph) and the dropout calls drawn before the layer ran.
    inputs: Vec<(Tensor, u64)>,
    /// The last layer's output, where backward enters the layers.
    top: Var,
    /// The final-norm hidden states, differentiable with respect to `top`.
    hidden: Tensor,
}

impl<'m> CheckpointedPass<'m> {
    /// Runs the decoder on `ids` `[rows, len]` laid out as `layout` with `adapter` active,
    /// keeping each layer's input only.
    pub(crate) fn run(
        arch: &'m dyn Architecture,
        ids: &Tensor,
        layout: &Layout,
        dropout: SeededDropout,
        adapter: Option<&'m str>,
    ) -> Result<Self> {
        let cfg = arch.config();
        let step = StepTensors::new(layout, &cfg.layers, cfg.head_dim, ids.device())?;
        let rows = ids.dim(0)?;
        let mut x = arch.embed(ids)?.detach();
        let mut inputs = Vec::with_capacity(cfg.num_layers);
        let ctx = train_ctx(adapter, &dropout);
        for i in 0..cfg.num_layers {
            let calls = dropout.calls();
            let mut cache = KvCache::new(cfg.num_layers, rows);
            // Detached: the layer's graph, and with it its activations, is dropped here.
            let out = arch.layer(i, &x, &step, &mut cache, &ctx)?.detach();
            inputs.push((std::mem::replace(&mut x, out), calls));
        }
        let top = Var::from_tensor(&x)?;
        let hidden = arch.final_norm(top.as_tensor(), &ctx)?;
        Ok(CheckpointedPass {
            arch,
            adapter,
            step,
            rows,
            dropout,
            inputs,
            top,
            hidden,
        })
    }

    /// Final-norm hidden states `[rows, len, hidden]`, as [`crate::Model::forward_train`]
    /// returns them; compute the loss from these.
    pub fn hidden(&self) -> &Tensor {
        &self.hidden
    }

    /// The gradients of `loss` (a scalar computed from [`CheckpointedPass::hidden`]) for
    /// `vars` (the active adapter's LoRA weights), as `loss.backward()` on an
    /// uncheckpointed pass gives them.
    pub fn backward(&self, loss: &Tensor, vars: &[&Var]) -> Result<GradStore> {
        let mut store = loss.backward()?;
        let mut grad = store
            .remove(self.top.as_tensor())
            .context("the loss does not depend on the pass's hidden states")?;
        let ctx = train_ctx(self.adapter, &self.dropout);
        let layers = self.arch.config().num_layers;
        for (i, (x, calls)) in self.inputs.iter().enumerate().rev() {
            self.dropout.rewind(*calls);
            let input = Var::from_tensor(x)?;
            let mut cache = KvCache::new(layers, self.rows);
            let out = self
                .arch
                .layer(i, input.as_tensor(), &self.step, &mut cache, &ctx)?;
            let layer = (out * &grad)?.sum_all()?.backward()?;
            for &v in vars {
                if let Some(g) = layer.get(v) {
                    // Detached: a gradient carries the graph that made it.
                    let g = g.detach();
                    let total = match store.remove(v) {
                        Some(prev) => (prev + g)?,
                        None => g,
                    };
                    store.insert(v, total);
                }
            }
            if i > 0 {
                grad = layer
                    .get(input.as_tensor())
                    .with_context(|| format!("no gradient reached the input of layer {i}"))?
                    .detach();
            }
        }
        Ok(store)
    }
}

/// The context of a training pass with `adapter` active, dropout on.
pub(crate) fn train_ctx<'a>(adapter: Option<&'a str>, dropout: &'a SeededDropout) -> Ctx<'a> {
    Ctx {
        train: true,
        adapters: Adapters::All(adapter),
        dropout: Some(dropout),
    }
}
