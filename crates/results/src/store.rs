//! The SQLite database behind [`Store`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

use crate::record::{MetricScore, Output, Params, SystemInfo, SystemResults, TestSet};
use crate::ResultsError;

/// The schema version this code writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS systems (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    point TEXT NOT NULL,
    system TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    languages INTEGER,
    adapters INTEGER,
    lora_params INTEGER,
    base_params INTEGER,
    UNIQUE (experiment, point, system)
);
CREATE TABLE IF NOT EXISTS test_sets (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sources TEXT NOT NULL,
    refs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY,
    system_id INTEGER NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    test_set TEXT NOT NULL REFERENCES test_sets(hash),
    adapter TEXT,
    adapter_languages INTEGER,
    hypotheses TEXT NOT NULL,
    UNIQUE (system_id, direction, test_set)
);
CREATE TABLE IF NOT EXISTS scores (
    output_id INTEGER NOT NULL REFERENCES outputs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    score REAL NOT NULL,
    signature TEXT NOT NULL,
    segments TEXT,
    stats TEXT,
    PRIMARY KEY (output_id, metric)
);
";

/// How long a writer waits for another process's lock (concurrent Slurm jobs).
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// An open results database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating when absent) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, ResultsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ResultsError::Format {
                path: path.to_path_buf(),
                message: format!("creating folder {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| ResultsError::Sqlite {
            path: path.to_path_buf(),
            context: "opening".into(),
            source,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens an existing database for reading; a missing file is an error.
    pub fn open_existing(path: &Path) -> Result<Store, ResultsError> {
        if !path.is_file() {
            return Err(ResultsError::Format {
                path: path.to_path_buf(),
                message: "no such file".into(),
            });
        }
        Store::open(path)
    }

    /// Opens an existing store read-only (reports): a missing file, a file that is not an
    /// SQLite database and an SQLite database without datm's schema (a foreign one) are
    /// errors naming the file, and nothing is ever written to it.
    pub fn open_read_only(path: &Path) -> Result<Store, ResultsError> {
        if !path.is_file() {
            return Err(ResultsError::Format {
                path: path.to_path_buf(),
                message: "no such file".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| ResultsError::Sqlite {
                path: path.to_path_buf(),
                context: "opening read-only".into(),
                source,
            })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.sql(
            "setting the busy timeout",
            store.conn.busy_timeout(BUSY_TIMEOUT),
        )?;
        match store.schema_version()? {
            0 => Err(ResultsError::Format {
                path: store.path.clone(),
                message: "not a datm results store (an SQLite database without datm's schema)"
                    .into(),
            }),
            v => store.check_version(v).map(|()| store),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql<T>(&self, context: &str, r: rusqlite::Result<T>) -> Result<T, ResultsError> {
        r.map_err(|source| ResultsError::Sqlite {
            path: self.path.clone(),
            context: context.to_string(),
            source,
        })
    }

    fn init(&self) -> Result<(), ResultsError> {
        self.sql(
            "setting the busy timeout",
            self.conn.busy_timeout(BUSY_TIMEOUT),
        )?;
        self.sql(
            "enabling foreign keys",
            self.conn.execute_batch("PRAGMA foreign_keys = ON;"),
        )?;
        match self.schema_version()? {
            0 => self.sql(
                "creating the schema",
                self.conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )),
            ),
            v => self.check_version(v),
        }
    }

    /// `PRAGMA user_version`: 0 for a database without datm's schema.
    fn schema_version(&self) -> Result<i64, ResultsError> {
        self.sql(
            "reading the schema version (is it an SQLite database?)",
            self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)),
        )
    }

    /// Accepts the schema version this code reads; refuses any other.
    fn check_version(&self, version: i64) -> Result<(), ResultsError> {
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        Err(ResultsError::Format {
            path: self.path.clone(),
            message: format!(
                "schema version {version}; this datm reads version {SCHEMA_VERSION} (a newer datm wrote it?)"
            ),
        })
    }

    /// Records a system and its outputs in one transaction. Recording the same system
    /// (experiment, point, name) again replaces its settings, and the outputs and scores
    /// of the same (direction, test set); other outputs it has are kept.
    pub fn record(&mut self, results: &SystemResults) -> Result<(), ResultsError> {
        self.check(results)?;
        let path = self.path.clone();
        let fail = |context: &str| {
            let path = path.clone();
            let context = context.to_string();
            move |source| ResultsError::Sqlite {
                path,
                context,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail("starting a transaction"))?;
        let label = results.info.label();
        let system_id = upsert_system(&tx, &results.info).map_err(fail(&label))?;
        for o in &results.outputs {
            upsert_output(&tx, system_id, o).map_err(fail(&format!(
                "{label} {} {}",
                o.direction, o.test_set.name
            )))?;
        }
        tx.commit().map_err(fail("committing"))
    }

    fn check(&self, results: &SystemResults) -> Result<(), ResultsError> {
        let invalid = |message: String| ResultsError::Invalid {
            path: self.path.clone(),
            message,
        };
        for o in &results.outputs {
            let n = o.test_set.sources.len();
            let what = format!(
                "{} {} {}",
                results.info.label(),
                o.direction,
                o.test_set.name
            );
            if o.test_set.references.len() != n || o.hypotheses.len() != n {
                return Err(invalid(format!(
                    "{what}: {n} sources, {} references, {} hypotheses",
                    o.test_set.references.len(),
                    o.hypotheses.len()
                )));
            }
            if let Some(s) = o.scores.iter().find(|s| !score_is_consistent(s, n)) {
                return Err(invalid(format!(
                    "{what}: {} has a non-finite score, or segment scores or statistics not one finite row per segment ({n})",
                    s.metric
                )));
            }
        }
        Ok(())
    }

    /// Every system in the store with its outputs, ordered by experiment, point and the
    /// order systems were first recorded.
    pub fn systems(&self) -> Result<Vec<SystemResults>, ResultsError> {
        let rows = self.sql("reading systems", self.read_systems())?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, info) in rows {
            let outputs = self.read_outputs(id, &info.label())?;
            out.push(SystemResults { info, outputs });
        }
        Ok(out)
    }

    fn read_systems(&self) -> rusqlite::Result<Vec<(i64, SystemInfo)>> {
        let mut st = self.conn.prepare(
            "SELECT id, experiment, point, system, config_hash, languages, adapters, \
             lora_params, base_params FROM systems ORDER BY experiment, point, id",
        )?;
        let rows = st.query_map([], |r| {
            let params = match (r.get::<_, Option<u32>>(6)?, r.get(7)?, r.get(8)?) {
                (Some(adapters), Some(lora), Some(base)) => Some(Params {
                    adapters,
                    lora: i64_to_u64(lora),
                    base: i64_to_u64(base),
                }),
                _ => None,
            };
            Ok((
                r.get(0)?,
                SystemInfo {
                    experiment: r.get(1)?,
                    point: r.get(2)?,
                    system: r.get(3)?,
                    config_hash: r.get(4)?,
                    languages: r.get(5)?,
                    params,
                },
            ))
        })?;
        rows.collect()
    }

    fn read_outputs(&self, system_id: i64, label: &str) -> Result<Vec<Output>, ResultsError> {
        let raw = self.sql(
            &format!("reading the outputs of {label}"),
            self.read_output_rows(system_id),
        )?;
        raw.into_iter()
            .map(|row| self.decode_output(row, label))
            .collect()
    }

    fn read_output_rows(&self, system_id: i64) -> rusqlite::Result<Vec<RawOutput>> {
        let mut st = self.conn.prepare(
            "SELECT o.id, o.direction, o.adapter, o.adapter_languages, o.hypotheses, \
             t.name, t.sources, t.refs FROM outputs o JOIN test_sets t ON t.hash = o.test_set \
             WHERE o.system_id = ?1 ORDER BY o.direction, t.name",
        )?;
        let rows = st.query_map([system_id], |r| {
            Ok(RawOutput {
                id: r.get(0)?,
                direction: r.get(1)?,
                adapter: r.get(2)?,
                adapter_languages: r.get(3)?,
                hypotheses: r.get(4)?,
                test_name: r.get(5)?,
                sources: r.get(6)?,
                refs: r.get(7)?,
                scores: Vec::new(),
            })
        })?;
        let mut out: Vec<RawOutput> = rows.collect::<rusqlite::Result<_>>()?;
        let mut st = self.conn.prepare(
            "SELECT metric, score, signature, segments, stats FROM scores WHERE output_id = ?1 \
             ORDER BY metric",
        )?;
        for o in &mut out {
            o.scores = st
                .query_map([o.id], |r| {
                    Ok(RawScore {
                        metric: r.get(0)?,
                        score: r.get(1)?,
                        signature: r.get(2)?,
                        segments: r.get(3)?,
                        stats: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
        }
        Ok(out)
    }

    fn decode_output(&self, row: RawOutput, label: &str) -> Result<Output, ResultsError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| ResultsError::Format {
            path: self.path.clone(),
            message: format!("{label} {}: {what}: {e}", row.direction),
        };
        let json = |what: &str, text: &str| -> Result<Vec<String>, ResultsError> {
            serde_json::from_str(text).map_err(|e| bad(what, &e))
        };
        let direction = row.direction.parse().map_err(|e| bad("direction", &e))?;
        let mut scores = Vec::with_capacity(row.scores.len());
        for s in &row.scores {
            let what = |part: &str| format!("{} {part}", s.metric);
            scores.push(MetricScore {
                metric: s.metric.clone(),
                score: s.score,
                signature: s.signature.clone(),
                segments: decode_opt(s.segments.as_deref())
                    .map_err(|e| bad(&what("segment scores"), &e))?,
                stats: decode_opt(s.stats.as_deref())
                    .map_err(|e| bad(&what("segment statistics"), &e))?,
            });
        }
        Ok(Output {
            direction,
            test_set: TestSet {
                name: row.test_name.clone(),
                sources: json("test sources", &row.sources)?,
                references: json("test references", &row.refs)?,
            },
            adapter: row.adapter.clone(),
            adapter_languages: row.adapter_languages,
            hypotheses: json("hypotheses", &row.hypotheses)?,
            scores,
        })
    }
}

/// One `outputs` row joined with its test set, before JSON decoding.
struct RawOutput {
    id: i64,
    direction: String,
    adapter: Option<String>,
    adapter_languages: Option<u32>,
    hypotheses: String,
    test_name: String,
    sources: String,
    refs: String,
    scores: Vec<RawScore>,
}

/// One `scores` row before JSON decoding.
struct RawScore {
    metric: String,
    score: f64,
    signature: String,
    segments: Option<String>,
    stats: Option<String>,
}

/// A finite score with finite segment scores and statistics, one per segment, when given.
fn score_is_consistent(s: &MetricScore, n: usize) -> bool {
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    s.score.is_finite()
        && s.segments
            .as_ref()
            .is_none_or(|v| v.len() == n && finite(v))
        && s.stats
            .as_ref()
            .is_none_or(|v| v.len() == n && v.iter().all(|r| finite(r)))
}

/// Decodes an optional JSON column.
fn decode_opt<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
) -> Result<Option<T>, serde_json::Error> {
    text.map(serde_json::from_str).transpose()
}

fn i64_to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u64_to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn upsert_system(tx: &Transaction, info: &SystemInfo) -> rusqlite::Result<i64> {
    let p = info.params;
    tx.execute(
        "INSERT INTO systems (experiment, point, system, config_hash, languages, adapters, \
         lora_params, base_params) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (experiment, point, system) DO UPDATE SET config_hash = excluded.config_hash, \
         languages = excluded.languages, adapters = excluded.adapters, \
         lora_params = excluded.lora_params, base_params = excluded.base_params",
        params![
            info.experiment,
            info.point,
            info.system,
            info.config_hash,
            info.languages,
            p.map(|p| p.adapters),
            p.map(|p| u64_to_i64(p.lora)),
            p.map(|p| u64_to_i64(p.base)),
        ],
    )?;
    tx.query_row(
        "SELECT id FROM systems WHERE experiment = ?1 AND point = ?2 AND system = ?3",
        params![info.experiment, info.point, info.system],
        |r| r.get(0),
    )
}

/// JSON of segment numbers (finite: [`Store::record`] checks them first).
fn encode<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("finite numbers serialize")
}

fn upsert_output(tx: &Transaction, system_id: i64, o: &Output) -> rusqlite::Result<()> {
    let hash = o.test_set.hash();
    let to_json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    tx.execute(
        "INSERT OR IGNORE INTO test_sets (hash, name, sources, refs) VALUES (?1, ?2, ?3, ?4)",
        params![
            hash,
            o.test_set.name,
            to_json(&o.test_set.sources),
            to_json(&o.test_set.references)
        ],
    )?;
    let direction = o.direction.to_string();
    tx.execute(
        "INSERT INTO outputs (system_id, direction, test_set, adapter, adapter_languages, hypotheses) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (system_id, direction, test_set) DO UPDATE SET \
         adapter = excluded.adapter, adapter_languages = excluded.adapter_languages, \
         hypotheses = excluded.hypotheses",
        params![
            system_id,
            direction,
            hash,
            o.adapter,
            o.adapter_languages,
            to_json(&o.hypotheses)
        ],
    )?;
    let output_id: i64 = tx.query_row(
        "SELECT id FROM outputs WHERE system_id = ?1 AND direction = ?2 AND test_set = ?3",
        params![system_id, direction, hash],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM scores WHERE output_id = ?1", [output_id])?;
    for s in &o.scores {
        tx.execute(
            "INSERT INTO scores (output_id, metric, score, signature, segments, stats) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                output_id,
                s.metric,
                s.score,
                s.signature,
                s.segments.as_ref().map(encode),
                s.stats.as_ref().map(encode),
            ],
        )?;
    }
    Ok(())
}

impl Store {
    /// The config hash recorded for (experiment, point, system), if that system exists.
    pub fn config_hash(
        &self,
        experiment: &str,
        point: &str,
        system: &str,
    ) -> Result<Option<String>, ResultsError> {
        self.sql(
            "looking up a system",
            self.conn
                .query_row(
                    "SELECT config_hash FROM systems WHERE experiment = ?1 AND point = ?2 AND system = ?3",
                    params![experiment, point, system],
                    |r| r.get(0),
                )
                .optional(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(dir: &str, hyps: &[&str], score: f64) -> Output {
        let n = hyps.len();
        Output {
            direction: dir.parse().unwrap(),
            test_set: TestSet {
                name: "test".into(),
                sources: (0..n).map(|i| format!("src {i}")).collect(),
                references: (0..n).map(|i| format!("ref {i}")).collect(),
            },
            adapter: Some("xx-en.de".into()),
            adapter_languages: Some(1),
            hypotheses: hyps.iter().map(|s| s.to_string()).collect(),
            scores: vec![MetricScore {
                metric: "chrf".into(),
                score,
                signature: "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0".into(),
                segments: Some(vec![score; n]),
                stats: Some(vec![vec![1.0, 2.0, 3.0]; n]),
            }],
        }
    }

    fn system(name: &str, outputs: Vec<Output>) -> SystemResults {
        SystemResults {
            info: SystemInfo {
                experiment: "e".into(),
                point: String::new(),
                system: name.into(),
                config_hash: "abc".into(),
                languages: Some(2),
                params: Some(Params {
                    adapters: 3,
                    lora: 1000,
                    base: 270_000_000,
                }),
            },
            outputs,
        }
    }

    fn count(store: &Store, table: &str) -> i64 {
        store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn round_trip_and_idempotent_rerecording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let dat = system("dat", vec![output("de-en", &["a", "b"], 50.0)]);
        let multi = system("multilingual", vec![output("de-en", &["a", "c"], 40.0)]);
        {
            let mut s = Store::open(&path).unwrap();
            s.record(&dat).unwrap();
            s.record(&multi).unwrap();
            s.record(&dat).unwrap();
            assert_eq!(count(&s, "systems"), 2);
            assert_eq!(count(&s, "outputs"), 2);
            assert_eq!(
                count(&s, "test_sets"),
                1,
                "the same test set is stored once"
            );
            assert_eq!(count(&s, "scores"), 2);
        }
        let s = Store::open_existing(&path).unwrap();
        let back = s.systems().unwrap();
        assert_eq!(back, vec![dat.clone(), multi]);
        assert_eq!(
            s.config_hash("e", "", "dat").unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(s.config_hash("e", "", "separate").unwrap(), None);
    }

    #[test]
    fn rerecording_replaces_scores_and_keeps_other_directions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut s = Store::open(&path).unwrap();
        s.record(&system("dat", vec![output("de-en", &["a"], 50.0)]))
            .unwrap();
        s.record(&system("dat", vec![output("en-de", &["x"], 30.0)]))
            .unwrap();
        s.record(&system("dat", vec![output("de-en", &["z"], 55.0)]))
            .unwrap();
        let back = s.systems().unwrap();
        assert_eq!(back.len(), 1);
        let outs = &back[0].outputs;
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].direction.to_string(), "de-en");
        assert_eq!(outs[0].hypotheses, vec!["z"]);
        assert_eq!(outs[0].score("chrf").unwrap().score, 55.0);
        assert_eq!(count(&s, "scores"), 2);
    }

    #[test]
    fn inconsistent_records_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut s = Store::open(&path).unwrap();
        let mut bad = output("de-en", &["a", "b"], 50.0);
        bad.hypotheses.pop();
        let err = s
            .record(&system("dat", vec![output("en-de", &["x"], 1.0), bad]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dat de-en test: 2 sources, 2 references, 1 hypotheses"),
            "{err}"
        );
        assert!(err.contains("r.sqlite"), "{err}");
        assert_eq!(
            count(&s, "systems"),
            0,
            "nothing of a refused record is kept"
        );
        let mut nan = output("de-en", &["a"], f64::NAN);
        nan.scores[0].score = f64::NAN;
        assert!(s.record(&system("dat", vec![nan])).is_err());
    }

    #[test]
    fn foreign_files_and_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, b"this is not a database at all, just some text").unwrap();
        let err = Store::open(&junk).err().unwrap().to_string();
        assert!(err.contains("junk.sqlite"), "{err}");
        let newer = dir.path().join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = Store::open(&newer).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        let missing = dir.path().join("missing.sqlite");
        assert!(Store::open_existing(&missing).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn read_only_opening_refuses_foreign_files_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER);")
            .unwrap();
        let before = std::fs::read(&foreign).unwrap();
        let err = Store::open_read_only(&foreign).err().unwrap().to_string();
        assert!(
            err.contains("foreign.sqlite") && err.contains("not a datm results store"),
            "{err}"
        );
        assert_eq!(std::fs::read(&foreign).unwrap(), before, "left untouched");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"this is not a database at all, just some text").unwrap();
        let err = Store::open_read_only(&text).err().unwrap().to_string();
        assert!(err.contains("notes.txt"), "{err}");
        let missing = dir.path().join("missing.sqlite");
        let err = Store::open_read_only(&missing).err().unwrap().to_string();
        assert!(err.contains("missing.sqlite: no such file"), "{err}");
        assert!(!missing.exists());
        let path = dir.path().join("r.sqlite");
        let dat = system("dat", vec![output("de-en", &["a"], 50.0)]);
        Store::open(&path).unwrap().record(&dat).unwrap();
        let ro = Store::open_read_only(&path).unwrap();
        assert_eq!(ro.systems().unwrap(), vec![dat]);
    }
}
