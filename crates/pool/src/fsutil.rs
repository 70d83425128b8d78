//! Small file helpers (crash-safe writes are `datm_fsio`'s).

use std::path::Path;

/// Whether a small file holds nothing but an empty JSON array (`[]`, maybe with spaces).
pub fn is_empty_json_array(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() <= 64 => std::fs::read_to_string(path)
            .map(|t| t.chars().filter(|c| !c.is_whitespace()).collect::<String>() == "[]")
            .unwrap_or(false),
        _ => false,
    }
}
