//! datm-fsio: crash-safe writes, the one way every datm crate replaces a file.
//!
//! A file is written under a temporary name in its own directory, flushed to disk
//! (`fsync`), renamed onto its final name, and the directory is flushed too, so after a
//! crash a reader finds either the old complete file or the new complete one, never a
//! torn one. [`publish_dir`] does the same for a directory of files (checkpoints).
//! A [`Journal`] keeps the finished units of a long job as they finish, so that a job
//! that was stopped resumes.

#![forbid(unsafe_code)]

mod journal;

pub use journal::{Journal, Reopened};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed step of a crash-safe write, naming the step and the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct Error {
    /// What was being done, e.g. "rename a temporary file onto".
    pub action: &'static str,
    /// The file or directory at fault.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

/// Adds the step and the path to an I/O result.
trait Context<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, Error>;
}

impl<T> Context<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, Error> {
        self.map_err(|source| Error {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes `bytes` to `path` crash-safely, creating the parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_with(path, |tmp| {
        let mut f = File::create(tmp).at("create", tmp)?;
        f.write_all(bytes).at("write", tmp)
    })
}

/// Writes `path` crash-safely through `write`, which must create the file at the temporary
/// path it is given (for writers that take a path, such as safetensors'). The temporary file
/// is removed when `write` fails.
pub fn write_atomic_with<E: From<Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = parent(path);
    fs::create_dir_all(dir).at("create the directory", dir)?;
    let tmp = temporary_sibling(path);
    let written = write(&tmp).and_then(|()| Ok(sync_file(&tmp)?));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error {
            action: "rename a temporary file onto",
            path: path.to_path_buf(),
            source: e,
        }
        .into());
    }
    Ok(sync_dir(dir)?)
}

/// Moves the finished directory `tmp` onto `dest` crash-safely: flushes every file in
/// `tmp` and `tmp` itself, replaces `dest` (removing an older `dest` first), and flushes the
/// parent directory. `tmp` and `dest` must be in the same directory.
pub fn publish_dir(tmp: &Path, dest: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(tmp).at("list", tmp)? {
        let file = entry.at("list", tmp)?.path();
        if file.is_file() {
            sync_file(&file)?;
        }
    }
    sync_dir(tmp)?;
    if dest.exists() {
        fs::remove_dir_all(dest).at("remove the old", dest)?;
    }
    fs::rename(tmp, dest).at("rename a temporary directory onto", dest)?;
    sync_dir(parent(dest))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A hidden name next to `path`, unique within this process and among processes.
fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent(path).join(format!(".{name}.tmp{}-{n}", std::process::id()))
}

/// Flushes a file's data and metadata to disk.
fn sync_file(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .at("flush to disk", path)
}

/// Flushes a directory's entries to disk (Unix; other systems cannot open directories).
fn sync_dir(dir: &Path) -> Result<(), Error> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .at("flush to disk", dir)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces_leaving_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir.path().join("sub")), ["out.json"]);
    }

    #[test]
    fn a_failed_writer_keeps_the_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |tmp| {
            fs::write(tmp, b"half").unwrap();
            Err(Error {
                action: "write",
                path: tmp.to_path_buf(),
                source: io::Error::other("disk full"),
            })
        })
        .unwrap_err();
        assert_eq!(err.action, "write");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn errors_name_the_step_and_keep_the_io_source() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").unwrap();
        let err = write_atomic(&blocker.join("x.json"), b"{}").unwrap_err();
        assert!(
            err.to_string().starts_with("cannot create the directory"),
            "{err}"
        );
        assert!(err.to_string().contains("file"), "{err}");
        let source = std::error::Error::source(&err).unwrap();
        assert!(source.downcast_ref::<io::Error>().is_some());
    }

    #[test]
    fn a_directory_is_published_over_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, dest) = (dir.path().join(".ck.tmp"), dir.path().join("ck"));
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("stale"), b"1").unwrap();
        fs::create_dir(&tmp).unwrap();
        fs::write(tmp.join("state.json"), b"{}").unwrap();
        publish_dir(&tmp, &dest).unwrap();
        assert_eq!(names(dir.path()), ["ck"]);
        assert_eq!(names(&dest), ["state.json"]);
    }
}
