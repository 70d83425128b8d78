//! Pool training orchestration with a fake trainer: skipping, resuming, failures,
//! parallelism within a memory budget, Slurm emission.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use datm_lang::{parse_list, Grouping};
use datm_pool::slurm::{submit_script, SlurmJobs};
use datm_pool::train::{
    is_finished, train_pool, AdapterTrainer, PoolTrainOptions, TrainJob, TRAINING_RECORD,
};
use datm_pool::{PoolPlan, Strategy};

/// Writes fake adapter files; fails for ids listed in `fail`; tracks concurrency.
#[derive(Default)]
struct FakeTrainer {
    fail: Vec<String>,
    running: AtomicUsize,
    peak: AtomicUsize,
    calls: Mutex<Vec<String>>,
    memory: u64,
    /// Give each job a training key (its directions), so equal trainings are shared.
    keyed: bool,
    /// Ids whose first attempt fails.
    flaky: Vec<String>,
    /// (id, device) of every call.
    devices: Mutex<Vec<(String, Option<String>)>>,
}

impl AdapterTrainer for FakeTrainer {
    fn train(&self, job: &TrainJob) -> anyhow::Result<()> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let first = !self.calls.lock().unwrap().contains(&job.adapter.id);
        self.calls.lock().unwrap().push(job.adapter.id.clone());
        let device = job.device.clone();
        self.devices
            .lock()
            .unwrap()
            .push((job.adapter.id.clone(), device));
        std::thread::sleep(Duration::from_millis(30));
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.contains(&job.adapter.id) {
            anyhow::bail!("out of memory");
        }
        if first && self.flaky.contains(&job.adapter.id) {
            anyhow::bail!("device lost");
        }
        for f in [
            "adapter_config.json",
            "adapter_model.safetensors",
            TRAINING_RECORD,
        ] {
            std::fs::create_dir_all(&job.out_dir)?;
            std::fs::write(job.out_dir.join(f), "x")?;
        }
        Ok(())
    }
    fn memory_bytes(&self, _job: &TrainJob) -> u64 {
        self.memory
    }
    fn training_key(&self, job: &TrainJob) -> anyhow::Result<Option<String>> {
        let dirs: Vec<String> = job
            .adapter
            .directions
            .iter()
            .map(|d| d.to_string())
            .collect();
        Ok(self.keyed.then(|| dirs.join(",")))
    }
}

fn data_dir(langs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for l in langs {
        std::fs::create_dir_all(dir.path().join(format!("{l}en"))).unwrap();
        let row = format!(r#"[{{"translation":{{"{l}":"a","en":"b"}}}}]"#);
        std::fs::write(dir.path().join(format!("{l}en/train.{l}-en.json")), row).unwrap();
    }
    dir
}

fn dat_plan() -> PoolPlan {
    PoolPlan::build(
        Strategy::Dat,
        &parse_list("de,nl,fr,ru").unwrap(),
        &Grouping::default(),
    )
    .unwrap()
}

#[test]
fn trains_all_then_skips_finished() {
    let data = data_dir(&["de", "nl", "fr", "ru"]);
    let pool = tempfile::tempdir().unwrap();
    let plan = dat_plan();
    let trainer = FakeTrainer::default();
    let opts = PoolTrainOptions {
        jobs: 3,
        ..Default::default()
    };
    let s = train_pool(&plan, pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(s.trained.len(), 7);
    assert!(s.skipped.is_empty());
    assert!(trainer.peak.load(Ordering::SeqCst) >= 2, "ran in parallel");
    assert!(trainer.peak.load(Ordering::SeqCst) <= 3);
    assert!(is_finished(&pool.path().join("en-xx.g1")));

    // an interrupted adapter (no training record) is handed to the trainer again
    std::fs::remove_file(pool.path().join("xx-en.de").join(TRAINING_RECORD)).unwrap();
    let again = FakeTrainer::default();
    let s = train_pool(&plan, pool.path(), data.path(), &again, &opts).unwrap();
    assert_eq!(s.trained, ["xx-en.de"]);
    assert_eq!(s.skipped.len(), 6);
    assert_eq!(*again.calls.lock().unwrap(), ["xx-en.de"]);
}

#[test]
fn equal_trainings_of_two_strategies_train_once() {
    let data = data_dir(&["de", "nl"]);
    let pool = tempfile::tempdir().unwrap();
    let langs = parse_list("de,nl").unwrap();
    let separate = PoolPlan::build(Strategy::Separate, &langs, &Grouping::default()).unwrap();
    let trainer = FakeTrainer {
        keyed: true,
        ..Default::default()
    };
    let opts = PoolTrainOptions::default();
    let s = train_pool(&separate, pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(s.trained.len(), 4);
    // DAT's xx-en.de and xx-en.nl are separate's de-en and nl-en: copied, not trained; its
    // group adapter en-xx.g1 (en-de + en-nl) is new.
    let dat = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
    let s = train_pool(&dat, pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(s.trained, ["en-xx.g1"]);
    let mut reused = s.reused.clone();
    reused.sort();
    assert_eq!(
        reused,
        [
            ("xx-en.de".to_string(), "de-en".to_string()),
            ("xx-en.nl".to_string(), "nl-en".to_string())
        ]
    );
    assert!(is_finished(&pool.path().join("xx-en.de")));
    assert_eq!(trainer.calls.lock().unwrap().len(), 5);
    // Without keys nothing is shared.
    let fresh = tempfile::tempdir().unwrap();
    let plain = FakeTrainer::default();
    train_pool(&separate, fresh.path(), data.path(), &plain, &opts).unwrap();
    let s = train_pool(&dat, fresh.path(), data.path(), &plain, &opts).unwrap();
    assert_eq!((s.trained.len(), s.reused.len()), (3, 0));
}

#[test]
fn one_adapter_per_device_from_one_queue_with_retries() {
    let data = data_dir(&["de", "nl", "fr", "ru"]);
    let pool = tempfile::tempdir().unwrap();
    let trainer = FakeTrainer {
        flaky: vec!["xx-en.fr".into()],
        ..Default::default()
    };
    let opts = PoolTrainOptions {
        jobs: 5,
        devices: vec!["cuda:0".into(), "cuda:1".into()],
        ..Default::default()
    };
    let s = train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(s.trained.len(), 7);
    assert!(
        trainer.peak.load(Ordering::SeqCst) <= 2,
        "one job per device"
    );
    let calls = trainer.devices.lock().unwrap();
    assert_eq!(calls.len(), 8, "seven adapters, xx-en.fr twice: {calls:?}");
    for dev in ["cuda:0", "cuda:1"] {
        assert!(
            calls.iter().any(|(_, d)| d.as_deref() == Some(dev)),
            "{dev} unused"
        );
    }
    assert!(is_finished(&pool.path().join("xx-en.fr")));

    // With no retries the flaky adapter is reported, naming its device; the others finish.
    let pool = tempfile::tempdir().unwrap();
    let trainer = FakeTrainer {
        flaky: vec!["xx-en.fr".into()],
        ..Default::default()
    };
    let opts = PoolTrainOptions { retries: 0, ..opts };
    let err = train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("1 adapter(s) failed") && msg.contains("xx-en.fr (fr-en) on cuda:"),
        "{msg}"
    );
    assert!(msg.contains("1 attempt(s): device lost"), "{msg}");
    assert!(is_finished(&pool.path().join("en-xx.g4")));
}

#[test]
fn memory_budget_limits_concurrency() {
    let data = data_dir(&["de", "nl", "fr", "ru"]);
    let pool = tempfile::tempdir().unwrap();
    let trainer = FakeTrainer {
        memory: 10,
        ..Default::default()
    };
    let opts = PoolTrainOptions {
        jobs: 4,
        memory_budget: Some(25),
        ..Default::default()
    };
    train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(trainer.peak.load(Ordering::SeqCst), 2);
    // a job bigger than the budget still runs, alone
    let pool = tempfile::tempdir().unwrap();
    let big = FakeTrainer {
        memory: 100,
        ..Default::default()
    };
    train_pool(&dat_plan(), pool.path(), data.path(), &big, &opts).unwrap();
    assert_eq!(big.peak.load(Ordering::SeqCst), 1);
}

#[test]
fn failures_are_collected_and_named() {
    let data = data_dir(&["de", "nl", "fr", "ru"]);
    let pool = tempfile::tempdir().unwrap();
    let trainer = FakeTrainer {
        fail: vec!["en-xx.g1".into()],
        ..Default::default()
    };
    let opts = PoolTrainOptions {
        jobs: 2,
        ..Default::default()
    };
    let err = train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "1 adapter(s) failed to train: en-xx.g1 (en-nl, en-de), 2 attempt(s): out of memory"
        ),
        "{err}"
    );
    assert_eq!(
        trainer.calls.lock().unwrap().len(),
        8,
        "the others still ran; the failed one was retried once"
    );
}

#[test]
fn only_and_missing_data() {
    let pool = tempfile::tempdir().unwrap();
    let trainer = FakeTrainer::default();
    let data = data_dir(&["de", "nl", "fr"]);
    let err = train_pool(
        &dat_plan(),
        pool.path(),
        data.path(),
        &trainer,
        &PoolTrainOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("direction ru-en"), "{err}");
    let data = data_dir(&["de", "nl", "fr", "ru"]);
    let opts = PoolTrainOptions {
        only: vec!["xx-en.fr".into()],
        ..Default::default()
    };
    let s = train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts).unwrap();
    assert_eq!(s.trained, ["xx-en.fr"]);
    let opts = PoolTrainOptions {
        only: vec!["nope".into()],
        ..Default::default()
    };
    let err = train_pool(&dat_plan(), pool.path(), data.path(), &trainer, &opts).unwrap_err();
    assert!(err.to_string().contains("--only \"nope\""));
}

fn slurm_jobs(merge: bool, evaluate: bool) -> SlurmJobs {
    SlurmJobs {
        datm: "/opt/datm/bin/datm".into(),
        plan: "/runs/plan.toml".into(),
        pool: "/runs/pool".into(),
        train_args: vec![
            "--model".into(),
            "/m/gemma 3.gguf".into(),
            "--data".into(),
            "d".into(),
        ],
        sbatch_options: vec!["--gres=gpu:1".into()],
        throttle: Some(3),
        merge: merge.then(|| vec!["--density=0.3".into()]),
        evaluate: evaluate.then(|| vec!["--out".into(), "/runs/eval".into()]),
    }
}

#[test]
fn slurm_submits_the_array_then_merge_then_evaluation() {
    let s = submit_script(&dat_plan(), &slurm_jobs(true, true)).unwrap();
    assert!(s.starts_with("#!/bin/bash\n"), "{s}");
    assert!(s.contains("DATM=\"${DATM:-/opt/datm/bin/datm}\"\n"), "{s}");
    assert!(
        s.contains("IDS=(xx-en.de xx-en.nl xx-en.fr xx-en.ru en-xx.g1 en-xx.g3 en-xx.g4)"),
        "{s}"
    );
    assert!(
        s.contains(
            "pool train --plan /runs/plan.toml --only \"$ID\" --model '/m/gemma 3.gguf' --data d\n"
        ),
        "{s}"
    );
    // Seven tasks, throttled, split by the cluster's MaxArraySize.
    assert!(s.contains("for ((OFF = 0; OFF < 7; OFF += MAX))"), "{s}");
    assert!(s.contains("--array=\"0-$LAST%3\""), "{s}");
    // GPU options go to training and evaluation, not to the CPU-only merge.
    assert_eq!(s.matches("#SBATCH --gres=gpu:1\n").count(), 2, "{s}");
    let merge = s
        .find("pool merge --groupwise --plan /runs/pool/pool.toml --pool /runs/pool --density=0.3")
        .unwrap();
    let eval = s
        .find("pool translate --pool /runs/pool/datm.toml --out /runs/eval")
        .unwrap();
    assert!(merge < eval);
    assert_eq!(
        s.matches("--dependency=\"afterok:$AFTER\"").count(),
        2,
        "{s}"
    );
    for step in ["train: ", "merge: ", "evaluate: "] {
        assert!(s.contains(&format!("echo \"{step}")), "{s}");
    }
}

#[test]
fn slurm_without_merge_evaluates_the_trained_pool() {
    let s = submit_script(&dat_plan(), &slurm_jobs(false, true)).unwrap();
    assert!(!s.contains("pool merge"));
    assert!(
        s.contains("pool translate --pool /runs/pool/pool.toml"),
        "{s}"
    );
    let multilingual = PoolPlan::build(
        Strategy::Multilingual,
        &parse_list("de,fr").unwrap(),
        &Grouping::default(),
    )
    .unwrap();
    let err = submit_script(&multilingual, &slurm_jobs(true, false)).unwrap_err();
    assert!(err.to_string().contains("needs a dat plan"), "{err}");
}
