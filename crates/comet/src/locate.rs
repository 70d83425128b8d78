//! Finding the encoder's `config.json` and `tokenizer.json`, which COMET checkpoints do not
//! carry: an explicit `--encoder DIR`, else `pretrained_model` as a local folder, else the
//! HF hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Files an encoder folder must hold.
pub const ENCODER_FILES: [&str; 2] = ["config.json", "tokenizer.json"];

fn complete(dir: &Path) -> bool {
    ENCODER_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The HF hub cache folder the environment points at.
pub fn hub_cache() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

/// The snapshot of `name` in a hub cache that holds the encoder files: the one `refs/main`
/// names, else the first complete one in name order.
fn cached_snapshot(cache: &Path, name: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", name.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(rev.trim());
        if complete(&dir) {
            return Some(dir);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    dirs.into_iter().find(|d| complete(d))
}

/// The folder holding the encoder files for `pretrained_model`.
pub fn encoder_dir(pretrained_model: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if complete(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "--encoder {}: needs {} (the tokenizer and config of `{pretrained_model}`)",
            dir.display(),
            ENCODER_FILES.join(" and ")
        );
    }
    let local = Path::new(pretrained_model);
    if local.is_dir() && complete(local) {
        return Ok(local.to_path_buf());
    }
    let cache = hub_cache();
    if let Some(dir) = cache
        .as_deref()
        .and_then(|c| cached_snapshot(c, pretrained_model))
    {
        return Ok(dir);
    }
    let where_ = match &cache {
        Some(c) => format!(
            "{}/models--{}/snapshots/<revision>/",
            c.display(),
            pretrained_model.replace('/', "--")
        ),
        None => "the HF hub cache ($HF_HOME/hub)".into(),
    };
    bail!(
        "the COMET encoder `{pretrained_model}` was not found: fetch its {} (e.g. \
         `huggingface-cli download {pretrained_model} {}`) into {where_}, or pass \
         --encoder DIR with those files",
        ENCODER_FILES.join(" and "),
        ENCODER_FILES.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_refs_main_snapshot_and_names_missing_files() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--enc");
        for rev in ["aaa", "bbb"] {
            let d = repo.join("snapshots").join(rev);
            std::fs::create_dir_all(&d).unwrap();
            for f in ENCODER_FILES {
                std::fs::write(d.join(f), "{}").unwrap();
            }
        }
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "bbb\n").unwrap();
        let got = cached_snapshot(cache.path(), "org/enc").unwrap();
        assert!(got.ends_with("snapshots/bbb"), "{got:?}");
        let e = encoder_dir("org/enc", Some(cache.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json and tokenizer.json"), "{e}");
    }
}
