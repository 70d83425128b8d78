//! The LM head and the cross-entropy as one op on the CPU's packed kernels
//! (`head_cross_entropy_sum`) give the bits of the head's logits followed by the loss op:
//! the same loss and the same gradient of the hidden states, in f32 and in bf16 mixed
//! precision, on the tiny LLaMA (untied head) and Gemma-3 (tied) fixtures.

mod support;

use candle_core::{Device, Tensor, Var};
use datm_model::kernels::Precision;
use datm_train::loss::{cross_entropy_sum, head_cross_entropy_sum};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn fused_head_loss_has_the_bits_of_logits_then_loss() {
    for arch in ["llama", "gemma3"] {
        for precision in [Precision::F32, Precision::Bf16] {
            let (mut model, _) = support::load(arch, |_| {});
            model.set_frozen_precision(precision);
            assert!(model.lm_head_product().unwrap().is_some(), "{arch}");
            let (vocab, dim) = (model.config().vocab_size, model.config().hidden_size);
            let hidden = Tensor::randn(0f32, 1.0, (7, dim), &Device::Cpu).unwrap();
            let hidden = Var::from_tensor(&hidden).unwrap();
            let targets: Vec<u32> = (0..7).map(|i| (i * 37 % vocab) as u32).collect();
            let fused = head_cross_entropy_sum(&model, hidden.as_tensor(), &targets).unwrap();
            let logits = model.lm_logits(hidden.as_tensor()).unwrap();
            let plain = cross_entropy_sum(&logits, &targets).unwrap();
            let label = format!("{arch} {precision:?}");
            assert_eq!(values(&fused), values(&plain), "{label}: loss");
            let grad = |loss: &Tensor| {
                let g = (loss * 0.37).unwrap().backward().unwrap();
                values(g.get(&hidden).unwrap())
            };
            assert_eq!(grad(&fused), grad(&plain), "{label}: gradient");
            // Twice in a row (the logits buffer is reused), and with bad targets refused.
            let again = head_cross_entropy_sum(&model, hidden.as_tensor(), &targets).unwrap();
            assert_eq!(grad(&again), grad(&plain), "{label}: second pass");
            let mut bad = targets.clone();
            bad[3] = vocab as u32;
            let err = head_cross_entropy_sum(&model, hidden.as_tensor(), &bad).unwrap_err();
            assert!(err.to_string().contains("outside the vocabulary"), "{err}");
        }
    }
}
