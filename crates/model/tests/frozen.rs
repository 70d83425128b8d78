//! The frozen-weight matmul gives the same input gradient as a plain matmul, and seeded
//! dropout masks depend on the seed alone.

use candle_core::{DType, Device, Tensor, Var};
use datm_model::lora::{frozen_matmul_t, SeededDropout};

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

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
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
        assert!(max_abs_diff(&y0, &y1) <= 1e-5, "{dtype:?} forward");
        assert!(max_abs_diff(&g0, &g1) <= 1e-5, "{dtype:?} gradient");
    }
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
