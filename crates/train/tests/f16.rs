//! f16 training with dynamic loss scaling (`--dtype f16`): f16 base weights and activations,
//! f32 LoRA weights and optimizer moments, the loss scaled as PyTorch's GradScaler does.

mod support;

use candle_core::{DType, Device};
use datm_train::batching::Step;
use datm_train::optim::{AdamW, AdamWConfig, InverseSqrtSchedule, LossScaler};
use datm_train::trainer::{MicroBatch, ADAPTER_NAME};

/// The scaler's state machine: halve and skip on overflow, double after 2000 finite steps.
#[test]
fn loss_scaler_follows_grad_scaler() {
    let mut s = LossScaler::default();
    assert_eq!(s.scale, 65536.0);
    assert!(!s.update(false));
    assert_eq!((s.scale, s.skipped, s.good_steps), (32768.0, 1, 0));
    for _ in 0..1999 {
        assert!(s.update(true));
    }
    assert_eq!((s.scale, s.good_steps), (32768.0, 1999));
    assert!(s.update(true));
    assert_eq!((s.scale, s.good_steps, s.skipped), (65536.0, 0, 1));
}

/// A step whose scaled gradients overflow f16 changes nothing but the scale; a step at a
/// scale that fits updates the adapter with the unscaled gradients, which agree with f32
/// training of the same f16-rounded model to f16 precision.
#[test]
fn an_overflowing_step_is_skipped_and_the_next_one_trains() {
    let (model, seqs) = support::load_as("llama", DType::F16, |_| {});
    let vars = model.lora_vars(ADAPTER_NAME);
    let before: Vec<Vec<f32>> = vars
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let runner = support::runner(&model, &vars, &seqs, false);
    let n_items: usize = seqs.iter().map(|s| s.target_len()).sum();
    let step = Step {
        epoch: 0,
        micro_batches: vec![vec![0, 1], vec![2, 3]],
        target_tokens: n_items,
    };
    let schedule = InverseSqrtSchedule::new(2e-3, 0.0, 10);
    let mut opt = AdamW::new(AdamWConfig::default(), &vars).unwrap();
    let mut scaler = LossScaler {
        scale: 2f64.powi(60),
        ..LossScaler::default()
    };
    let rec = runner
        .run(&step, 0, &schedule, 1.0, &mut opt, Some(&mut scaler))
        .unwrap();
    assert!(rec.skipped && !rec.grad_norm.is_finite(), "{rec:?}");
    assert_eq!((scaler.scale, scaler.skipped), (2f64.powi(59), 1));
    for ((_, v), b) in vars.iter().zip(&before) {
        assert_eq!(
            &v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            b
        );
    }
    // At a scale that fits, the step trains, with the schedule's first learning rate.
    scaler.scale = 1024.0;
    let rec = runner
        .run(&step, 1, &schedule, 1.0, &mut opt, Some(&mut scaler))
        .unwrap();
    assert!(!rec.skipped && rec.grad_norm.is_finite(), "{rec:?}");
    assert_eq!(rec.loss_scale, Some(1024.0));
    assert_eq!(rec.lr, schedule.lr(0));
    let moved = vars.iter().zip(&before).any(|((_, v), b)| {
        &v.as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            != b
    });
    assert!(moved, "the step changed nothing");
}

/// Loss and gradients of the fixture batch in `dtype`, the loss scaled by `scale` and the
/// gradients unscaled, flattened into one vector.
fn gradients(dtype: DType, scale: f64) -> (f64, Vec<f32>) {
    let (model, seqs) = support::load_as("llama", dtype, |_| {});
    let vars = model.lora_vars(ADAPTER_NAME);
    let runner = support::runner(&model, &vars, &seqs, false);
    let n_items: usize = seqs.iter().map(|s| s.target_len()).sum();
    let mb = MicroBatch::new(&seqs, &[0, 1, 2, 3], &Device::Cpu).unwrap();
    let (loss, store) = runner.gradients(&mb, 0, n_items as f64 / scale).unwrap();
    let mut flat = Vec::new();
    for (name, v) in &vars {
        let g = store
            .get(v)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_eq!(g.dtype(), DType::F32, "{name}");
        let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        flat.extend(g.iter().map(|x| (*x as f64 / scale) as f32));
    }
    (loss / n_items as f64, flat)
}

/// f16 training computes what f32 training does, to f16 precision: the same loss to 1%, and
/// gradients pointing the same way.
#[test]
fn f16_gradients_track_f32() {
    let (loss32, g32) = gradients(DType::F32, 1.0);
    let (loss16, g16) = gradients(DType::F16, 1024.0);
    assert!(
        (loss16 - loss32).abs() <= 1e-2 * loss32,
        "{loss16} vs {loss32}"
    );
    let dot: f64 = g32
        .iter()
        .zip(&g16)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    let norm = |g: &[f32]| g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&g32) * norm(&g16));
    eprintln!("f16 vs f32: loss {loss16} vs {loss32}, gradient cosine {cosine}");
    assert!(cosine > 0.999, "cosine {cosine}");
}
