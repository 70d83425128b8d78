//! The fixture loader and PEFT parity check shared by `peft_parity.rs` (datm's CPU fast
//! paths), `composite_parity.rs` (the composite, device-generic path) and `checkpointing.rs`: datm's loss, gradients and
//! AdamW steps against PyTorch + PEFT on tiny LLaMA and Gemma-3 models (`tests/fixtures/train/{llama,gemma3}`, made by `tools/make_train_fixtures.py`):
//! three optimizer steps over one batch of four sequences in two micro-batches, with clipping
//! and the inverse-sqrt warm-up.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use datm_adapter::Adapter;
use datm_model::{LoadOptions, Model};
use datm_train::batching::Step;
use datm_train::optim::{AdamW, AdamWConfig, InverseSqrtSchedule};
use datm_train::sequences::Sequence;
use datm_train::trainer::{MicroBatch, StepRunner, ADAPTER_NAME};
use serde_json::Value;

fn dir(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/train")
        .join(arch)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rel_close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(1e-6)
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Adapter after AdamW steps: every element within `tol` × the tensor's largest value, except
/// elements whose step-1 gradient is below 1e-5 of the tensor's largest gradient. Their sign is
/// float noise in any implementation (f32 rounding order), and Adam turns any sign into a step of
/// about ±lr, so they may differ by up to `lr_sum` (the sum of the learning rates used).
/// Returns how many elements needed that allowance.
fn assert_adapter_close(
    vars: &[(String, candle_core::Var)],
    file: &Path,
    grads1: &std::collections::HashMap<String, Tensor>,
    tol: f64,
    lr_sum: f64,
    what: &str,
) -> usize {
    let want = candle_core::safetensors::load(file, &Device::Cpu).unwrap();
    assert_eq!(want.len(), vars.len(), "{what}: tensor count");
    let mut relaxed = 0;
    for (name, v) in vars {
        let w = to_vec(
            want.get(name)
                .unwrap_or_else(|| panic!("{what}: fixture lacks {name}")),
        );
        let g = to_vec(&grads1[name]);
        let (scale, gmax) = (
            w.iter().fold(0f64, |m, x| m.max(x.abs())),
            g.iter().fold(0f64, |m, x| m.max(x.abs())),
        );
        for (i, (a, b)) in to_vec(v.as_tensor()).iter().zip(&w).enumerate() {
            let err = (a - b).abs();
            if err <= tol * scale {
                continue;
            }
            assert!(
                g[i].abs() < 1e-5 * gmax && err <= lr_sum,
                "{what} {name}[{i}]: {a} vs {b} (grad {})",
                g[i]
            );
            relaxed += 1;
        }
    }
    relaxed
}

/// `got` within `tol` × `want`'s largest magnitude of `want`, element by element.
pub fn assert_tensor_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    let (g, w) = (to_vec(got), to_vec(want));
    let scale = w.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-12);
    let err = g
        .iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    if std::env::var("PARITY_VERBOSE").is_ok() {
        eprintln!("{what}: rel {:e}", err / scale);
    }
    assert!(
        err / scale <= tol,
        "{what}: max abs error {err:e} vs scale {scale:e}"
    );
}

/// `arch`'s fixture model with its initial adapter active (its PEFT configuration changed by
/// `edit` first) and the fixture batch's four sequences.
pub fn load(arch: &str, edit: impl FnOnce(&mut Adapter)) -> (Model, Vec<Sequence>) {
    load_as(arch, DType::F32, edit)
}

/// Like [`load`], with the base weights in `dtype`.
pub fn load_as(
    arch: &str,
    dtype: DType,
    edit: impl FnOnce(&mut Adapter),
) -> (Model, Vec<Sequence>) {
    let d = dir(arch);
    let mut model = Model::load(
        &d.join("model"),
        &LoadOptions {
            quantized: false,
            keep_int_blocks: false,
            dtype: Some(dtype),
            ..Default::default()
        },
    )
    .unwrap();
    let mut adapter = Adapter::load(&d.join("adapter_init")).unwrap();
    edit(&mut adapter);
    model.attach_adapter(ADAPTER_NAME, &adapter).unwrap();
    model.set_active_adapter(Some(ADAPTER_NAME)).unwrap();
    let batch = json(&d.join("batch.json"));
    let prompt_lens = batch["prompt_lens"].as_array().unwrap();
    let seqs: Vec<Sequence> = batch["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .zip(prompt_lens)
        .map(|(s, p)| Sequence {
            ids: s
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
            prompt_len: p.as_u64().unwrap() as usize,
            direction: "de-en".parse().unwrap(),
        })
        .collect();
    (model, seqs)
}

/// The trainer's step runner over `seqs` with seed 0.
pub fn runner<'a>(
    model: &'a Model,
    vars: &'a [(String, candle_core::Var)],
    seqs: &'a [Sequence],
    checkpointing: bool,
) -> StepRunner<'a> {
    StepRunner {
        model,
        vars,
        seqs,
        seed: 0,
        checkpointing,
    }
}

/// The step-1 loss (mean over the `n_items` target tokens) and gradients of the runner's
/// variables over the fixture batch's two micro-batches, summed.
pub fn step1_gradients(runner: &StepRunner<'_>, n_items: usize) -> (f64, Vec<Tensor>) {
    let mut grads: Vec<Option<Tensor>> = vec![None; runner.vars.len()];
    let mut loss = 0.0;
    for rows in [[0usize, 1], [2, 3]] {
        let mb = MicroBatch::new(runner.seqs, &rows, &Device::Cpu).unwrap();
        let (sum, store) = runner.gradients(&mb, 0, n_items as f64).unwrap();
        loss += sum / n_items as f64;
        for ((_, v), acc) in runner.vars.iter().zip(grads.iter_mut()) {
            let g = store.get(v).unwrap().clone();
            *acc = Some(match acc.take() {
                Some(a) => (a + g).unwrap(),
                None => g,
            });
        }
    }
    (loss, grads.into_iter().map(Option::unwrap).collect())
}

/// PyTorch + PEFT's step-1 gradients on `arch`'s fixture (f32), by variable name.
pub fn expected_gradients(arch: &str) -> std::collections::HashMap<String, Tensor> {
    let file = dir(arch).join("grads_step1.safetensors");
    candle_core::safetensors::load(file, &Device::Cpu).unwrap()
}

/// PyTorch + PEFT's step-1 loss on `arch`'s fixture (f32).
pub fn expected_step1_loss(arch: &str) -> f64 {
    json(&dir(arch).join("expected.json"))["steps"][0]["loss"]
        .as_f64()
        .unwrap()
}

/// Trains `arch`'s fixture as PyTorch + PEFT did and checks every step against it, with
/// activation checkpointing when `checkpointing`.
pub fn parity(arch: &str, checkpointing: bool) {
    let d = dir(arch);
    let batch = json(&d.join("batch.json"));
    let expected = json(&d.join("expected.json"));
    let (model, seqs) = load(arch, |_| {});
    let vars = model.lora_vars(ADAPTER_NAME);
    let n_items: usize = seqs.iter().map(Sequence::target_len).sum();
    assert_eq!(
        n_items as u64,
        expected["num_items_in_batch"].as_u64().unwrap()
    );

    // Step-1 gradients, tensor by tensor, through the trainer's step runner.
    let runner = runner(&model, &vars, &seqs, checkpointing);
    let (_, grads) = step1_gradients(&runner, n_items);
    let want_grads = expected_gradients(arch);
    for ((name, _), g) in vars.iter().zip(&grads) {
        assert_tensor_close(g, &want_grads[name], 1e-4, &format!("{arch} grad {name}"));
    }

    // Three optimizer steps through the trainer's step runner.
    let total = batch["total_steps"].as_u64().unwrap() as usize;
    let schedule = InverseSqrtSchedule::new(
        batch["lr"].as_f64().unwrap(),
        batch["warmup_ratio"].as_f64().unwrap(),
        total,
    );
    let mut opt = AdamW::new(AdamWConfig::default(), &vars).unwrap();
    let (mut lr_sum, mut relaxed, mut elements) = (0.0, 0, 0);
    let step = Step {
        epoch: 0,
        micro_batches: vec![vec![0, 1], vec![2, 3]],
        target_tokens: n_items,
    };
    for (i, want) in expected["steps"].as_array().unwrap().iter().enumerate() {
        let rec = runner
            .run(
                &step,
                i,
                &schedule,
                batch["max_grad_norm"].as_f64().unwrap(),
                &mut opt,
                None,
            )
            .unwrap();
        let (wl, wn, wlr) = (
            want["loss"].as_f64().unwrap(),
            want["grad_norm"].as_f64().unwrap(),
            want["lr"].as_f64().unwrap(),
        );
        assert!(
            rel_close(rec.loss, wl, 1e-4),
            "{arch} step {}: loss {} vs {wl}",
            i + 1,
            rec.loss
        );
        assert!(
            rel_close(rec.grad_norm, wn, 1e-4),
            "{arch} step {}: grad norm {} vs {wn}",
            i + 1,
            rec.grad_norm
        );
        assert!(
            rel_close(rec.lr, wlr, 1e-12) || wlr == rec.lr,
            "{arch} step {}: lr",
            i + 1
        );
        lr_sum += rec.lr;
        if i == 0 || i == 2 {
            let file = d.join(format!("adapter_step{}.safetensors", i + 1));
            let what = format!("{arch} adapter after step {}", i + 1);
            relaxed += assert_adapter_close(&vars, &file, &want_grads, 1e-4, lr_sum, &what);
            elements += vars.iter().map(|(_, v)| v.elem_count()).sum::<usize>();
        }
    }
    // The allowance is for isolated elements, not a loophole.
    assert!(
        relaxed * 1000 <= elements,
        "{arch}: {relaxed} of {elements} elements needed the noise allowance"
    );
}
