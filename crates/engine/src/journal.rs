//! Journaled decoding: a long job's finished prompts kept on disk as they finish
//! ([`datm_fsio::Journal`]), so that a job that was stopped resumes where it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{ensure, Context, Result};
use datm_fsio::Journal;
use datm_model::GenerationConfig;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::TextGeneration;

/// The finished prompts of one decoding job: on disk, one JSON record per prompt, and in
/// memory, by prompt index.
#[derive(Debug)]
pub struct JobJournal {
    journal: Journal,
    done: BTreeMap<usize, TextGeneration>,
    replaced: bool,
}

impl JobJournal {
    /// Opens the journal at `path` of the job `key` over `prompts`, reading the prompts an
    /// earlier run of the same job finished.
    pub(crate) fn open(path: &Path, key: &str, prompts: &[Vec<u32>]) -> Result<JobJournal> {
        let opened = Journal::open(path, key)?;
        let mut done = BTreeMap::new();
        for (line, record) in opened.records.iter().enumerate() {
            let (index, g) = parse_record(record, prompts).with_context(|| {
                format!(
                    "{}:{}: not a record of this job (remove the file to start over)",
                    path.display(),
                    line + 2
                )
            })?;
            done.insert(index, g);
        }
        Ok(JobJournal {
            journal: opened.journal,
            done,
            replaced: opened.replaced,
        })
    }

    /// Prompts that an earlier run of the job finished.
    pub fn resumed(&self) -> usize {
        self.done.len()
    }

    /// New tokens of the prompts that an earlier run of the job finished.
    pub fn resumed_tokens(&self) -> usize {
        self.done.values().map(|g| g.token_ids.len()).sum()
    }

    /// Whether a file that was not this job's journal was replaced.
    pub fn replaced(&self) -> bool {
        self.replaced
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// The finished prompt `index`, if the journal holds it.
    pub(crate) fn get(&self, index: usize) -> Option<&TextGeneration> {
        self.done.get(&index)
    }

    /// Records prompt `index`'s result, on disk before it returns.
    pub(crate) fn record(&mut self, index: usize, g: TextGeneration) -> Result<()> {
        let record = json!({
            "index": index,
            "prompt_ids": g.prompt_ids,
            "token_ids": g.token_ids,
            "text": g.text,
        });
        self.journal.append(&record.to_string())?;
        self.done.insert(index, g);
        Ok(())
    }

    /// Removes the journal: the job's output is written.
    pub fn remove(self) -> Result<()> {
        Ok(self.journal.remove()?)
    }
}

/// A journal record's prompt index and result, checked against the job's prompts.
fn parse_record(record: &str, prompts: &[Vec<u32>]) -> Result<(usize, TextGeneration)> {
    let v: serde_json::Value = serde_json::from_str(record).context("invalid JSON")?;
    let ids = |key: &str| -> Result<Vec<u32>> {
        serde_json::from_value(v[key].clone()).with_context(|| format!("no token ids {key:?}"))
    };
    let index = v["index"].as_u64().context("no prompt index")? as usize;
    let g = TextGeneration {
        prompt_ids: ids("prompt_ids")?,
        token_ids: ids("token_ids")?,
        text: v["text"].as_str().context("no text")?.to_string(),
    };
    ensure!(
        prompts.get(index) == Some(&g.prompt_ids),
        "prompt {index} is not the job's"
    );
    Ok((index, g))
}

/// The key of decoding `prompts` with `cfg` on an engine described by `engine` (whatever
/// its results depend on, [`crate::Engine::open_journal`]) and, if the settings name one,
/// the adapter loaded from `adapter`: a SHA-256 over all of it.
pub(crate) fn job_key(
    engine: &str,
    adapter: Option<&Path>,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> String {
    let mut text = format!("datm decoding job 1\n{engine}\n{cfg:?}\n");
    if let Some(dir) = adapter {
        let _ = writeln!(text, "adapter {}", fingerprint(dir));
    }
    let mut hash = Sha256::new();
    hash.update(text.as_bytes());
    for p in prompts {
        hash.update((p.len() as u64).to_le_bytes());
        for id in p {
            hash.update(id.to_le_bytes());
        }
    }
    format!("{:x}", hash.finalize())
}

/// A file's or a directory's identity as far as its metadata tell: its full path, and its
/// (or each of its files') size and modification time; a directory's hidden files and
/// journals (`*.partial`) are left out, so that a job writing beside a model keeps its key.
pub(crate) fn fingerprint(path: &Path) -> String {
    let stamp = |p: &Path| {
        std::fs::metadata(p).map_or_else(
            |e| format!("unreadable ({e})"),
            |m| {
                let modified = m.modified().ok().map(|t| t.duration_since(UNIX_EPOCH));
                format!("{} bytes, modified {modified:?}", m.len())
            },
        )
    };
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !full.is_dir() {
        return format!("{}: {}", full.display(), stamp(&full));
    }
    let mut files: Vec<_> = std::fs::read_dir(&full)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        !name.starts_with('.') && !name.ends_with(".partial")
    });
    files.sort();
    let mut out = format!("{}/", full.display());
    for f in files {
        let _ = write!(out, "; {}: {}", f.display(), stamp(&f));
    }
    out
}
