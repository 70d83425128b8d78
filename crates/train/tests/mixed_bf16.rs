//! bf16 mixed precision on the CPU (`--dtype bf16`): an f32 model whose frozen layers
//! multiply bf16-rounded operands with f32 sums, as PyTorch's bf16 autocast does. On the
//! tiny fixtures its step-1 loss and gradients agree with PyTorch + PEFT's f32 ones to bf16's
//! precision, and differ from datm's own f32 ones: the products do run in bf16. Activation
//! checkpointing gives the same bits.

mod support;

use candle_core::{DType, Tensor};
use datm_model::kernels::Precision;
use datm_train::sequences::Sequence;
use datm_train::trainer::ADAPTER_NAME;

/// Step-1 loss and gradients (by name) of `arch`'s fixture, its frozen layers in `precision`,
/// with activation checkpointing if `checkpointing`.
fn step1(arch: &str, precision: Precision, checkpointing: bool) -> (f64, Vec<(String, Tensor)>) {
    let (mut model, seqs) = support::load(arch, |_| {});
    model.set_frozen_precision(precision);
    let vars = model.lora_vars(ADAPTER_NAME);
    let n_items = seqs.iter().map(Sequence::target_len).sum();
    let runner = support::runner(&model, &vars, &seqs, checkpointing);
    let (loss, grads) = support::step1_gradients(&runner, n_items);
    (
        loss,
        vars.iter().map(|(n, _)| n.clone()).zip(grads).collect(),
    )
}

fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).unwrap().abs().unwrap();
    d.flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn mixed_bf16_agrees_with_f32_to_bf16_precision() {
    for arch in ["llama", "gemma3"] {
        let want = support::expected_gradients(arch);
        let want_loss = support::expected_step1_loss(arch);
        let (loss, mixed) = step1(arch, Precision::Bf16, false);
        let (exact_loss, exact) = step1(arch, Precision::F32, false);
        assert!(
            (loss - want_loss).abs() <= 1e-2 * want_loss,
            "{arch}: loss {loss} vs PyTorch's {want_loss}"
        );
        let mut moved = 0f32;
        for ((name, m), (_, e)) in mixed.iter().zip(&exact) {
            assert_eq!(m.dtype(), DType::F32);
            support::assert_tensor_close(m, &want[name], 6e-2, &format!("{arch} bf16 {name}"));
            moved = moved.max(largest_difference(m, e));
        }
        assert!(
            moved > 0.0 && loss != exact_loss,
            "{arch}: bf16 gave f32's gradients and loss ({loss})"
        );
        // Activation checkpointing recomputes the same products: the same bits.
        let (checkpointed_loss, checkpointed) = step1(arch, Precision::Bf16, true);
        assert_eq!(checkpointed_loss, loss, "{arch}");
        for ((name, c), (_, m)) in checkpointed.iter().zip(&mixed) {
            assert_eq!(largest_difference(c, m), 0.0, "{arch} checkpointed {name}");
        }
    }
}
