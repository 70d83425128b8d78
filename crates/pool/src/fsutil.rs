//! Small file helpers: atomic writes and cheap emptiness checks.

use std::io::Write;
use std::path::Path;

use crate::PoolError;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so readers never see a half-written file (stage markers, manifests, reports).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PoolError> {
    let io =
        |what: &str, e: std::io::Error| PoolError::Io(format!("{what} {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating a temporary file for", e))?;
    f.write_all(bytes).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("renaming a temporary file onto", e))
}

/// Whether a small file holds nothing but an empty JSON array (`[]`, maybe with spaces).
pub fn is_empty_json_array(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() <= 64 => std::fs::read_to_string(path)
            .map(|t| t.chars().filter(|c| !c.is_whitespace()).collect::<String>() == "[]")
            .unwrap_or(false),
        _ => false,
    }
}
