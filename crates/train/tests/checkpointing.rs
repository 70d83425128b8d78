//! Activation checkpointing (`--gradient-checkpointing`) keeps the training path's loss and
//! gradients with LoRA dropout on: each layer, run again in backward, must draw the masks of
//! its first run. On both fixture architectures, with nonzero B factors so that every
//! factor gets a gradient.

mod support;

use candle_core::{Device, Tensor};
use datm_train::trainer::{MicroBatch, ADAPTER_NAME};

/// Loss and gradients (flattened, in variable order) of the fixture batch as one
/// micro-batch, with LoRA dropout `p`.
fn gradients(arch: &str, p: f64, checkpointing: bool) -> (f64, Vec<Vec<f32>>) {
    let (model, seqs) = support::load(arch, |a| a.config.lora_dropout = p);
    let vars = model.lora_vars(ADAPTER_NAME);
    for (name, v) in &vars {
        if name.ends_with("lora_B.weight") {
            let n = v.elem_count();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 500.0)
                .collect();
            v.set(&Tensor::from_vec(b, v.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let runner = support::runner(&model, &vars, &seqs, checkpointing);
    let mb = MicroBatch::new(&seqs, &[0, 1, 2, 3], &Device::Cpu).unwrap();
    let (loss, store) = runner.gradients(&mb, 11, 1.0).unwrap();
    let grads = vars
        .iter()
        .map(|(name, v)| {
            let g = store
                .get(v)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
        .collect();
    (loss, grads)
}

/// The largest difference between two gradient sets over the largest gradient.
fn relative_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let (mut diff, mut scale) = (0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (u, v) in x.iter().zip(y) {
            diff = diff.max((u - v).abs());
            scale = scale.max(v.abs());
        }
    }
    diff / scale
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones_with_dropout() {
    for arch in ["llama", "gemma3"] {
        let (loss, plain) = gradients(arch, 0.1, false);
        let (ck_loss, checkpointed) = gradients(arch, 0.1, true);
        assert_eq!(loss, ck_loss, "{arch}: the forward passes differ");
        let rel = relative_difference(&checkpointed, &plain);
        eprintln!("{arch}: checkpointed gradients within {rel:e} of the plain ones");
        assert!(rel <= 1e-6, "{arch}: gradients differ by {rel:e}");
        assert!(plain.iter().flatten().all(|g| g.is_finite()));
        // Dropout was on: without it the gradients are others.
        let (_, undropped) = gradients(arch, 0.0, true);
        assert!(
            relative_difference(&undropped, &plain) > 1e-3,
            "{arch}: dropout changed nothing"
        );
    }
}
