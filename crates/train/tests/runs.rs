//! Whole training runs on the tiny LLaMA fixture (character tokenizer): resume after `kill -9`
//! gives a bit-identical adapter, outputs are complete, and bad input fails before training.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use datm_train::metrics::{EvalRecord, StepRecord};
use datm_train::{train, Progress, Silent, TrainConfig};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/train")
}

fn config(out: &Path) -> TrainConfig {
    let f = fixtures();
    let mut c = TrainConfig::new(
        f.join("llama/model"),
        f.join("data/train.de-en.jsonl"),
        vec!["de-en".parse().unwrap(), "en-de".parse().unwrap()],
        out.to_path_buf(),
    );
    c.batch.batch_size = 6;
    c.batch.micro_batch_size = 2;
    c.batch.max_steps = Some(8);
    c.batch.seed = 7;
    c.lora.rank = 4;
    c.lora.alpha = 8.0;
    // LoRA dropout stays at its default (0.05): masks derive from the seed and step, so a
    // resumed run redraws them exactly.
    c.warmup_ratio = 0.2;
    c.save_steps = 1;
    c.keep_checkpoints = 2;
    c
}

/// Sleeps after every step so that the parent can kill the process mid-run.
struct Slow;
impl Progress for Slow {
    fn start(&mut self, _: usize, _: usize) {}
    fn step(&mut self, _: &StepRecord, _: usize) {
        std::thread::sleep(Duration::from_millis(300));
    }
    fn eval(&mut self, _: &EvalRecord) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// Entry point of the child process in `killed_run_resumes_bit_identically`; does nothing
/// when run as a normal test.
#[test]
fn child_training_process() {
    if let Ok(out) = std::env::var("DATM_TRAIN_TEST_CHILD_OUT") {
        train(&config(Path::new(&out)), &mut Slow).unwrap();
    }
}

fn losses(out: &Path) -> Vec<(usize, f64)> {
    std::fs::read_to_string(out.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let r: StepRecord = serde_json::from_str(l).unwrap();
            (r.step, r.loss)
        })
        .collect()
}

#[test]
fn killed_run_resumes_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let done = train(&config(&whole), &mut Silent).unwrap();
    assert_eq!(done.steps, 8);
    assert_eq!(done.resumed_from, None);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_training_process", "--nocapture"])
        .env("DATM_TRAIN_TEST_CHILD_OUT", &killed)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !killed.join("checkpoint-3").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "child made no checkpoint"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "child ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !killed.join("adapter_model.safetensors").exists(),
        "the child finished before the kill"
    );

    let mut cfg = config(&killed);
    cfg.resume = true;
    let resumed = train(&cfg, &mut Silent).unwrap();
    assert!(
        resumed.resumed_from.is_some_and(|s| (3..8).contains(&s)),
        "{:?}",
        resumed.resumed_from
    );
    let a = std::fs::read(whole.join("adapter_model.safetensors")).unwrap();
    let b = std::fs::read(killed.join("adapter_model.safetensors")).unwrap();
    assert!(a == b, "resumed adapter differs from the uninterrupted one");
    assert_eq!(losses(&whole), losses(&killed));
    assert_eq!(done.metrics.tokens, resumed.metrics.tokens);
}

#[test]
fn outputs_are_a_peft_adapter_with_summary_and_pruned_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut cfg = config(&out);
    cfg.data = fixtures().join("data/alma");
    cfg.eval_steps = 4;
    let done = train(&cfg, &mut Silent).unwrap();
    let adapter = datm_adapter::Adapter::load(&out).unwrap();
    assert_eq!(adapter.config.r, 4);
    assert_eq!(adapter.modules.len(), 2 * 7);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(summary["data_fingerprint"], done.data_fingerprint.as_str());
    assert_eq!(summary["config"]["lr"], 2e-3);
    assert_eq!(summary["sequences"], 40); // 20 train pairs × 2 directions
    let evals = summary["metrics"]["evals"].as_array().unwrap();
    assert_eq!(
        evals
            .iter()
            .map(|e| e["step"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 8]
    );
    let ckpts = datm_train::checkpoint::list(&out).unwrap();
    assert_eq!(ckpts.iter().map(|c| c.0).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(losses(&out).len(), 8);
    let first = done.metrics.first_loss.unwrap();
    assert!(
        done.metrics.last_loss.unwrap() < first,
        "loss did not fall: {:?}",
        done.metrics
    );
}

#[test]
fn resume_refuses_other_settings_and_fresh_runs_refuse_used_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut cfg = config(&out);
    cfg.batch.max_steps = Some(2);
    train(&cfg, &mut Silent).unwrap();
    let err = train(&cfg, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("pass --resume"), "{err}");
    cfg.resume = true;
    cfg.lr = 1e-3;
    let err = format!("{:#}", train(&cfg, &mut Silent).unwrap_err());
    assert!(err.contains("other settings or data"), "{err}");
}

#[test]
fn bad_data_fails_before_the_model_is_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp.path().join("run"));
    cfg.model = tmp.path().join("no-such-model");
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    cfg.data = empty;
    let err = format!("{:#}", train(&cfg, &mut Silent).unwrap_err());
    assert!(err.contains("empty"), "{err}");

    cfg.data = fixtures().join("data/alma");
    cfg.directions = vec!["fr-en".parse().unwrap()];
    let err = format!("{:#}", train(&cfg, &mut Silent).unwrap_err());
    assert!(err.contains("no training pairs for fr-en"), "{err}");
}

#[test]
fn too_small_source_limit_is_reported_with_the_example() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp.path().join("run"));
    cfg.limits.max_source_length = 8;
    let err = format!("{:#}", train(&cfg, &mut Silent).unwrap_err());
    assert!(
        err.contains("training example 1") && err.contains("cannot hold"),
        "{err}"
    );
}

/// bf16 and f16 base weights train an f32 adapter; f16 steps log their loss scale, and a
/// resumed f16 run continues with the scaler's state.
#[test]
fn half_precision_bases_train_f32_adapters() {
    use datm_train::Precision;
    let tmp = tempfile::tempdir().unwrap();
    for precision in [Precision::Bf16, Precision::F16] {
        let mut cfg = config(&tmp.path().join(format!("{precision:?}")));
        cfg.precision = precision;
        let done = train(&cfg, &mut Silent).unwrap();
        let (first, last) = (
            done.metrics.first_loss.unwrap(),
            done.metrics.last_loss.unwrap(),
        );
        assert!(
            last < first,
            "{precision:?} loss did not fall: {first} -> {last}"
        );
        let adapter = datm_adapter::Adapter::load(&cfg.out).unwrap();
        let a = &adapter.modules.values().next().unwrap().a;
        assert_eq!(a.dtype(), candle_core::DType::F32);
        let log = std::fs::read_to_string(cfg.out.join("train_log.jsonl")).unwrap();
        assert_eq!(
            log.lines().all(|l| l.contains("\"loss_scale\":65536")),
            precision == Precision::F16,
            "{log}"
        );
        let (_, ck) = datm_train::checkpoint::list(&cfg.out)
            .unwrap()
            .pop()
            .unwrap();
        let state = std::fs::read_to_string(ck.join("trainer_state.json")).unwrap();
        assert_eq!(
            state.contains("loss_scaler"),
            precision == Precision::F16,
            "{state}"
        );
    }
}

#[test]
fn dropout_is_applied_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = |name: &str, dropout: f64| {
        let mut cfg = config(&tmp.path().join(name));
        cfg.batch.max_steps = Some(2);
        cfg.save_steps = 0;
        cfg.lora.dropout = dropout;
        train(&cfg, &mut Silent).unwrap();
        std::fs::read(cfg.out.join("adapter_model.safetensors")).unwrap()
    };
    let a = adapter("a", 0.05);
    assert!(
        a == adapter("b", 0.05),
        "equal seeds gave different adapters"
    );
    assert!(a != adapter("c", 0.0), "dropout changed nothing");
}

/// A whole run with activation checkpointing (dropout on, several micro-batches) saves the
/// adapter of the same run without it, bit for bit; a run started without it resumes with it.
#[test]
fn checkpointed_run_saves_the_same_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(name);
    let mut cfg = config(&out("plain"));
    cfg.batch.max_steps = Some(3);
    train(&cfg, &mut Silent).unwrap();
    cfg.gradient_checkpointing = true;
    cfg.out = out("checkpointed");
    train(&cfg, &mut Silent).unwrap();
    // The plain run cut after step 2, resumed with checkpointing.
    cfg.out = out("resumed");
    cfg.resume = true;
    std::fs::create_dir(&cfg.out).unwrap();
    for f in ["checkpoint-2", "train_log.jsonl"] {
        let to = cfg.out.join(f);
        let from = out("plain").join(f);
        if from.is_dir() {
            std::fs::create_dir(&to).unwrap();
            for e in std::fs::read_dir(&from).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        } else {
            std::fs::copy(from, to).unwrap();
        }
    }
    assert_eq!(train(&cfg, &mut Silent).unwrap().resumed_from, Some(2));
    let adapter = |run: &str| std::fs::read(out(run).join("adapter_model.safetensors")).unwrap();
    for run in ["checkpointed", "resumed"] {
        assert!(adapter(run) == adapter("plain"), "{run}: another adapter");
        assert_eq!(losses(&out(run)), losses(&out("plain")), "{run}");
    }
}

/// An f16 forward pass that overflows stops the run with a clear error: loss scaling cannot
/// help it.
#[test]
fn f16_overflow_in_the_forward_pass_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let init = tmp.path().join("huge");
    let mut cfg = config(&tmp.path().join("f16"));
    cfg.batch.max_steps = Some(1);
    let plain = train(&cfg, &mut Silent).unwrap();
    assert!(plain.metrics.last_loss.unwrap().is_finite());
    // An adapter whose deltas exceed f16's range (65504) but not f32's.
    let mut adapter = datm_adapter::Adapter::load(&cfg.out).unwrap();
    for pair in adapter.modules.values_mut() {
        pair.b = (pair.b.ones_like().unwrap() * 1e4).unwrap();
        pair.a = (pair.a.ones_like().unwrap() * 1e2).unwrap();
    }
    adapter.save(&init).unwrap();
    cfg.init_adapter = Some(init);
    cfg.precision = datm_train::Precision::F16;
    cfg.out = tmp.path().join("f16-huge");
    let err = format!("{:#}", train(&cfg, &mut Silent).unwrap_err());
    assert!(
        err.contains("step 1: the loss is not finite in f16") && err.contains("--dtype bf16"),
        "{err}"
    );
}
