//! `datm pipeline experiment.toml`: import data → plan → train → merge → translate the
//! test splits → score → report, with the state of each stage kept in the output
//! directory so an interrupted run resumes where it stopped.
//!
//! Output directory:
//! ```text
//! experiment.toml        copy of the experiment (a different one is refused on resume)
//! data/                  imported ALMA layout (gettext source only)
//! pool/<strategy>.toml   one manifest per strategy; pool/<adapter id>/ the adapters
//! hyps/<system>/<dir>.txt  hypotheses, one per line
//! translations/<key>.txt   every distinct translation once (see `evaluate`)
//! results.sqlite         the results store (unless `[results] db` names another)
//! stages/<stage>.done    stage markers (written atomically when a stage completes)
//! report.md, report.json, report.html, figures/*.svg   (datm-report, from the store)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use datm_data::gettext::import::{import_gettext, split_hash, ImportOptions};
use datm_data::{Corpus, Format, PromptTemplate, Split};
use datm_lang::{Direction, Grouping, Lang};
use datm_model::device::{check_device_name, parse_device};
use serde::{Deserialize, Serialize};

use crate::evaluate::{adapter_languages, system_info, test_set, Evaluator, Scoring, SystemName};
use crate::merge::merge_groupwise;
use crate::score::{CometCacheStats, CometScorer, MecabDicts};
use crate::settings::TrainSettings;
use crate::sweep::{Sweep, SweepPoint};
use crate::train::{train_pool, PoolTrainOptions};
use crate::trainer::LibraryTrainer;
use crate::translate::{Decoding, Translator};
use crate::{MergeSettings, PoolPlan, Router, Strategy};
use datm_fsio::write_atomic;
use datm_report::{write_figures, Report, ReportOptions};
use datm_results::{Store, SystemInfo, SystemResults};

/// The system name of the untuned base model.
pub const BASE_SYSTEM: &str = "base";

/// The name the pipeline gives its test sets in the results store.
pub const TEST_SET_NAME: &str = "test";

/// An experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Title of the report.
    pub name: String,
    /// Base model: HF directory or `.gguf` (relative paths are relative to the file).
    pub model: PathBuf,
    /// Non-English languages.
    pub languages: Vec<Lang>,
    /// Strategies to compare (`multilingual`, `group`, `separate`, `dat`, `datm`).
    pub strategies: Vec<Strategy>,
    /// Also translate with the untuned base model (system `base`).
    #[serde(default = "yes")]
    pub baseline: bool,
    /// Language groups; default: the X-ALMA grouping restricted to `languages`.
    #[serde(default)]
    pub groups: Option<BTreeMap<String, Vec<Lang>>>,
    /// Where the data comes from.
    pub data: DataSource,
    /// Test sentences per direction at most (all when absent).
    #[serde(default)]
    pub test_size: Option<usize>,
    /// Prompt template (`alma` or `xalma-chat`).
    #[serde(default = "alma")]
    pub template: String,
    /// Trainer overrides.
    #[serde(default)]
    pub train: TrainSettings,
    /// DATM merge settings.
    #[serde(default)]
    pub merge: MergeConfig,
    /// Decoding settings.
    #[serde(default)]
    pub decoding: Decoding,
    /// Where training, decoding and COMET run: `cpu`, `cuda` or `cuda:N`. Not part of
    /// what the experiment is: a run resumes on another device.
    #[serde(default = "cpu", skip_serializing_if = "is_cpu")]
    pub device: String,
    /// Adapters trained at once.
    #[serde(default = "one")]
    pub jobs: usize,
    /// Memory budget for concurrent training, in GiB.
    #[serde(default)]
    pub memory_gb: Option<f64>,
    /// MeCab dictionaries for BLEU on Japanese/Korean targets (`ja-mecab`/`ko-mecab`).
    #[serde(default)]
    pub mecab: MecabDicts,
    /// COMET scoring; without it reports say COMET was not computed.
    #[serde(default)]
    pub comet: Option<CometConfig>,
    /// Where the results go (`[results]`).
    #[serde(default, skip_serializing_if = "ResultsConfig::is_default")]
    pub results: ResultsConfig,
    /// A sweep: every point is run and stored (`[sweep]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

/// `[results]`: the results store the pipeline writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsConfig {
    /// A shared SQLite store (relative paths are relative to the experiment file);
    /// default: `results.sqlite` in the run's output directory.
    pub db: Option<PathBuf>,
}

impl ResultsConfig {
    fn is_default(&self) -> bool {
        self == &ResultsConfig::default()
    }
}

/// `[comet]`: the COMET model scored with (relative paths are relative to the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CometConfig {
    /// COMET model folder (`hparams.yaml` + `checkpoints/model.ckpt`).
    pub model: PathBuf,
    /// Encoder folder (`config.json` + `tokenizer.json`); default: found from the model's
    /// `pretrained_model` (local folder or HF hub cache).
    #[serde(default)]
    pub encoder: Option<PathBuf>,
    /// Sentences per encoder batch.
    #[serde(default = "sixteen")]
    pub batch_size: usize,
}

fn sixteen() -> usize {
    16
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn alma() -> String {
    "alma".into()
}
fn cpu() -> String {
    "cpu".into()
}
fn is_cpu(device: &str) -> bool {
    device == "cpu"
}

/// The `[data]` table: an existing ALMA layout or a gettext import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// An existing ALMA-layout directory.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Import the machine's gettext catalogs.
    #[serde(default)]
    pub gettext: Option<GettextSource>,
}

/// Gettext import settings (`[data.gettext]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GettextSource {
    /// Catalog root.
    pub root: PathBuf,
    /// Minimum English words per message.
    pub min_words: usize,
    /// Maximum characters per side.
    pub max_chars: usize,
    /// Hash-zone fraction for validation.
    pub valid_fraction: f64,
    /// Hash-zone fraction for test.
    pub test_fraction: f64,
    /// Training pairs per language at most (a hash-ordered sample; all when absent).
    pub max_train: Option<usize>,
    /// Validation pairs per language at most.
    pub max_valid: Option<usize>,
    /// Test pairs per language at most.
    pub max_test: Option<usize>,
}

impl Default for GettextSource {
    fn default() -> Self {
        let d = ImportOptions::default();
        GettextSource {
            root: PathBuf::from("/usr/share/locale"),
            min_words: d.min_words,
            max_chars: d.max_chars,
            valid_fraction: d.valid_fraction,
            test_fraction: d.test_fraction,
            max_train: None,
            max_valid: None,
            max_test: None,
        }
    }
}

/// The `[merge]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MergeConfig {
    /// Merge method (paper: TIES).
    pub method: String,
    /// Density of trimming methods.
    pub density: Option<f64>,
    /// `delta` or `factors`.
    pub space: String,
}

impl Default for MergeConfig {
    fn default() -> Self {
        let d = MergeSettings::default();
        MergeConfig {
            method: d.method,
            density: d.density,
            space: d.space,
        }
    }
}

impl Experiment {
    /// Reads an experiment file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading experiment {}", path.display()))?;
        Experiment::from_toml(&text, path)
    }

    /// Parses and validates the text of the experiment file `path` (which names it in errors
    /// and anchors its relative paths). toml's parser caps nesting depth, so deep arrays or
    /// inline tables give an error, not a stack overflow.
    pub fn from_toml(text: &str, path: &Path) -> Result<Experiment> {
        let mut e: Experiment = toml::from_str(text)
            .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.to_string().trim()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        e.model = base.join(&e.model);
        if let Some(c) = &mut e.comet {
            c.model = base.join(&c.model);
            c.encoder = c.encoder.as_ref().map(|p| base.join(p));
        }
        for dir in [
            &mut e.data.dir,
            &mut e.mecab.ja,
            &mut e.mecab.ko,
            &mut e.results.db,
        ]
        .into_iter()
        .flatten()
        {
            *dir = base.join(&*dir);
        }
        e.validate()
            .with_context(|| format!("experiment {}", path.display()))?;
        Ok(e)
    }

    fn validate(&self) -> Result<()> {
        if self.strategies.is_empty() {
            bail!("`strategies` is empty");
        }
        if self.strategies.contains(&Strategy::Custom) {
            bail!("the custom strategy needs a hand-written plan; use `datm pool` commands for it");
        }
        if self.data.dir.is_some() == self.data.gettext.is_some() {
            bail!("[data] needs exactly one of `dir` or `[data.gettext]`");
        }
        check_device_name(&self.device).context("`device`")?;
        self.template()?;
        self.grouping()?;
        if let Some(sweep) = &self.sweep {
            sweep
                .validate(self.languages.len())
                .map_err(anyhow::Error::msg)?;
        }
        self.mecab.check().context("[mecab]")?;
        Ok(())
    }

    /// The prompt template.
    pub fn template(&self) -> Result<PromptTemplate> {
        PromptTemplate::from_name(&self.template)
            .with_context(|| format!("unknown template {:?}", self.template))
    }

    /// The grouping of the experiment's languages.
    pub fn grouping(&self) -> Result<Grouping> {
        let g = match &self.groups {
            None => Grouping::default(),
            Some(map) => {
                let mut groups = BTreeMap::new();
                for (id, langs) in map {
                    let g: u8 = id
                        .parse()
                        .with_context(|| format!("group id {id:?} is not a number"))?;
                    groups.insert(g, langs.clone());
                }
                Grouping::new(groups, "[groups]")?
            }
        };
        Ok(g.restricted_to(&self.languages))
    }

    /// The experiment of one sweep point: the point's values applied, no sweep, the
    /// shared `data` folder and results store.
    pub fn at_point(&self, point: &SweepPoint, data: &Path, db: &Path) -> Experiment {
        let mut e = self.clone();
        e.sweep = None;
        if let Some(k) = point.languages {
            e.languages.truncate(k);
        }
        if let Some(r) = point.rank {
            e.train.rank = Some(r);
        }
        if let Some(d) = point.density {
            e.merge.density = Some(d);
        }
        e.data = DataSource {
            dir: Some(data.to_path_buf()),
            gettext: None,
        };
        e.results.db = Some(db.to_path_buf());
        e
    }

    /// The systems in report order: `base` (when asked), then the strategies.
    pub fn systems(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if self.baseline {
            v.push(BASE_SYSTEM.into());
        }
        v.extend(self.strategies.iter().map(|s| s.to_string()));
        v
    }
}

/// A pipeline run over one output directory.
pub struct Pipeline {
    exp: Experiment,
    out: PathBuf,
    started: Instant,
    /// The sweep point this run is (empty outside sweeps).
    point: String,
    /// The translation cache (a sweep's points share their parent's).
    translations: PathBuf,
    /// The COMET scorer and its settings, loaded on first use and kept for every system (a
    /// sweep's points share their parent's): each test sentence is embedded once per
    /// experiment.
    comet: Arc<Mutex<Option<(CometConfig, CometScorer)>>>,
}

impl Pipeline {
    /// Prepares `out`, refusing one that holds a different experiment.
    pub fn new(exp: Experiment, out: &Path) -> Result<Pipeline> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let copy = out.join("experiment.toml");
        let text = toml::to_string(&exp)?;
        // Compared as values, so that a field added later with a default still resumes.
        // The device is where the run goes on, not what it computes.
        let same = |old: &str| {
            toml::from_str::<Experiment>(old).is_ok_and(|o| {
                let device = exp.device.clone();
                Experiment { device, ..o } == exp
            })
        };
        match std::fs::read_to_string(&copy) {
            Ok(old) if !same(&old) => bail!(
                "{} holds a different experiment ({}); choose another --out or delete it",
                out.display(),
                copy.display()
            ),
            Ok(_) => {}
            Err(_) => write_atomic(&copy, text.as_bytes())?,
        }
        Ok(Pipeline {
            exp,
            out: out.to_path_buf(),
            started: Instant::now(),
            point: String::new(),
            translations: out.join("translations"),
            comet: Arc::default(),
        })
    }

    /// Runs every point of the experiment's sweep into `points/<label>/`, on the data
    /// imported once, all recorded in one results store.
    fn run_sweep(&self, sweep: &Sweep) -> Result<Report> {
        let data = self.stage("import", || self.import())?;
        let data = data.map_or_else(|| self.data_dir(), Ok)?;
        for point in sweep.points() {
            let label = point.label();
            let exp = self.exp.at_point(&point, &data, &self.results_db());
            let mut run = Pipeline::new(exp, &self.out.join("points").join(&label))?;
            run.point = label.clone();
            run.translations = self.translations.clone();
            run.comet = self.comet.clone();
            self.log(&format!("sweep point {label}"));
            run.run()?;
        }
        self.report()
    }

    /// Runs every stage not yet done and returns the report.
    pub fn run(&self) -> Result<Report> {
        if let Some(sweep) = &self.exp.sweep {
            return self.run_sweep(sweep);
        }
        let data = self.stage("import", || self.import())?;
        let data = data.map_or_else(|| self.data_dir(), Ok)?;
        self.stage("plan", || self.plan().map(|_| PathBuf::new()))?;
        self.stage("train", || self.train(&data).map(|_| PathBuf::new()))?;
        if self.exp.strategies.contains(&Strategy::Datm) {
            self.stage("merge", || self.merge().map(|_| PathBuf::new()))?;
        }
        let mut translator = None;
        for system in self.exp.systems() {
            self.stage(&format!("translate-{system}"), || {
                self.translate(&system, &data, &mut translator)
                    .map(|_| PathBuf::new())
            })?;
        }
        if let Some(c) = self.comet_stats() {
            self.log(&format!(
                "COMET: {} sentences embedded, {} taken from the cache",
                c.embedded, c.reused
            ));
        }
        let report = self.report()?;
        self.log("report written");
        Ok(report)
    }

    fn pool_dir(&self) -> PathBuf {
        self.out.join("pool")
    }

    fn manifest(&self, strategy: Strategy) -> PathBuf {
        self.pool_dir().join(format!("{strategy}.toml"))
    }

    fn data_dir(&self) -> Result<PathBuf> {
        Ok(match &self.exp.data.dir {
            Some(d) => d.clone(),
            None => self.out.join("data"),
        })
    }

    fn log(&self, msg: &str) {
        let at = if self.point.is_empty() {
            String::new()
        } else {
            format!(" {}", self.point)
        };
        eprintln!(
            "[pipeline{at} {:>6.1}s] {msg}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Runs `f` unless its marker exists; the marker records what `f` returned.
    fn stage(&self, name: &str, f: impl FnOnce() -> Result<PathBuf>) -> Result<Option<PathBuf>> {
        let marker = self.out.join("stages").join(format!("{name}.done"));
        if marker.is_file() {
            self.log(&format!("{name}: done before, skipped"));
            return Ok(None);
        }
        self.log(&format!("{name}: starting"));
        let t = Instant::now();
        let out = f().with_context(|| format!("pipeline stage {name}"))?;
        let record =
            serde_json::json!({"stage": name, "seconds": t.elapsed().as_secs_f64(), "output": out});
        write_atomic(&marker, serde_json::to_string_pretty(&record)?.as_bytes())?;
        self.log(&format!(
            "{name}: done in {:.1}s",
            t.elapsed().as_secs_f64()
        ));
        Ok(Some(out))
    }

    fn import(&self) -> Result<PathBuf> {
        let Some(src) = &self.exp.data.gettext else {
            let dir = self.data_dir()?;
            if !dir.is_dir() {
                bail!("data directory {} does not exist", dir.display());
            }
            return Ok(dir);
        };
        let opts = ImportOptions {
            langs: Some(self.exp.languages.clone()),
            min_words: src.min_words,
            max_chars: src.max_chars,
            valid_fraction: src.valid_fraction,
            test_fraction: src.test_fraction,
            max_valid: src.max_valid,
            max_test: src.max_test,
        };
        let (mut corpus, report) = import_gettext(&src.root, &opts, &|_| {})?;
        if let Some(n) = src.max_train {
            cap_train(&mut corpus, &self.exp.languages, n)?;
        }
        let dir = self.out.join("data");
        datm_data::write_layout(&corpus, &dir, Format::Json)?;
        write_atomic(
            &dir.join("import.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        for s in corpus.stats() {
            self.log(&format!(
                "data {}: train {} valid {} test {}",
                s.direction, s.train, s.valid, s.test
            ));
        }
        Ok(dir)
    }

    /// Writes the manifest of every trained strategy (DATM's source, DAT, included).
    fn plan(&self) -> Result<()> {
        let grouping = self.exp.grouping()?;
        for s in self.trained_strategies() {
            let plan = PoolPlan::build(s, &self.exp.languages, &grouping)?;
            plan.save(&self.manifest(s))?;
            self.log(&format!("plan {s}: {} adapters", plan.adapters.len()));
        }
        Ok(())
    }

    fn trained_strategies(&self) -> Vec<Strategy> {
        let mut v: Vec<Strategy> = Vec::new();
        for &s in &self.exp.strategies {
            let s = if s == Strategy::Datm {
                Strategy::Dat
            } else {
                s
            };
            if !v.contains(&s) {
                v.push(s);
            }
        }
        v
    }

    fn train(&self, data: &Path) -> Result<()> {
        let mut base = self.exp.train.config(self.exp.model.clone())?;
        base.device = self.exp.device.clone();
        let trainer = LibraryTrainer::new(base, 10);
        let opts = PoolTrainOptions {
            jobs: self.exp.jobs,
            memory_budget: self.exp.memory_gb.map(|g| (g * (1u64 << 30) as f64) as u64),
            ..PoolTrainOptions::default()
        };
        for s in self.trained_strategies() {
            let plan = PoolPlan::load(&self.manifest(s))?;
            let t = Instant::now();
            let sum = train_pool(&plan, &self.pool_dir(), data, &trainer, &opts)?;
            self.log(&format!(
                "train {s}: {} trained, {} reused (same training as another strategy's), {} already done, {:.1}s",
                sum.trained.len(),
                sum.reused.len(),
                sum.skipped.len(),
                t.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    }

    fn merge(&self) -> Result<()> {
        let dat = PoolPlan::load(&self.manifest(Strategy::Dat))?;
        let m = &self.exp.merge;
        let settings = MergeSettings {
            method: m.method.clone(),
            density: m.density,
            space: m.space.clone(),
            ..MergeSettings::default()
        };
        let datm = merge_groupwise(&dat, &self.pool_dir(), &settings)?;
        datm.save(&self.manifest(Strategy::Datm))?;
        self.log(&format!(
            "merge: DATM pool of {} adapters",
            datm.adapters.len()
        ));
        Ok(())
    }

    /// What this run's COMET scorer has embedded and reused so far (none before it loads).
    pub fn comet_stats(&self) -> Option<CometCacheStats> {
        let comet = self.comet.lock().unwrap_or_else(PoisonError::into_inner);
        comet.as_ref().map(|(_, scorer)| scorer.cache_stats())
    }

    fn translate(
        &self,
        system: &str,
        data: &Path,
        translator: &mut Option<Translator>,
    ) -> Result<()> {
        let router = match system {
            BASE_SYSTEM => None,
            s => Some(Router::open(&self.manifest(s.parse()?))?),
        };
        if let Some(r) = &router {
            r.verify_files()?;
        }
        let device = || parse_device(&self.exp.device);
        if translator.is_none() {
            *translator = Some(Translator::load(
                &self.exp.model,
                self.exp.template()?,
                self.exp.decoding.clone(),
                &device()?,
            )?);
        }
        let mut comet = self.comet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = &self.exp.comet {
            if comet.as_ref().is_none_or(|(loaded, _)| loaded != c) {
                let scorer =
                    CometScorer::load(&c.model, c.encoder.as_deref(), c.batch_size, &device()?)?;
                *comet = Some((c.clone(), scorer));
            }
        }
        let corpus = datm_data::read_layout(data)?;
        let mut evaluator = Evaluator {
            translator: translator.as_mut().expect("loaded above"),
            scoring: Scoring {
                dicts: &self.exp.mecab,
                comet: self
                    .exp
                    .comet
                    .as_ref()
                    .and(comet.as_ref().map(|(_, scorer)| scorer)),
            },
            cache: Some(self.translations.clone()),
            fingerprint: self.decoding_fingerprint()?,
        };
        let mut outputs = Vec::new();
        for d in Direction::english_centric(&self.exp.languages) {
            let test = test_set(&corpus, d, self.exp.test_size, TEST_SET_NAME)?;
            let adapter = match &router {
                Some(r) => {
                    let a = r.adapter_for(d)?;
                    Some((a, adapter_languages(r.plan(), &a.id)))
                }
                None => None,
            };
            let hyps = self.out.join("hyps").join(system).join(format!("{d}.txt"));
            let log = |line: &str| self.log(&format!("{system} {line}"));
            outputs.push(evaluator.output(d, &test, adapter, Some(&hyps), &log)?);
        }
        let info = self.system_info(system, router.as_ref())?;
        let mut store = Store::open(&self.results_db())?;
        store.record(&SystemResults { info, outputs })?;
        Ok(())
    }

    /// The results store this run writes.
    pub fn results_db(&self) -> PathBuf {
        self.exp
            .results
            .db
            .clone()
            .unwrap_or_else(|| self.out.join("results.sqlite"))
    }

    /// Model, template and decoding settings: what besides adapter and test set decides
    /// a translation.
    fn decoding_fingerprint(&self) -> Result<String> {
        Ok(format!(
            "{}\n{}\n{}",
            self.exp.model.display(),
            self.exp.template,
            toml::to_string(&self.exp.decoding)?
        ))
    }

    /// The store's record of `system`.
    fn system_info(&self, system: &str, router: Option<&Router>) -> Result<SystemInfo> {
        let name = SystemName {
            experiment: &self.exp.name,
            point: &self.point,
            system,
        };
        let config = toml::to_string(&self.exp)?;
        system_info(
            &name,
            &config,
            self.exp.languages.len(),
            router,
            &self.exp.model,
        )
    }

    /// Whether this run's report covers a stored system: its experiment's, of this sweep
    /// point (a sweep's own report covers every point), imported systems included.
    fn reports_on(&self, info: &SystemInfo) -> bool {
        info.experiment == self.exp.name && (self.exp.sweep.is_some() || info.point == self.point)
    }

    /// Writes `report.{md,json,html}` and `figures/*.svg` from the results store.
    fn report(&self) -> Result<Report> {
        let systems: Vec<SystemResults> = Store::open_read_only(&self.results_db())?
            .systems()?
            .into_iter()
            .filter(|s| self.reports_on(&s.info))
            .collect();
        let opts = ReportOptions {
            title: self.exp.name.clone(),
            grouping: Some(self.exp.grouping()?),
            ..ReportOptions::default()
        };
        let report = Report::build(&systems, &opts)?;
        for (file, text) in [
            ("report.md", report.to_markdown()),
            ("report.json", report.to_json()),
            ("report.html", report.to_html()),
        ] {
            write_atomic(&self.out.join(file), text.as_bytes())?;
        }
        write_figures(&self.out.join("figures"), &report.figures())?;
        Ok(report)
    }
}

/// Keeps at most `n` training pairs per language: those with the smallest hash of the
/// English side (a deterministic, content-independent sample).
fn cap_train(corpus: &mut Corpus, langs: &[Lang], n: usize) -> Result<()> {
    for &l in langs {
        if let Some(pairs) = corpus.shared(l, Split::Train) {
            let mut pairs = pairs.to_vec();
            pairs.sort_by_key(|p| (split_hash(&p.en), p.clone()));
            pairs.truncate(n);
            corpus.set(l, Split::Train, pairs)?;
        }
    }
    Ok(())
}
