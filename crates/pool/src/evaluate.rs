//! Evaluating a system: translate each direction's test set through the router, score
//! it, and produce the results-store records (`pipeline` and `pool translate` share this).
//!
//! Translations are cached by content: the key hashes the adapter's files (or `base`),
//! the direction, the test set and the decoding fingerprint. Two systems that route a
//! direction to equal adapters (separate's `de-en` and DAT's `xx-en.de`, trained once;
//! DATM's En→XX adapters, which are DAT's) therefore translate it once, and a run that
//! was killed resumes at the first direction it had not finished, with the sentences of
//! that direction it had finished (kept in `<key>.txt.partial` as they finish).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use datm_data::{Corpus, Split};
use datm_fsio::write_atomic;
use datm_lang::Direction;
use datm_results::{Output, Params, SystemInfo, TestSet};
use sha2::{Digest, Sha256};

use crate::score::{score_metrics, CometScorer, MecabDicts};
use crate::translate::Translator;
use crate::{AdapterRef, PoolPlan, Router};

/// A direction's test set: the first `limit` pairs of the corpus's test split.
pub fn test_set(
    corpus: &Corpus,
    d: Direction,
    limit: Option<usize>,
    name: &str,
) -> Result<TestSet> {
    let pairs = corpus.pairs(d, Split::Test);
    if pairs.is_empty() {
        bail!("no test pairs for {d}");
    }
    let n = limit.unwrap_or(pairs.len()).min(pairs.len());
    let (sources, references) = pairs[..n]
        .iter()
        .map(|p| {
            let (s, t) = p.oriented(d);
            (s.to_string(), t.to_string())
        })
        .unzip();
    Ok(TestSet {
        name: name.to_string(),
        sources,
        references,
    })
}

/// What scoring needs besides the hypotheses.
pub struct Scoring<'a> {
    /// MeCab dictionaries for Japanese/Korean BLEU.
    pub dicts: &'a MecabDicts,
    /// COMET, when a model was given.
    pub comet: Option<&'a CometScorer>,
}

impl Scoring<'_> {
    /// Scores `hyps` for `test` (BLEU, chrF, and COMET when loaded) as an output without
    /// an adapter.
    pub fn output(
        &self,
        direction: Direction,
        test: &TestSet,
        hyps: Vec<String>,
    ) -> Result<Output> {
        if hyps.len() != test.sources.len() {
            bail!(
                "{direction}: {} hypotheses for {} test sentences",
                hyps.len(),
                test.sources.len()
            );
        }
        let mut scores = score_metrics(direction, &hyps, &test.references, self.dicts)?;
        if let Some(c) = self.comet {
            scores.push(c.score(&test.sources, &hyps, &test.references)?);
        }
        Ok(Output {
            direction,
            test_set: test.clone(),
            adapter: None,
            adapter_languages: None,
            hypotheses: hyps,
            scores,
        })
    }

    /// Scores an outside system's hypothesis files: `hyps_dir/<direction>.txt` for every
    /// direction that has one (one line per test sentence), against the test split of
    /// `corpus` (its first `limit` pairs, as the pipeline takes them).
    pub fn external(
        &self,
        hyps_dir: &Path,
        corpus: &Corpus,
        limit: Option<usize>,
        test_name: &str,
    ) -> Result<Vec<Output>> {
        let mut outputs = Vec::new();
        for d in hypothesis_files(hyps_dir)? {
            let path = hyps_dir.join(format!("{d}.txt"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let hyps: Vec<String> = text.lines().map(str::to_string).collect();
            let test = test_set(corpus, d, limit, test_name)?;
            let out = self
                .output(d, &test, hyps)
                .with_context(|| path.display().to_string())?;
            outputs.push(out);
        }
        if outputs.is_empty() {
            bail!(
                "{}: no hypothesis files (`<src>-<tgt>.txt`, e.g. de-en.txt)",
                hyps_dir.display()
            );
        }
        Ok(outputs)
    }
}

/// The directions of the `<src>-<tgt>.txt` files in `dir`, sorted; other files are ignored.
fn hypothesis_files(dir: &Path) -> Result<Vec<Direction>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading folder {}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(d) = name.strip_suffix(".txt").and_then(|s| s.parse().ok()) {
            out.push(d);
        }
    }
    out.sort();
    Ok(out)
}

/// Translates and scores one system's directions.
pub struct Evaluator<'a> {
    /// The loaded base model.
    pub translator: &'a mut Translator,
    /// Scoring resources.
    pub scoring: Scoring<'a>,
    /// Folder of cached translations (`<key>.txt`); none: no cache.
    pub cache: Option<PathBuf>,
    /// Everything besides adapter, direction and test set that decides a translation
    /// (model, template, decoding settings).
    pub fingerprint: String,
}

impl Evaluator<'_> {
    /// Translates `test` in `direction` with `adapter` (none: the base model), scores
    /// it, writes the hypotheses to `hyps_file` when given, and returns the output.
    /// `log` gets one line per direction.
    pub fn output(
        &mut self,
        direction: Direction,
        test: &TestSet,
        adapter: Option<(&AdapterRef, u32)>,
        hyps_file: Option<&Path>,
        log: &dyn Fn(&str),
    ) -> Result<Output> {
        let t = Instant::now();
        let (hyps, cached) = self.hypotheses(direction, test, adapter.map(|a| a.0))?;
        if let Some(path) = hyps_file {
            write_lines(path, &hyps)?;
        }
        let mut out = self.scoring.output(direction, test, hyps)?;
        out.adapter = adapter.map(|(a, _)| a.id.clone());
        out.adapter_languages = adapter.map(|(_, n)| n);
        log(&summary_line(&out, cached, t.elapsed().as_secs_f64()));
        Ok(out)
    }

    /// The hypotheses, from the cache when this translation was made before; the flag
    /// says whether they were.
    fn hypotheses(
        &mut self,
        direction: Direction,
        test: &TestSet,
        adapter: Option<&AdapterRef>,
    ) -> Result<(Vec<String>, bool)> {
        let cached = match &self.cache {
            Some(dir) => Some(dir.join(format!(
                "{}.txt",
                translation_key(adapter, direction, test, &self.fingerprint)?
            ))),
            None => None,
        };
        if let Some(path) = &cached {
            if let Some(hyps) = read_cached(path, test.sources.len())? {
                return Ok((hyps, true));
            }
        }
        let bar = crate::progress::bar(test.sources.len(), &format!("{direction} sentences"))?;
        let mut on_done = |done: usize| bar.set_position(done as u64);
        let Some(path) = &cached else {
            let hyps =
                self.translator
                    .translate(adapter, direction, &test.sources, &mut on_done)?;
            bar.finish_and_clear();
            return Ok((hyps, false));
        };
        // A direction that was stopped halfway resumes from its journal.
        let mut journal = path.as_os_str().to_owned();
        journal.push(".partial");
        let (hyps, journal): (Vec<String>, _) = self.translator.translate_journaled(
            adapter,
            direction,
            &test.sources,
            Path::new(&journal),
            &mut on_done,
        )?;
        bar.finish_and_clear();
        write_lines(path, &hyps)?;
        journal.remove()?;
        Ok((hyps, false))
    }
}

/// One log line: direction, adapter, scores, sentences and time.
fn summary_line(out: &Output, cached: bool, seconds: f64) -> String {
    let score = |m: &str, scale: f64| {
        out.score(m)
            .map_or(String::new(), |s| format!(" {m} {:.1}", s.score * scale))
    };
    format!(
        "{} ({}):{}{}{}, {} sentences in {seconds:.1}s{}",
        out.direction,
        out.adapter.as_deref().unwrap_or("base model"),
        score("comet", 100.0),
        score("chrf", 1.0),
        score("bleu", 1.0),
        out.hypotheses.len(),
        if cached {
            " (translated before: reused)"
        } else {
            ""
        }
    )
}

/// Cached hypotheses, if the file exists and holds one line per source.
fn read_cached(path: &Path, n: usize) -> Result<Option<Vec<String>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    Ok((lines.len() == n).then_some(lines))
}

/// Writes one hypothesis per line, atomically. Hypotheses never hold a newline (ALMA's
/// cleaning keeps the first line), so lines map back one to one.
fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(write_atomic(path, text.as_bytes())?)
}

/// SHA-256 over the adapter's files (or `base`), the direction, the test set's hash and
/// the decoding fingerprint.
pub fn translation_key(
    adapter: Option<&AdapterRef>,
    direction: Direction,
    test: &TestSet,
    fingerprint: &str,
) -> Result<String> {
    let mut h = Sha256::new();
    match adapter {
        None => h.update(b"base\0"),
        Some(a) => {
            for file in [datm_adapter::CONFIG_FILE, datm_adapter::WEIGHTS_FILE] {
                let path = a.path.join(file);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("reading adapter file {}", path.display()))?;
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
        }
    }
    for part in [direction.to_string().as_str(), &test.hash(), fingerprint] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Non-English languages of an adapter's directions (Fig. 2's "languages in the adapter").
pub fn adapter_languages(plan: &PoolPlan, id: &str) -> u32 {
    let langs: BTreeSet<_> = plan
        .adapter(id)
        .map(|a| {
            a.directions
                .iter()
                .filter_map(|d| d.non_english())
                .collect()
        })
        .unwrap_or_default();
    langs.len() as u32
}

/// Names a system for the results store.
pub struct SystemName<'a> {
    /// The experiment.
    pub experiment: &'a str,
    /// The sweep point (empty outside sweeps).
    pub point: &'a str,
    /// The system.
    pub system: &'a str,
}

/// The store's record of a system: its names, a hash of `config` (the text of
/// everything that made it), its language count, and parameter counts read from the base
/// model `model` and the router's adapters (none: the base model alone).
pub fn system_info(
    name: &SystemName,
    config: &str,
    languages: usize,
    router: Option<&Router>,
    model: &Path,
) -> Result<SystemInfo> {
    let base = datm_model::parameter_count(model)
        .with_context(|| format!("counting the parameters of {}", model.display()))?;
    let mut h = Sha256::new();
    for part in [config, name.system] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    Ok(SystemInfo {
        experiment: name.experiment.to_string(),
        point: name.point.to_string(),
        system: name.system.to_string(),
        config_hash: format!("{:x}", h.finalize()),
        languages: Some(languages as u32),
        params: Some(system_params(router, base)?),
    })
}

/// Parameter counts of a system: its pool's adapters (none for the base model) and the
/// base model's `base` parameters.
fn system_params(router: Option<&Router>, base: u64) -> Result<Params> {
    let Some(router) = router else {
        return Ok(Params {
            adapters: 0,
            lora: 0,
            base,
        });
    };
    let (mut lora, mut adapters) = (0u64, 0u32);
    for a in router.adapters() {
        let adapter = datm_adapter::Adapter::load(&a.path)
            .with_context(|| format!("counting the parameters of adapter {}", a.id))?;
        lora += adapter.parameter_count();
        adapters += 1;
    }
    Ok(Params {
        adapters,
        lora,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(n: usize) -> TestSet {
        TestSet {
            name: "t".into(),
            sources: (0..n).map(|i| format!("s{i}")).collect(),
            references: (0..n).map(|i| format!("r{i}")).collect(),
        }
    }

    #[test]
    fn keys_follow_content_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, weights: &[u8]| {
            let p = dir.path().join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(datm_adapter::CONFIG_FILE), b"{}").unwrap();
            std::fs::write(p.join(datm_adapter::WEIGHTS_FILE), weights).unwrap();
            AdapterRef {
                id: name.into(),
                path: p,
            }
        };
        let (a, b, c) = (
            make("de-en", b"w1"),
            make("xx-en.de", b"w1"),
            make("x", b"w2"),
        );
        let d: Direction = "de-en".parse().unwrap();
        let key = |a: Option<&AdapterRef>, d: Direction, t: &TestSet, f: &str| {
            translation_key(a, d, t, f).unwrap()
        };
        let k = key(Some(&a), d, &test(2), "f");
        assert_eq!(
            k,
            key(Some(&b), d, &test(2), "f"),
            "equal adapters, one key"
        );
        assert_ne!(k, key(Some(&c), d, &test(2), "f"));
        assert_ne!(k, key(None, d, &test(2), "f"));
        assert_ne!(k, key(Some(&a), "en-de".parse().unwrap(), &test(2), "f"));
        assert_ne!(k, key(Some(&a), d, &test(3), "f"));
        assert_ne!(k, key(Some(&a), d, &test(2), "g"));
        let missing = AdapterRef {
            id: "gone".into(),
            path: dir.path().join("gone"),
        };
        let err = translation_key(Some(&missing), d, &test(2), "f").unwrap_err();
        assert!(format!("{err:#}").contains("gone"), "{err:#}");
    }

    #[test]
    fn cache_files_are_used_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.txt");
        assert_eq!(read_cached(&path, 2).unwrap(), None);
        write_lines(&path, &["a".into(), "b".into()]).unwrap();
        assert_eq!(
            read_cached(&path, 2).unwrap(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(read_cached(&path, 3).unwrap(), None);
    }
}
