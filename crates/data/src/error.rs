//! The error type of this crate: every error names the file and, where it applies, the
//! line or entry, and says what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole.
    File,
    /// A 1-based line number.
    Line(usize),
    /// A 0-based entry index (JSON array element, catalog message).
    Entry(usize),
    /// A byte offset.
    Byte(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, ":{n}"),
            Location::Entry(n) => write!(f, ": entry {n}"),
            Location::Byte(n) => write!(f, ": byte {n}"),
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed (the cause is the error's source, so a chain
    /// printer shows it once).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content is not what was expected.
    #[error("{}{location}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        location: Location,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A request that cannot be carried out (bad option, unsupported direction).
    #[error("{0}")]
    Usage(String),
    /// Writing a file crash-safely failed (the step and the file are named).
    #[error(transparent)]
    Write(#[from] datm_fsio::Error),
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Invalid content in `path` at `location`.
    pub fn invalid(path: &Path, location: Location, message: impl Into<String>) -> DataError {
        DataError::Invalid {
            path: path.to_path_buf(),
            location,
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Reads a whole file.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Reads a whole file as UTF-8, naming the line of the first invalid byte.
pub fn read_utf8(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        DataError::invalid(
            path,
            Location::Line(line),
            format!("invalid UTF-8 at byte {at}; expected UTF-8 text"),
        )
    })
}

/// Writes a file crash-safely (temporary file, fsync, rename: [`datm_fsio`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(datm_fsio::write_atomic(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message and its sources as a chain printer (`{:#}` of anyhow) joins them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            out = format!("{out}: {s}");
            source = s.source();
        }
        out
    }

    #[test]
    fn an_io_error_names_the_file_and_its_cause_once() {
        let path = Path::new("/no/such/corpus.jsonl");
        let err = read_bytes(path).unwrap_err();
        let text = chain(&err);
        assert!(text.starts_with("/no/such/corpus.jsonl: "), "{text}");
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    }
}
