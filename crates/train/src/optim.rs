//! AdamW, global-norm gradient clipping and HF's `inverse_sqrt` learning-rate schedule, each
//! following its PyTorch/transformers reference step for step (checked against torch values in
//! `tests/optim_parity.rs`).

use std::collections::HashMap;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Tensor, Var};

/// AdamW hyper-parameters (torch.optim.AdamW semantics; the learning rate comes per step).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// Denominator epsilon, added after bias correction as torch does.
    pub eps: f64,
    /// Decoupled weight decay λ: θ ← θ·(1 − lr·λ) before the Adam update.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        use crate::defaults as d;
        AdamWConfig {
            beta1: d::BETA1,
            beta2: d::BETA2,
            eps: d::EPS,
            weight_decay: d::WEIGHT_DECAY,
        }
    }
}

/// One parameter's moments, always f32 whatever the parameter's dtype.
struct Moments {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// torch.optim.AdamW (single-tensor path, no amsgrad) over named candle `Var`s.
pub struct AdamW {
    config: AdamWConfig,
    names: Vec<String>,
    moments: Vec<Moments>,
    step: u64,
}

impl AdamW {
    /// A fresh optimizer with zero moments for each named parameter, in order.
    pub fn new(config: AdamWConfig, params: &[(String, Var)]) -> Result<Self> {
        let moments = params
            .iter()
            .map(|(_, v)| {
                let z = Tensor::zeros(v.shape(), DType::F32, v.device())?;
                Ok(Moments {
                    exp_avg: z.clone(),
                    exp_avg_sq: z,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let names = params.iter().map(|(n, _)| n.clone()).collect();
        Ok(AdamW {
            config,
            names,
            moments,
            step: 0,
        })
    }

    /// Optimizer steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// Applies one update with learning rate `lr`; `grads[i]` belongs to `params[i]`.
    pub fn step(&mut self, params: &[(String, Var)], grads: &[Tensor], lr: f64) -> Result<()> {
        ensure!(
            params.len() == self.moments.len() && grads.len() == params.len(),
            "AdamW: {} parameters and {} gradients for {} moment slots",
            params.len(),
            grads.len(),
            self.moments.len()
        );
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        for (((_, var), grad), m) in params.iter().zip(grads).zip(self.moments.iter_mut()) {
            // Detached inputs keep the moments and parameters free of autograd graphs, which
            // would otherwise chain every step's forward pass to the next.
            let g = grad.detach().to_dtype(DType::F32)?;
            // exp_avg.lerp_(grad, 1 − β₁)
            m.exp_avg = (&m.exp_avg + ((&g - &m.exp_avg)? * (1.0 - c.beta1))?)?;
            // exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 − β₂)
            m.exp_avg_sq = ((&m.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((m.exp_avg_sq.sqrt()? / bias2_sqrt)? + c.eps)?;
            let theta = var.as_tensor().detach().to_dtype(DType::F32)?;
            let decayed = (theta * (1.0 - lr * c.weight_decay))?;
            let updated = (decayed - ((&m.exp_avg / denom)? * step_size)?)?;
            var.set(&updated.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    /// The moments and step count as named tensors, for checkpoints
    /// (`<param>.exp_avg`, `<param>.exp_avg_sq`, `step`).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, m) in self.names.iter().zip(&self.moments) {
            out.insert(format!("{name}.exp_avg"), m.exp_avg.clone());
            out.insert(format!("{name}.exp_avg_sq"), m.exp_avg_sq.clone());
        }
        let device = self.moments.first().map(|m| m.exp_avg.device().clone());
        let device = device.unwrap_or(candle_core::Device::Cpu);
        out.insert("step".into(), Tensor::new(&[self.step as f64], &device)?);
        Ok(out)
    }

    /// Restores moments and step count saved by [`AdamW::state_tensors`]; every parameter must be
    /// present with the right shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, origin: &str) -> Result<()> {
        let get = |key: &str| {
            state
                .get(key)
                .with_context(|| format!("{origin}: optimizer state lacks tensor {key}"))
        };
        for (name, m) in self.names.iter().zip(self.moments.iter_mut()) {
            for (suffix, slot) in [
                ("exp_avg", &mut m.exp_avg),
                ("exp_avg_sq", &mut m.exp_avg_sq),
            ] {
                let key = format!("{name}.{suffix}");
                let t = get(&key)?;
                ensure!(
                    t.shape() == slot.shape(),
                    "{origin}: tensor {key} has shape {:?}, expected {:?}",
                    t.dims(),
                    slot.dims()
                );
                *slot = t.to_dtype(DType::F32)?.to_device(slot.device())?;
            }
        }
        let step = get("step")?.to_vec1::<f64>()?;
        ensure!(step.len() == 1, "{origin}: tensor step must hold one value");
        self.step = step[0] as u64;
        Ok(())
    }
}

/// Scales `grads` in place so their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (coefficient `max_norm / (norm + 1e-6)`, clamped to 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sum_sq = 0f64;
    for g in grads.iter_mut() {
        *g = g.detach();
        let n = g
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
        sum_sq += n;
    }
    let total = sum_sq.sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(total)
}

/// Dynamic loss scaling for f16 training, as PyTorch's `torch.amp.GradScaler` does it with
/// its defaults: the loss is multiplied by [`LossScaler::scale`] before backward, so that
/// small gradients survive f16's range, and the gradients are divided by it before clipping.
/// A step whose gradients are not finite is skipped (no update, and the learning-rate
/// schedule does not advance, as in HF's Trainer) and halves the scale; [`GROWTH_INTERVAL`]
/// finite steps in a row double it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScaler {
    /// The factor the loss is multiplied by.
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub good_steps: usize,
    /// Steps skipped so far in the run.
    pub skipped: usize,
}

/// GradScaler's `init_scale`.
pub const INITIAL_LOSS_SCALE: f64 = 65536.0;
/// GradScaler's `growth_interval`.
pub const GROWTH_INTERVAL: usize = 2000;

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: INITIAL_LOSS_SCALE,
            good_steps: 0,
            skipped: 0,
        }
    }
}

impl LossScaler {
    /// Records whether a step's unscaled gradients were all finite and updates the scale;
    /// returns whether the optimizer may take the step.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale *= 0.5;
            self.good_steps = 0;
            self.skipped += 1;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps == GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

/// HF transformers' `inverse_sqrt` schedule (`get_inverse_sqrt_schedule`) with linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InverseSqrtSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Linear warm-up length in optimizer steps.
    pub warmup_steps: usize,
    /// Decay timescale: the warm-up length, or 10 000 when there is no warm-up.
    pub timescale: usize,
}

impl InverseSqrtSchedule {
    /// The schedule for `total_steps` optimizer steps with warm-up `ceil(warmup_ratio × total)`
    /// (HF `TrainingArguments.get_warmup_steps` for a ratio below 1).
    pub fn new(base_lr: f64, warmup_ratio: f64, total_steps: usize) -> Self {
        let warmup_steps = (warmup_ratio * total_steps as f64).ceil() as usize;
        let timescale = if warmup_steps == 0 {
            10_000
        } else {
            warmup_steps
        };
        InverseSqrtSchedule {
            base_lr,
            warmup_steps,
            timescale,
        }
    }

    /// Learning rate for the optimizer step with 0-based index `step` (the scheduler's
    /// `last_epoch` when `optimizer.step()` runs; so with warm-up the first step's rate is 0).
    pub fn lr(&self, step: usize) -> f64 {
        let factor = if step < self.warmup_steps {
            step as f64 / self.warmup_steps.max(1) as f64
        } else {
            let shift = self.timescale as f64 - self.warmup_steps as f64;
            1.0 / ((step as f64 + shift) / self.timescale as f64).sqrt()
        };
        self.base_lr * factor
    }
}
