//! [`Journal`]: the finished units of a long job, kept on disk as they finish.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{write_atomic, Context, Error};

/// How a journal's first line starts; the job's key follows.
const HEADER: &str = "datm-journal 1 ";

/// At most this long between a record's write and its flush to disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// An append-only record file of a long job: its first line names the job (a key that
/// changes whenever anything that determines the job's results changes), every later line
/// is one finished unit of work. A record is written as it is appended, so a job that is
/// stopped (killed, crashed, interrupted) and started again reads back the units it had
/// finished; it is flushed to disk within [`SYNC_EVERY`] (and when the journal is
/// dropped), so that a machine's crash loses at most the last second's records.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// When the file was last flushed to disk.
    synced: Instant,
}

/// What [`Journal::open`] found.
#[derive(Debug)]
pub struct Reopened {
    /// The journal, open for appending.
    pub journal: Journal,
    /// The records of an earlier run of the same job, in the order they were appended.
    pub records: Vec<String>,
    /// Whether a file of another job (or no journal at all) was replaced.
    pub replaced: bool,
}

impl Journal {
    /// Opens the journal at `path` for the job `key` (one line): the records an earlier run
    /// of the same job appended, a torn last line (a write cut short) dropped from the file;
    /// otherwise a new journal, replacing whatever file was at `path`.
    pub fn open(path: &Path, key: &str) -> Result<Reopened, Error> {
        let header = format!("{HEADER}{}", key.replace('\n', " "));
        let earlier = match fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if let Some(bytes) = &earlier {
            // Complete lines only: the last one may have been cut short by a crash.
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let rest = std::str::from_utf8(&bytes[..complete])
                .ok()
                .and_then(|text| text.strip_prefix(&header))
                .and_then(|rest| rest.strip_prefix('\n'));
            if let Some(rest) = rest {
                let records = rest.lines().map(str::to_string).collect();
                let journal = Journal::append_to(path)?;
                journal.file.set_len(complete as u64).at("truncate", path)?;
                journal.file.sync_data().at("flush to disk", path)?;
                return Ok(Reopened {
                    journal,
                    records,
                    replaced: false,
                });
            }
        }
        write_atomic(path, format!("{header}\n").as_bytes())?;
        let journal = Journal::append_to(path)?;
        Ok(Reopened {
            journal,
            records: Vec::new(),
            replaced: earlier.is_some(),
        })
    }

    /// The journal file at `path`, opened for appending.
    fn append_to(path: &Path) -> Result<Journal, Error> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .at("open", path)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            synced: Instant::now(),
        })
    }

    /// Appends one record (a line: it must hold no newline); flushes the file to disk if
    /// the last flush is [`SYNC_EVERY`] old.
    pub fn append(&mut self, record: &str) -> Result<(), Error> {
        if record.contains('\n') {
            return Err(Error {
                action: "append a record with a newline to",
                path: self.path.clone(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        let line = format!("{record}\n");
        self.file
            .write_all(line.as_bytes())
            .at("append to", &self.path)?;
        if self.synced.elapsed() >= SYNC_EVERY {
            self.file.sync_data().at("flush to disk", &self.path)?;
            self.synced = Instant::now();
        }
        Ok(())
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the journal: the job's output is written.
    pub fn remove(self) -> Result<(), Error> {
        fs::remove_file(&self.path).at("remove", &self.path)
    }
}

impl Drop for Journal {
    /// Flushes the records to disk (a journal is dropped when its job stops on an error).
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_restart_of_the_same_job_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl.partial");
        let opened = Journal::open(&path, "job A").unwrap();
        assert!(opened.records.is_empty() && !opened.replaced);
        let mut journal = opened.journal;
        journal.append("{\"index\": 0}").unwrap();
        journal.append("{\"index\": 2}").unwrap();
        drop(journal);
        let again = Journal::open(&path, "job A").unwrap();
        assert_eq!(again.records, ["{\"index\": 0}", "{\"index\": 2}"]);
        assert!(!again.replaced);
        let mut journal = again.journal;
        journal.append("{\"index\": 1}").unwrap();
        drop(journal);
        assert_eq!(Journal::open(&path, "job A").unwrap().records.len(), 3);
        // Another job's journal is replaced, never read.
        let other = Journal::open(&path, "job B").unwrap();
        assert!(other.records.is_empty() && other.replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "datm-journal 1 job B\n");
        other.journal.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, "datm-journal 1 k\none\ntw").unwrap();
        let opened = Journal::open(&path, "k").unwrap();
        assert_eq!(opened.records, ["one"]);
        let mut journal = opened.journal;
        journal.append("two").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "datm-journal 1 k\none\ntwo\n"
        );
        assert!(journal.append("three\nfour").is_err());
        // A torn header, or bytes that are not text, start the job over.
        fs::write(&path, "datm-journ").unwrap();
        assert!(Journal::open(&path, "k").unwrap().replaced);
        fs::write(&path, b"datm-journal 1 k\n\xff\n").unwrap();
        let opened = Journal::open(&path, "k").unwrap();
        assert!(opened.records.is_empty() && opened.replaced);
    }

    #[test]
    fn an_unwritable_place_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").unwrap();
        let err = Journal::open(&blocker.join("out.partial"), "k").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
