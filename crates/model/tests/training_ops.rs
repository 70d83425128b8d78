//! The ops of the training path: the frozen-weight matmuls (candle's, and the packed kernels
//! a training linear layer runs) give the same input gradient as a plain matmul, seeded dropout masks depend on the seed alone, and the fused f32 ops
//! (`datm_model::fused`) give the values and input gradients of the composite candle ops
//! they replace.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use datm_model::fused::rope;
use datm_model::fused_check;
use datm_model::lora::{frozen_matmul_t, Ctx, LoraLinear, SeededDropout};
use datm_model::weights::Weight;

/// Values spread over [-0.5, 0.5), fixed by `seed` (the fused-op check's sampler, scaled).
fn randn(shape: &[usize], seed: u64) -> Tensor {
    let wide = fused_check::sample(shape, seed, DType::F32, &Device::Cpu).unwrap();
    (wide / 4.0).unwrap()
}

fn input_grad(frozen: bool, dtype: DType) -> (Tensor, Tensor) {
    let x = Var::from_tensor(&randn(&[2, 3, 16], 1).to_dtype(dtype).unwrap()).unwrap();
    let w = randn(&[24, 16], 2).to_dtype(dtype).unwrap();
    let y = if frozen {
        frozen_matmul_t(x.as_tensor(), &w).unwrap()
    } else {
        let flat = x.as_tensor().reshape((6, 16)).unwrap();
        flat.matmul(&w.t().unwrap())
            .unwrap()
            .reshape((2, 3, 24))
            .unwrap()
    };
    // A non-uniform upstream gradient: d(sum(y²))/dy = 2y.
    let loss = y
        .to_dtype(DType::F32)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(&x).unwrap().to_dtype(DType::F32).unwrap();
    (y.to_dtype(DType::F32).unwrap(), g)
}

#[test]
fn frozen_matmul_matches_plain_matmul_forward_and_input_gradient() {
    for dtype in [DType::F32, DType::BF16] {
        let (y0, g0) = input_grad(false, dtype);
        let (y1, g1) = input_grad(true, dtype);
        assert_eq!(y1.dims(), [2, 3, 24]);
        assert_eq!(g1.dims(), [2, 3, 16]);
        let finite = g1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(finite.iter().all(|v| v.is_finite()), "{dtype:?}");
        assert!(finite.iter().any(|v| *v != 0.0), "{dtype:?}");
        assert!(common::max_abs_diff(&y0, &y1) <= 1e-5, "{dtype:?} forward");
        assert!(common::max_abs_diff(&g0, &g1) <= 1e-5, "{dtype:?} gradient");
    }
}

/// A linear layer in training mode runs its dense f32 base weight on the packed kernels
/// (forward `x·Wᵀ`, backward `∂y·W`): the same values and input gradient as candle's
/// matmul, on ragged shapes (a last panel part full, rows not a multiple of the tile's).
#[test]
fn training_linear_layer_matches_plain_matmul() {
    let w = randn(&[45, 37], 5);
    let layer = LoraLinear::new(Weight::Dense(w.clone()), None, DType::F32).unwrap();
    let x = Var::from_tensor(&randn(&[2, 7, 37], 6)).unwrap();
    let ctx = Ctx {
        train: true,
        ..Ctx::default()
    };
    let y = layer.forward(x.as_tensor(), &ctx).unwrap();
    let gx = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let gx = gx.get(&x).unwrap();
    let plain = x
        .as_tensor()
        .reshape((14, 37))
        .unwrap()
        .matmul(&w.t().unwrap())
        .unwrap()
        .reshape((2, 7, 45))
        .unwrap();
    let g0 = plain.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let g0 = g0.get(&x).unwrap();
    assert_eq!(y.dims(), [2, 7, 45]);
    assert!(common::max_abs_diff(&plain, &y) <= 1e-5, "forward");
    assert!(common::max_abs_diff(g0, gx) <= 1e-5, "gradient");
    // The layer packs once and reuses the panels: a second step gives the same bits.
    let again = layer.forward(x.as_tensor(), &ctx).unwrap();
    assert_eq!(common::max_abs_diff(&y, &again), 0.0);
}

#[test]
fn frozen_weight_gets_no_gradient() {
    let x = Var::from_tensor(&randn(&[4, 8], 3)).unwrap();
    let w = Var::from_tensor(&randn(&[5, 8], 4)).unwrap();
    let loss = frozen_matmul_t(x.as_tensor(), w.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&x).is_some());
    assert!(grads.get(&w).is_none());
}

fn masked(seed: u64, calls: usize) -> Vec<f32> {
    let d = SeededDropout::new(seed);
    let x = Tensor::ones((64, 64), DType::F32, &Device::Cpu).unwrap();
    let mut last = None;
    for _ in 0..calls {
        last = Some(d.apply(&x, 0.25).unwrap());
    }
    last.unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn seeded_dropout_is_deterministic_per_seed_and_call() {
    let a = masked(11, 1);
    assert_eq!(a, masked(11, 1));
    assert_ne!(a, masked(12, 1));
    assert_ne!(a, masked(11, 2));
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
    assert!((dropped - 0.25).abs() < 0.03, "dropped {dropped}");
}

/// Every fused op against its composite twin, forward values and input gradients, with
/// rows longer than a CUDA block (the same check `datm check-kernels` runs on a GPU).
#[test]
fn fused_ops_match_their_composite_twins() {
    let checks = fused_check::run(&Device::Cpu, DType::F32).unwrap();
    assert_eq!(checks.len(), 8);
    for c in &checks {
        assert!(c.passed(), "{c:?}");
    }
}

/// The check fails an op that is off: RoPE with the tables swapped.
#[test]
fn the_fused_op_check_catches_a_wrong_op() {
    let cos = fused_check::sample(&[2, 5, 4], 1, DType::F32, &Device::Cpu).unwrap();
    let sin = fused_check::sample(&[2, 5, 4], 2, DType::F32, &Device::Cpu).unwrap();
    let x = fused_check::sample(&[2, 3, 5, 8], 3, DType::F32, &Device::Cpu).unwrap();
    let c = fused_check::compare(
        "rope",
        &x,
        |x| Ok(rope(x, &sin, &cos)?),
        |x| datm_model::nn::composite_rope(x, &cos, &sin),
    )
    .unwrap();
    assert!(
        !c.passed() && c.value_error > 0.1 && c.gradient_error > 0.1,
        "{c:?}"
    );
}
