//! Differential test: the .mo parser against Python's `gettext.GNUTranslations` on the
//! machine's real catalogs (a deterministic sample of /usr/share/locale). When Python or
//! the catalogs are missing it is skipped, or fails under `CI=true` (datm-testkit).
//! `DATM_PYTHON` names the interpreter.

use std::path::{Path, PathBuf};
use std::process::Command;

use datm_data::gettext::read_catalog;
use serde_json::Value;

/// One catalog entry as Python keys it: `("ctx\x04msgid", plural index or -1, text)`.
type Row = (String, i64, String);

/// Our parse in Python's shape, sorted.
fn ours(path: &Path) -> Vec<Row> {
    let cat = read_catalog(path).unwrap_or_else(|e| panic!("{e}"));
    let mut rows = Vec::new();
    for m in cat.messages {
        let key = match &m.context {
            Some(c) => format!("{c}\u{4}{}", m.msgid),
            None => m.msgid.clone(),
        };
        if m.msgid_plural.is_some() {
            for (i, s) in m.msgstr.iter().enumerate() {
                rows.push((key.clone(), i as i64, s.clone()));
            }
        } else {
            rows.push((key, -1, m.msgstr.join("\0")));
        }
    }
    rows.sort();
    rows
}

/// The number of system-dependent strings a .mo header declares (0 before revision x.1).
fn sysdep_count(path: &Path) -> usize {
    let b = std::fs::read(path).unwrap();
    let le = b[..4] == [0xde, 0x12, 0x04, 0x95];
    let u32_at = |at: usize| {
        let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    if u32_at(4) & 0xffff == 0 {
        0
    } else {
        u32_at(36) as usize
    }
}

#[test]
fn mo_parser_matches_python_gettext() {
    let Some(all) = datm_testkit::system_catalogs() else {
        return;
    };
    // Every 7th catalog: a few hundred files across languages, charsets and byte orders.
    let sample: Vec<&PathBuf> = all.iter().step_by(7).collect();
    let Some(python) = datm_testkit::python_with("gettext, json") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data/dump_mo.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(&sample)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{python} {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let output = out.stdout;
    let reference: serde_json::Map<String, Value> = serde_json::from_slice(&output).unwrap();
    let mut compared = 0;
    for path in sample {
        let rows = match &reference[&path.display().to_string()] {
            Value::Array(rows) => rows,
            other => {
                eprintln!("python refused {}: {other}", path.display());
                continue;
            }
        };
        let mut theirs: Vec<Row> = rows
            .iter()
            .map(|r| {
                let text = |v: &Value| v.as_str().unwrap().to_string();
                (text(&r[0]), r[1].as_i64().unwrap_or(-1), text(&r[2]))
            })
            .collect();
        theirs.sort();
        // Python's gettext does not read revision-1 system-dependent strings (`%<PRIuMAX>`,
        // `%Id`): every row of Python's must be ours, and our extra rows must come from
        // exactly the header's count of such strings (tests/po_msgunfmt.rs checks their text).
        let mine = ours(path);
        let missing: Vec<&Row> = theirs
            .iter()
            .filter(|r| mine.binary_search(r).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "{}: not read: {missing:?}",
            path.display()
        );
        let mut extra: Vec<&str> = mine
            .iter()
            .filter(|r| theirs.binary_search(r).is_err())
            .map(|r| r.0.as_str())
            .collect();
        extra.dedup();
        assert_eq!(
            extra.len(),
            sysdep_count(path),
            "{}: {extra:?}",
            path.display()
        );
        compared += 1;
    }
    assert!(compared > 0);
    eprintln!("compared {compared} catalogs with Python's gettext");
}
