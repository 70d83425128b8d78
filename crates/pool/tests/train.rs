//! Pool training orchestration with a fake trainer: skipping, resuming, failures,
//! parallelism within a memory budget, Slurm emission.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use datm_lang::{parse_list, Grouping};
use datm_pool::train::{
    is_finished, slurm_script, train_pool, AdapterTrainer, PoolTrainOptions, TrainJob,
    TRAINING_RECORD,
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
}

impl AdapterTrainer for FakeTrainer {
    fn train(&self, job: &TrainJob) -> anyhow::Result<()> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.calls.lock().unwrap().push(job.adapter.id.clone());
        std::thread::sleep(Duration::from_millis(30));
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.contains(&job.adapter.id) {
            anyhow::bail!("out of memory");
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
        only: vec![],
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
        err.contains("1 adapter(s) failed to train: en-xx.g1 (en-nl, en-de): out of memory"),
        "{err}"
    );
    assert_eq!(
        trainer.calls.lock().unwrap().len(),
        7,
        "the others still ran"
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

#[test]
fn slurm_array_has_one_task_per_adapter() {
    let plan = dat_plan();
    let args = vec![
        "--model".to_string(),
        "/m/gemma 3.gguf".to_string(),
        "--data".into(),
        "d".into(),
    ];
    let s = slurm_script(
        &plan,
        Path::new("runs/plan.toml"),
        &args,
        &["--gres=gpu:1".into()],
    )
    .unwrap();
    assert!(s.contains("#SBATCH --array=0-6\n"), "{s}");
    assert!(s.contains("#SBATCH --gres=gpu:1\n"));
    assert!(
        s.contains("IDS=(xx-en.de xx-en.nl xx-en.fr xx-en.ru en-xx.g1 en-xx.g3 en-xx.g4)"),
        "{s}"
    );
    assert!(
        s.contains(
            "pool train --plan runs/plan.toml --only \"$ID\" --model '/m/gemma 3.gguf' --data d\n"
        ),
        "{s}"
    );
}
