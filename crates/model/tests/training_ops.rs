//! The ops of the training path: the frozen-weight matmuls (candle's, and the packed kernels
//! a training linear layer runs) give the same input gradient as a plain matmul, seeded dropout masks depend on the seed alone, and the fused f32 ops
//! (`datm_model::fused`) give the values and input gradients of the composite candle ops
//! they replace.

mod common;

use candle_core::{DType, Device, Tensor, Var, D};
use datm_model::fused::{gated, rms_norm, rope, softmax_last_dim};
use datm_model::lora::{frozen_matmul_t, Ctx, LoraLinear, SeededDropout};
use datm_model::nn::Activation;
use datm_model::weights::Weight;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    // A small LCG keeps the test inputs fixed without another RNG dependency.
    let mut s = seed;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Like [`randn`], spread over [-2, 2).
fn wide(shape: &[usize], seed: u64) -> Tensor {
    (randn(shape, seed) * 4.0).unwrap()
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

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    common::max_abs_diff(a, b) / common::max_abs(b).max(1e-12)
}

/// Value and input gradient (of `Σ y ∘ probe`) of a unary function.
fn value_and_grad(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, probe: &Tensor) -> (Tensor, Tensor) {
    let v = Var::from_tensor(x).unwrap();
    let y = f(v.as_tensor());
    let grads = (&y * probe).unwrap().sum_all().unwrap().backward().unwrap();
    (y, grads.get(v.as_tensor()).unwrap().clone())
}

fn check(
    fused: impl Fn(&Tensor) -> Tensor,
    reference: impl Fn(&Tensor) -> Tensor,
    shape: &[usize],
) {
    let x = wide(shape, 1);
    let probe = wide(shape, 2);
    let (y1, g1) = value_and_grad(fused, &x, &probe);
    let (y2, g2) = value_and_grad(reference, &x, &probe);
    assert!(max_rel(&y1, &y2) < 1e-6, "value {}", max_rel(&y1, &y2));
    assert!(max_rel(&g1, &g2) < 1e-5, "gradient {}", max_rel(&g1, &g2));
}

#[test]
fn rms_norm_matches_the_composite_formula() {
    let w = wide(&[48], 3);
    let reference = |x: &Tensor| {
        let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        x.broadcast_div(&(ms + 1e-6).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
    };
    check(|x| rms_norm(x, &w, 1e-6).unwrap(), reference, &[3, 5, 48]);
}

#[test]
fn gated_activations_match_candle() {
    let up = wide(&[4, 6, 40], 4);
    for act in [Activation::Silu, Activation::GeluTanh] {
        let reference = |g: &Tensor| {
            let a = match act {
                Activation::Silu => candle_nn::ops::silu(g).unwrap(),
                Activation::GeluTanh => g.gelu().unwrap(),
            };
            (a * &up).unwrap()
        };
        check(|g| gated(g, &up, act).unwrap(), reference, &[4, 6, 40]);
        // and the gradient with respect to `up`
        let g = wide(&[4, 6, 40], 5);
        let a = reference(&g).div(&up).unwrap();
        check(
            |u| gated(&g, u, act).unwrap(),
            |u| (&a * u).unwrap(),
            &[4, 6, 40],
        );
    }
}

#[test]
fn rope_matches_the_rotate_half_formula() {
    let (rows, heads, q, d) = (2, 3, 5, 8);
    let cos = wide(&[rows, q, d / 2], 6);
    let sin = wide(&[rows, q, d / 2], 7);
    let reference = |x: &Tensor| {
        let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
        let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
        let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
        let full = |t: &Tensor| {
            Tensor::cat(&[t, t], D::Minus1)
                .unwrap()
                .unsqueeze(1)
                .unwrap()
        };
        (x.broadcast_mul(&full(&cos)).unwrap() + rotated.broadcast_mul(&full(&sin)).unwrap())
            .unwrap()
    };
    check(
        |x| rope(x, &cos, &sin).unwrap(),
        reference,
        &[rows, heads, q, d],
    );
}

#[test]
fn softmax_matches_candle() {
    check(
        |x| softmax_last_dim(x).unwrap(),
        |x| candle_nn::ops::softmax(x, D::Minus1).unwrap(),
        &[2, 3, 7, 9],
    );
}
