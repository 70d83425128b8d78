//! `datm pool plan|train|merge|route|translate`: direction-aware LoRA pools (paper §3–4).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use datm_data::PromptTemplate;
use datm_lang::{paper, Direction, Grouping};
use datm_pool::evaluate::{
    adapter_languages, system_info, test_set, Evaluator, Scoring, SystemName,
};
use datm_pool::merge::{merge_declared, merge_pool, MergeRun};
use datm_pool::pipeline::TEST_SET_NAME;
use datm_pool::router::MANIFEST;
use datm_pool::settings::TrainSettings;
use datm_pool::slurm::{submit_script, SlurmJobs};
use datm_pool::train::{train_pool, PoolTrainOptions};
use datm_pool::trainer::LibraryTrainer;
use datm_pool::translate::{Decoding, Translator};
use datm_pool::{MergeMode, MergeSettings, PoolPlan, Router, Strategy};
use datm_report::{Report, ReportOptions};
use datm_results::{Store, SystemResults};

use super::scoring::ScoringArgs;

/// Arguments of `datm pool`.
#[derive(Args)]
pub struct PoolArgs {
    #[command(subcommand)]
    command: PoolCommand,
}

#[derive(Subcommand)]
enum PoolCommand {
    /// Write a pool plan (adapters, their directions and data, the routing table).
    Plan(PlanArgs),
    /// Train every adapter of a plan (skips finished ones, resumes interrupted ones).
    Train(Box<TrainArgs>),
    /// Merge adapters of a pool: DATM (--groupwise), the ablations (--per-direction,
    /// --en-xx), or the merges a plan declares; writes the new routing table.
    Merge(MergeArgs),
    /// Print the adapter a pool uses for a direction.
    Route(RouteArgs),
    /// Translate and score the test split of every direction of a pool.
    Translate(TranslateArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// multilingual | group | separate | dat | datm | custom.
    #[arg(long)]
    strategy: Strategy,
    /// Non-English languages, comma-separated (not needed for custom).
    #[arg(long, default_value = "")]
    langs: String,
    /// Grouping TOML (`[groups]` 1 = ["de", …]); default: the X-ALMA groups.
    #[arg(long)]
    groups: Option<PathBuf>,
    /// ALMA-layout data directory: check that every adapter's training files exist.
    #[arg(long)]
    data: Option<PathBuf>,
    /// For custom: the hand-written manifest to validate.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Output manifest (stdout when absent).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    /// Pool plan.
    #[arg(long)]
    plan: PathBuf,
    /// Base model: HF directory or .gguf.
    #[arg(long)]
    model: PathBuf,
    /// ALMA-layout data directory.
    #[arg(long)]
    data: PathBuf,
    /// Pool directory (adapters go to OUT/<id>, the manifest to OUT/pool.toml).
    #[arg(long)]
    out: PathBuf,
    /// Adapters trained at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Memory budget for concurrent jobs, GiB.
    #[arg(long)]
    memory_gb: Option<f64>,
    /// Train only these adapter ids (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Where to train: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu", conflicts_with = "devices")]
    device: String,
    /// Several devices, one adapter on each at a time from one queue, e.g. cuda:0,cuda:1.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// Times a failed adapter is queued again before it is reported.
    #[arg(long, default_value_t = 1)]
    retries: usize,
    /// Instead of training, print a submit script: `slurm` (a job array with one adapter
    /// per task, then the DATM merge and --evaluate chained with afterok).
    #[arg(long, value_parser = ["slurm"])]
    emit: Option<String>,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// Progress line every N steps.
    #[arg(long, default_value_t = 10)]
    log_every: usize,
    #[command(flatten)]
    settings: TrainSettings,
}

/// Options of `pool train --emit slurm`.
#[derive(Args)]
struct SlurmArgs {
    /// Extra `#SBATCH` option for the training and evaluation jobs (repeatable), e.g.
    /// --sbatch=--gres=gpu:1.
    #[arg(long, allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// Array tasks running at once (`--array=…%N`).
    #[arg(long, value_name = "N")]
    throttle: Option<usize>,
    /// Do not chain the DATM merge after a dat pool's array.
    #[arg(long)]
    no_merge: bool,
    /// Extra `pool merge` option for the merge job (repeatable), e.g. --merge-arg=--density=0.3.
    #[arg(long, allow_hyphen_values = true)]
    merge_arg: Vec<String>,
    /// Chain `pool translate` (translate and score the test splits) into this directory.
    #[arg(long, value_name = "DIR")]
    evaluate: Option<PathBuf>,
    /// Extra `pool translate` option for the evaluation job (repeatable), e.g.
    /// --evaluate-arg=--test-size=100.
    #[arg(long, allow_hyphen_values = true)]
    evaluate_arg: Vec<String>,
}

#[derive(Args)]
#[command(
    group(ArgGroup::new("mode").args(["groupwise", "per_direction", "en_xx"])),
    after_help = "Without a mode, runs the merges the plan declares ([[adapters]] with \
    `merge = { sources = [...], method = ..., weights = [...], rank = ..., majority_sign = ... }`, \
    see examples/custom-merge-plan.toml). With a mode, runs those first, then the mode's merges \
    with the options above, and saves the new plan. Sources are read from POOL and merged \
    adapters written there with a merge.json record: a rerun keeps what is up to date."
)]
struct MergeArgs {
    /// DATM (paper §4.3): in each group, merge the XX→En adapters serving only its
    /// languages into xx-en.g<N>; En→XX stays as trained (a DAT pool: 2·N_G adapters).
    /// Manifest: POOL/datm.toml.
    #[arg(long)]
    groupwise: bool,
    /// Ablation "one adapter per direction": every XX→En adapter into xx-en.all, every
    /// En→XX adapter into en-xx.all (2 adapters). Manifest: POOL/datm-per-direction.toml.
    #[arg(long)]
    per_direction: bool,
    /// Ablation: --groupwise, plus En→XX merged one level coarser than trained: per group
    /// into en-xx.merged.g<N> where a group has several En→XX adapters (a separate pool:
    /// 2·N_G), else all into en-xx.all (a DAT pool: N_G + 1). Manifest: POOL/datm-en-xx.toml.
    #[arg(long)]
    en_xx: bool,
    /// The trained plan (e.g. DAT); default: POOL/pool.toml.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Pool directory holding the trained adapters; merged ones are written there too.
    #[arg(long)]
    pool: PathBuf,
    /// linear | ties | dare_linear | dare_ties | magnitude_prune.
    #[arg(long, default_value = "ties", requires = "mode")]
    method: String,
    /// Fraction of entries kept by trimming methods (ties, dare_*, magnitude_prune).
    #[arg(long, default_value_t = 0.2, requires = "mode")]
    density: f64,
    /// delta (exact ΔW merge + SVD) or factors (PEFT-compatible A/B merge).
    #[arg(long, default_value = "delta", value_parser = ["delta", "factors"], requires = "mode")]
    space: String,
    /// Per-source weights, comma-separated, in each merge's source order (a run prints
    /// them; default 1 each). Every merge of the mode must have that many sources.
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        requires = "mode"
    )]
    weights: Vec<f64>,
    /// Rank of the merged adapters in delta space (SVD truncation); default: the sources' rank.
    #[arg(long, requires = "mode")]
    rank: Option<usize>,
    /// TIES sign election (ties, dare_ties; PEFT's majority_sign_method): total (by mass)
    /// or frequency (by count).
    #[arg(long, default_value = "total", value_parser = ["total", "frequency"], requires = "mode")]
    majority_sign: String,
    /// New manifest; default POOL/<the mode's manifest>. Without a mode: where to save the plan (not saved otherwise).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

impl MergeArgs {
    /// The merge mode asked for, if any.
    fn mode(&self) -> Option<MergeMode> {
        MergeMode::ALL.into_iter().find(|m| match m {
            MergeMode::Groupwise => self.groupwise,
            MergeMode::PerDirection => self.per_direction,
            MergeMode::EnXx => self.en_xx,
        })
    }

    /// The settings of the mode's merges.
    fn settings(&self) -> MergeSettings {
        MergeSettings {
            method: self.method.clone(),
            density: Some(self.density),
            space: self.space.clone(),
            weights: self.weights.clone(),
            rank: self.rank,
            majority_sign: self.majority_sign.clone(),
        }
    }
}

#[derive(Args)]
struct RouteArgs {
    /// Pool directory (with pool.toml) or manifest file.
    #[arg(long)]
    pool: PathBuf,
    /// Source language.
    #[arg(long)]
    src: String,
    /// Target language.
    #[arg(long)]
    tgt: String,
}

#[derive(Args)]
struct TranslateArgs {
    /// Pool directory (with pool.toml) or manifest file.
    #[arg(long)]
    pool: PathBuf,
    /// Base model: HF directory or .gguf.
    #[arg(long)]
    model: PathBuf,
    /// ALMA-layout data directory with test splits.
    #[arg(long)]
    data: PathBuf,
    /// Output directory: hypotheses (`<direction>.txt`) and report.md.
    #[arg(long)]
    out: PathBuf,
    /// Results store to record the scored outputs in (default: OUT/results.sqlite); give
    /// the same file to pools translated in separate runs to report them together.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Experiment name in the results store (default: the pool directory's name).
    #[arg(long)]
    experiment: Option<String>,
    /// System name in the results store (default: the pool's strategy).
    #[arg(long)]
    system: Option<String>,
    /// Directions (default: all of the pool).
    #[arg(long)]
    directions: Option<String>,
    /// Test sentences per direction at most.
    #[arg(long)]
    test_size: Option<usize>,
    /// Beams (paper §2.4: 5).
    #[arg(long, default_value_t = paper::NUM_BEAMS)]
    num_beams: usize,
    /// Generated tokens at most (paper §2.4: 512).
    #[arg(long, default_value_t = paper::MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// Prompts decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Prompt template: alma or xalma-chat.
    #[arg(long, default_value = "alma")]
    template: String,
    /// Decode past the end of the first non-blank line (by default a sentence is finished
    /// there: ALMA's output cleaning drops everything after it).
    #[arg(long)]
    no_stop_at_newline: bool,
    /// Where to decode and score: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda`
    /// feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    scoring: ScoringArgs,
}

/// Runs `datm pool …`.
pub fn run(args: PoolArgs) -> Result<()> {
    match args.command {
        PoolCommand::Plan(a) => plan(a),
        PoolCommand::Train(a) => train(*a),
        PoolCommand::Merge(a) => merge(a),
        PoolCommand::Route(a) => route(a),
        PoolCommand::Translate(a) => translate(a),
    }
}

fn plan(a: PlanArgs) -> Result<()> {
    let plan = if a.strategy == Strategy::Custom {
        let path = a
            .plan
            .context("--strategy custom needs --plan FILE (a hand-written manifest)")?;
        PoolPlan::load(&path)?
    } else {
        let langs = datm_lang::parse_list(&a.langs)?;
        let grouping = match &a.groups {
            Some(p) => Grouping::from_file(p)?,
            None => Grouping::default(),
        };
        PoolPlan::build(a.strategy, &langs, &grouping)?
    };
    if let Some(d) = &a.data {
        plan.check_data(d)?;
    }
    match &a.output {
        Some(p) => {
            plan.save(p)?;
            eprintln!(
                "{} plan: {} adapters, {} directions → {}",
                plan.strategy,
                plan.adapters.len(),
                plan.routes.len(),
                p.display()
            );
        }
        None => print!("{}", plan.to_toml()),
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let plan = PoolPlan::load(&a.plan)?;
    if a.emit.is_some() {
        print!("{}", submit_script(&plan, &slurm_jobs(&a, &plan)?)?);
        return Ok(());
    }
    plan.save(&a.out.join(MANIFEST))?;
    let mut base = a.settings.config(a.model.clone())?;
    base.device = a.device.clone();
    for d in &a.devices {
        datm_model::device::check_device_name(d)?;
    }
    let trainer = LibraryTrainer::new(base, a.log_every);
    let opts = PoolTrainOptions {
        jobs: a.jobs,
        memory_budget: a.memory_gb.map(|g| (g * (1u64 << 30) as f64) as u64),
        only: a.only,
        devices: a.devices,
        retries: a.retries,
    };
    let sum = train_pool(&plan, &a.out, &a.data, &trainer, &opts)?;
    eprintln!(
        "pool {}: {} adapters trained, {} copied from an equal training, {} already finished",
        a.out.display(),
        sum.trained.len(),
        sum.reused.len(),
        sum.skipped.len()
    );
    Ok(())
}

/// The jobs `--emit slurm` submits: every path absolute, the running binary as `$DATM`, and
/// every job on the device asked for (`--devices`: each array task gets one GPU, `cuda`).
fn slurm_jobs(a: &TrainArgs, plan: &PoolPlan) -> Result<SlurmJobs> {
    let device = if a.devices.is_empty() {
        datm_model::device::check_device_name(&a.device)?;
        a.device.clone()
    } else {
        "cuda".to_string()
    };
    let mut train_args = vec![
        "--model".to_string(),
        abs(&a.model),
        "--data".into(),
        abs(&a.data),
        "--out".into(),
        abs(&a.out),
        "--log-every".into(),
        a.log_every.to_string(),
        "--device".into(),
        device.clone(),
    ];
    train_args.extend(a.settings.to_args());
    let merge =
        (plan.strategy == Strategy::Dat && !a.slurm.no_merge).then(|| a.slurm.merge_arg.clone());
    let evaluate = a.slurm.evaluate.as_ref().map(|dir| {
        let mut args = vec![
            "--model".to_string(),
            abs(&a.model),
            "--data".into(),
            abs(&a.data),
            "--out".into(),
            abs(dir),
            "--device".into(),
            device.clone(),
        ];
        args.extend(a.slurm.evaluate_arg.iter().cloned());
        args
    });
    Ok(SlurmJobs {
        datm: std::env::current_exe()
            .context("cannot tell where the datm binary is")?
            .display()
            .to_string(),
        plan: abs(&a.plan),
        pool: abs(&a.out),
        train_args,
        sbatch_options: a.slurm.sbatch.clone(),
        throttle: a.slurm.throttle,
        merge,
        evaluate,
    })
}

fn abs(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn merge(a: MergeArgs) -> Result<()> {
    let plan_path = a.plan.clone().unwrap_or_else(|| a.pool.join(MANIFEST));
    let plan = PoolPlan::load(&plan_path)?;
    let Some(mode) = a.mode() else {
        if plan.adapters.iter().all(|x| x.merge.is_none()) {
            bail!(
                "{} declares no merges; pass --groupwise, --per-direction or --en-xx",
                plan_path.display()
            );
        }
        report_merges(&merge_declared(&plan, &a.pool)?);
        if let Some(out) = &a.output {
            plan.save(out)?;
            eprintln!("plan → {}", out.display());
        }
        return Ok(());
    };
    let (merged, runs) = merge_pool(&plan, &a.pool, mode, &a.settings())?;
    report_merges(&runs);
    let out = a.output.unwrap_or_else(|| a.pool.join(mode.manifest()));
    merged.save(&out)?;
    eprintln!(
        "{mode} merge: {} adapters ({} before) → {}",
        merged.adapters.len(),
        plan.adapters.len(),
        out.display()
    );
    Ok(())
}

/// One line per merge: the merged adapter, its sources in order, and what was done.
fn report_merges(runs: &[MergeRun]) {
    for r in runs {
        let weights = match r.spec.weights.as_slice() {
            [] => String::new(),
            w => format!(
                " (weights {})",
                w.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let done = if r.merged { "merged" } else { "up to date" };
        eprintln!("{} ← {}{weights}: {done}", r.id, r.spec.sources.join(", "));
    }
}

fn route(a: RouteArgs) -> Result<()> {
    let router = Router::open(&a.pool)?;
    let d: Direction = format!("{}-{}", a.src, a.tgt).parse()?;
    let r = router.adapter_for(d)?;
    println!("{}\t{}", r.id, r.path.display());
    Ok(())
}

fn translate(a: TranslateArgs) -> Result<()> {
    let router = Router::open(&a.pool)?;
    router.verify_files()?;
    let directions = match &a.directions {
        Some(list) => Direction::parse_list(list)?,
        None => router.plan().directions(),
    };
    let template = PromptTemplate::from_name(&a.template)
        .with_context(|| format!("unknown template {:?}", a.template))?;
    let decoding = Decoding {
        num_beams: a.num_beams,
        max_new_tokens: a.max_new_tokens,
        batch_size: a.batch_size,
        stop_at_newline: !a.no_stop_at_newline,
        ..Decoding::default()
    };
    let device = datm_model::parse_device(&a.device)?;
    let mut tr = Translator::load(&a.model, template, decoding.clone(), &device)?;
    let corpus = datm_data::read_layout(&a.data)?;
    let system = a
        .system
        .clone()
        .unwrap_or_else(|| router.plan().strategy.to_string());
    let dicts = a.scoring.dicts();
    let comet = a.scoring.comet(&device)?;
    let mut evaluator = Evaluator {
        translator: &mut tr,
        scoring: Scoring {
            dicts: &dicts,
            comet: comet.as_ref(),
        },
        cache: None,
        fingerprint: String::new(),
    };
    let mut outputs = Vec::new();
    for d in directions {
        let test = test_set(&corpus, d, a.test_size, TEST_SET_NAME)
            .with_context(|| a.data.display().to_string())?;
        let adapter = router.adapter_for(d)?;
        let adapter = Some((adapter, adapter_languages(router.plan(), &adapter.id)));
        let hyps = a.out.join(format!("{d}.txt"));
        outputs.push(evaluator.output(d, &test, adapter, Some(&hyps), &|l| eprintln!("{l}"))?);
    }
    let experiment = a.experiment.clone().unwrap_or_else(|| dir_name(&a.pool));
    let name = SystemName {
        experiment: &experiment,
        point: "",
        system: &system,
    };
    let config = format!(
        "{}\n{}",
        a.pool.display(),
        serde_json::to_string(&decoding)?
    );
    let info = system_info(
        &name,
        &config,
        router.plan().languages.len(),
        Some(&router),
        &a.model,
    )?;
    let db = a.db.clone().unwrap_or_else(|| a.out.join("results.sqlite"));
    let results = SystemResults { info, outputs };
    Store::open(&db)?.record(&results)?;
    eprintln!("recorded {system} in {}", db.display());
    let opts = ReportOptions {
        title: format!("{system} pool"),
        grouping: Some(router.plan().grouping()?),
        ..ReportOptions::default()
    };
    let report = Report::build(&[results], &opts)?;
    datm_fsio::write_atomic(&a.out.join("report.md"), report.to_markdown().as_bytes())?;
    print!("{}", report.to_markdown());
    Ok(())
}

/// The last component of a pool path (its folder, or the manifest's folder).
fn dir_name(pool: &Path) -> String {
    let dir = if pool.is_dir() {
        pool
    } else {
        pool.parent().unwrap_or(pool)
    };
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "pool".to_string())
}
