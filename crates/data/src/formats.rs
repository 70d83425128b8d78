//! Readers and writers: ALMA JSON, JSONL, aligned plain text and TSV, one set at a time or as
//! a whole ALMA-style directory layout.
//!
//! ALMA JSON is what ALMA's data files hold and what Python's
//! `json.dump(data, f, ensure_ascii=False)` writes: one line, `", "` and `": "` separators,
//! UTF-8 unescaped, no trailing newline; the source language's key first. The writers here
//! reproduce that byte for byte, so output is deterministic and diff-able against Python.
//!
//! The layout (ALMA's `--mmt_data_path`) is one folder `{xx}en` per language holding
//! `{split}.{src}-{tgt}.{ext}`: `train.de-en.json`, `valid.de-en.json`, `test.de-en.json`,
//! `test.en-de.json`. The same names with `.jsonl` and `.tsv`, and the two-file text form
//! `train.de-en.de` + `train.de-en.en` (as in ALMA's `human_written_data`), are read too.

use std::path::{Path, PathBuf};

use datm_lang::{Direction, Lang};
use serde_json::Value;

use crate::corpus::{english_centric, Corpus, Pair, Split};
use crate::error::{read_utf8, write_atomic, DataError, Location, Result};

/// On-disk format of one set of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A JSON array of `{"translation": {src: …, tgt: …}}` (ALMA).
    Json,
    /// One `{"translation": {…}}` object per line.
    Jsonl,
    /// `src<TAB>tgt` per line.
    Tsv,
    /// Two aligned files, one segment per line.
    Text,
}

impl Format {
    /// Every format, in the order a layout reader prefers them.
    pub const ALL: [Format; 4] = [Format::Json, Format::Jsonl, Format::Tsv, Format::Text];

    /// Parses `json`, `jsonl`, `tsv` or `text`.
    pub fn from_name(name: &str) -> Result<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" | "alma" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "tsv" => Ok(Format::Tsv),
            "text" | "txt" => Ok(Format::Text),
            _ => Err(DataError::Usage(format!(
                "unknown format {name:?}; expected json, jsonl, tsv or text"
            ))),
        }
    }

    /// The file(s) holding the `split` set of `direction` in the layout folder `dir`.
    pub fn set_paths(self, dir: &Path, split: Split, direction: Direction) -> Vec<PathBuf> {
        let stem = format!("{split}.{direction}");
        match self {
            Format::Json => vec![dir.join(format!("{stem}.json"))],
            Format::Jsonl => vec![dir.join(format!("{stem}.jsonl"))],
            Format::Tsv => vec![dir.join(format!("{stem}.tsv"))],
            Format::Text => vec![
                dir.join(format!("{stem}.{}", direction.src)),
                dir.join(format!("{stem}.{}", direction.tgt)),
            ],
        }
    }
}

/// The layout folder of `lang` under `root`: `{root}/{xx}en`.
pub fn lang_dir(root: &Path, lang: Lang) -> PathBuf {
    root.join(format!("{}en", lang.code()))
}

// ---------------------------------------------------------------- JSON / JSONL

/// Appends `s` as a JSON string the way Python's `json.dumps(s, ensure_ascii=False)` does.
fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly the characters Python escapes with ensure_ascii=False:
    // '"', '\\', and U+0000–U+001F (\b \f \n \r \t short, others \u00xx in lowercase hex).
    out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
}

/// One `{"translation": {src: …, tgt: …}}` object in Python's default formatting.
fn translation_object(out: &mut String, direction: Direction, pair: &Pair) {
    let (src, tgt) = pair.oriented(direction);
    out.push_str("{\"translation\": {");
    push_json_str(out, direction.src.code());
    out.push_str(": ");
    push_json_str(out, src);
    out.push_str(", ");
    push_json_str(out, direction.tgt.code());
    out.push_str(": ");
    push_json_str(out, tgt);
    out.push_str("}}");
}

/// ALMA JSON for `pairs` in `direction`: byte-identical to Python's
/// `json.dump(data, f, ensure_ascii=False)`.
pub fn to_alma_json(direction: Direction, pairs: &[Pair]) -> String {
    let mut out = String::with_capacity(pairs.len() * 96 + 2);
    out.push('[');
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        translation_object(&mut out, direction, p);
    }
    out.push(']');
    out
}

/// JSONL for `pairs` in `direction`: one object per line, each line ending in `\n`.
pub fn to_jsonl(direction: Direction, pairs: &[Pair]) -> String {
    let mut out = String::with_capacity(pairs.len() * 96);
    for p in pairs {
        translation_object(&mut out, direction, p);
        out.push('\n');
    }
    out
}

/// Extracts the pair from one parsed `{"translation": {…}}` value.
fn pair_from_value(
    value: &Value,
    direction: Direction,
    path: &Path,
    location: Location,
) -> Result<Pair> {
    let bad = |msg: String| DataError::invalid(path, location.clone(), msg);
    let obj = value.as_object().ok_or_else(|| {
        bad(format!(
            "expected an object {{\"translation\": {{…}}}}, found {}",
            kind(value)
        ))
    })?;
    let tr = obj
        .get("translation")
        .ok_or_else(|| bad("missing key \"translation\"".into()))?
        .as_object()
        .ok_or_else(|| bad("\"translation\" is not an object".into()))?;
    let text = |lang: Lang| -> Result<String> {
        match tr.get(lang.code()) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(bad(format!(
                "\"translation\".\"{lang}\" is {}, expected a string",
                kind(other)
            ))),
            None => Err(bad(format!(
                "\"translation\" has no key \"{lang}\" (keys: {})",
                tr.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ))),
        }
    };
    Ok(Pair::from_oriented(
        direction,
        text(direction.src)?,
        text(direction.tgt)?,
    ))
}

/// A short name of a JSON value's type, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses ALMA JSON text (`path` names it in errors).
pub fn parse_alma_json(text: &str, direction: Direction, path: &Path) -> Result<Vec<Pair>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        DataError::invalid(path, Location::Line(e.line()), format!("invalid JSON: {e}"))
    })?;
    let Value::Array(items) = value else {
        return Err(DataError::invalid(
            path,
            Location::File,
            format!(
                "expected a JSON array of {{\"translation\": …}}, found {}",
                kind(&value)
            ),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| pair_from_value(v, direction, path, Location::Entry(i)))
        .collect()
}

/// Parses JSONL text (blank lines are skipped).
pub fn parse_jsonl(text: &str, direction: Direction, path: &Path) -> Result<Vec<Pair>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line).map_err(|e| {
                DataError::invalid(path, Location::Line(i + 1), format!("invalid JSON: {e}"))
            })?;
            pair_from_value(&value, direction, path, Location::Line(i + 1))
        })
        .collect()
}

// ---------------------------------------------------------------- text / TSV

/// Splits text into lines: `\n` separated, a trailing `\r` dropped, no line after a final `\n`.
fn text_lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// Parses TSV text: exactly one tab per line, source then target.
pub fn parse_tsv(text: &str, direction: Direction, path: &Path) -> Result<Vec<Pair>> {
    text_lines(text)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let mut cols = line.split('\t');
            match (cols.next(), cols.next(), cols.next()) {
                (Some(s), Some(t), None) => {
                    Ok(Pair::from_oriented(direction, s.to_string(), t.to_string()))
                }
                _ => Err(DataError::invalid(
                    path,
                    Location::Line(i + 1),
                    format!(
                        "expected 2 tab-separated columns ({} then {}), found {}",
                        direction.src,
                        direction.tgt,
                        line.split('\t').count()
                    ),
                )),
            }
        })
        .collect()
}

/// Reads two aligned plain-text files (one segment per line); their line counts must match.
pub fn read_aligned(src_path: &Path, tgt_path: &Path, direction: Direction) -> Result<Vec<Pair>> {
    let src = read_utf8(src_path)?;
    let tgt = read_utf8(tgt_path)?;
    parse_aligned([&src, &tgt], direction, [src_path, tgt_path])
}

/// Pairs the lines of two aligned texts, source then target (`paths` name them in errors);
/// their line counts must match. [`read_aligned`] and Flores reading use it.
pub fn parse_aligned(
    [src, tgt]: [&str; 2],
    direction: Direction,
    [src_path, tgt_path]: [&Path; 2],
) -> Result<Vec<Pair>> {
    let (s, t) = (text_lines(src), text_lines(tgt));
    if s.len() != t.len() {
        return Err(DataError::invalid(
            tgt_path,
            Location::File,
            format!(
                "has {} lines but {} has {}; aligned files must have the same number of lines",
                t.len(),
                src_path.display(),
                s.len()
            ),
        ));
    }
    Ok(s.into_iter()
        .zip(t)
        .map(|(a, b)| Pair::from_oriented(direction, a.to_string(), b.to_string()))
        .collect())
}

/// Checks that no segment of `pairs` contains a character the line format cannot hold.
fn check_segments(pairs: &[Pair], forbidden: &[char], path: &Path) -> Result<()> {
    for (i, p) in pairs.iter().enumerate() {
        let found = [&p.xx, &p.en]
            .into_iter()
            .find_map(|s| s.chars().find(|c| forbidden.contains(c)));
        if let Some(c) = found {
            return Err(DataError::invalid(
                path,
                Location::Entry(i),
                format!("segment contains {c:?}, which this line-based format cannot hold"),
            ));
        }
    }
    Ok(())
}

/// TSV for `pairs` in `direction`; fails on segments with tabs or line breaks.
pub fn to_tsv(direction: Direction, pairs: &[Pair], path: &Path) -> Result<String> {
    check_segments(pairs, &['\t', '\n', '\r'], path)?;
    let mut out = String::new();
    for p in pairs {
        let (s, t) = p.oriented(direction);
        out.push_str(s);
        out.push('\t');
        out.push_str(t);
        out.push('\n');
    }
    Ok(out)
}

/// One side of `pairs` as plain text lines; fails on segments with line breaks.
fn to_text_side(pairs: &[Pair], english: bool, path: &Path) -> Result<String> {
    check_segments(pairs, &['\n', '\r'], path)?;
    let mut out = String::new();
    for p in pairs {
        out.push_str(if english { &p.en } else { &p.xx });
        out.push('\n');
    }
    Ok(out)
}

// ---------------------------------------------------------------- Flores-style folders

/// The FLORES-200 file code of a language (`deu_Latn`, `zho_Hans`, `nob_Latn`).
pub fn flores200_code(lang: Lang) -> &'static str {
    match lang.code() {
        "en" => "eng_Latn",
        "da" => "dan_Latn",
        "nl" => "nld_Latn",
        "de" => "deu_Latn",
        "is" => "isl_Latn",
        "no" => "nob_Latn",
        "sv" => "swe_Latn",
        "af" => "afr_Latn",
        "ca" => "cat_Latn",
        "ro" => "ron_Latn",
        "gl" => "glg_Latn",
        "it" => "ita_Latn",
        "pt" => "por_Latn",
        "es" => "spa_Latn",
        "bg" => "bul_Cyrl",
        "mk" => "mkd_Cyrl",
        "sr" => "srp_Cyrl",
        "uk" => "ukr_Cyrl",
        "ru" => "rus_Cyrl",
        "id" => "ind_Latn",
        "ms" => "zsm_Latn",
        "th" => "tha_Thai",
        "vi" => "vie_Latn",
        "mg" => "plt_Latn",
        "fr" => "fra_Latn",
        "hu" => "hun_Latn",
        "el" => "ell_Grek",
        "cs" => "ces_Latn",
        "pl" => "pol_Latn",
        "lt" => "lit_Latn",
        "lv" => "lvs_Latn",
        "ka" => "kat_Geor",
        "zh" => "zho_Hans",
        "ja" => "jpn_Jpan",
        "ko" => "kor_Hang",
        "fi" => "fin_Latn",
        "et" => "est_Latn",
        "gu" => "guj_Gujr",
        "hi" => "hin_Deva",
        "mr" => "mar_Deva",
        "ne" => "npi_Deva",
        "ur" => "urd_Arab",
        "az" => "azj_Latn",
        "kk" => "kaz_Cyrl",
        "ky" => "kir_Cyrl",
        "tr" => "tur_Latn",
        "uz" => "uzn_Latn",
        "ar" => "arb_Arab",
        "he" => "heb_Hebr",
        "fa" => "pes_Arab",
        other => unreachable!("every paper language has a FLORES-200 code; {other} missing"),
    }
}

/// Finds a language's file of a Flores-style folder: `{dir}/{code}.{split}`, or with the
/// FLORES-200 code (`{dir}/deu_Latn.devtest`), or either inside `{dir}/{split}/`.
pub fn find_flores_file(dir: &Path, lang: Lang, split_name: &str) -> Result<PathBuf> {
    let names = [lang.code(), flores200_code(lang)].map(|c| format!("{c}.{split_name}"));
    let candidates: Vec<PathBuf> = [dir.to_path_buf(), dir.join(split_name)]
        .iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            DataError::invalid(
                dir,
                Location::File,
                format!(
                    "no {} file for {lang}; looked for {}",
                    split_name,
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// Reads the English-centric pairs of `lang` from a Flores-style folder (its file aligned
/// with English's).
pub fn read_flores(dir: &Path, lang: Lang, split_name: &str) -> Result<Vec<Pair>> {
    let xx = find_flores_file(dir, lang, split_name)?;
    let en = find_flores_file(dir, Lang::ENGLISH, split_name)?;
    read_aligned(&xx, &en, Direction::to_english(lang))
}

// ---------------------------------------------------------------- sets and layouts

/// Reads one set in `format` from `paths` (one path, or source then target for text).
pub fn read_set(format: Format, paths: &[PathBuf], direction: Direction) -> Result<Vec<Pair>> {
    english_centric(direction)?;
    let first = paths
        .first()
        .ok_or_else(|| DataError::Usage("no input file given".into()))?;
    match format {
        Format::Json => parse_alma_json(&read_utf8(first)?, direction, first),
        Format::Jsonl => parse_jsonl(&read_utf8(first)?, direction, first),
        Format::Tsv => parse_tsv(&read_utf8(first)?, direction, first),
        Format::Text => {
            let second = paths.get(1).ok_or_else(|| {
                DataError::Usage("the text format needs two files: source and target".into())
            })?;
            read_aligned(first, second, direction)
        }
    }
}

/// Writes one set in `format` to `paths` (as [`Format::set_paths`] returns them).
pub fn write_set(
    format: Format,
    paths: &[PathBuf],
    direction: Direction,
    pairs: &[Pair],
) -> Result<()> {
    english_centric(direction)?;
    let path = |i: usize| {
        paths
            .get(i)
            .ok_or_else(|| DataError::Usage(format!("format {format:?} needs {} paths", i + 1)))
    };
    match format {
        Format::Json => write_atomic(path(0)?, to_alma_json(direction, pairs).as_bytes()),
        Format::Jsonl => write_atomic(path(0)?, to_jsonl(direction, pairs).as_bytes()),
        Format::Tsv => write_atomic(path(0)?, to_tsv(direction, pairs, path(0)?)?.as_bytes()),
        Format::Text => {
            for (i, lang) in [direction.src, direction.tgt].into_iter().enumerate() {
                let p = path(i)?;
                write_atomic(p, to_text_side(pairs, lang.is_english(), p)?.as_bytes())?;
            }
            Ok(())
        }
    }
}

/// Finds and reads the `split` set of `direction` in a layout folder, in the first format
/// present (JSON, JSONL, TSV, text).
fn read_layout_set(dir: &Path, split: Split, direction: Direction) -> Result<Option<Vec<Pair>>> {
    for format in Format::ALL {
        let paths = format.set_paths(dir, split, direction);
        if paths.iter().all(|p| p.is_file()) {
            return read_set(format, &paths, direction).map(Some);
        }
    }
    Ok(None)
}

/// Reads an ALMA-style layout: every `{xx}en` folder of a known language under `root`.
///
/// Train and valid sets are read from `{split}.xx-en.*` and serve both directions (as in
/// ALMA); a `{split}.en-xx.*` file makes a direction-specific set. Test sets are
/// direction-specific unless both files hold the same pairs.
pub fn read_layout(root: &Path) -> Result<Corpus> {
    if !root.is_dir() {
        return Err(DataError::Usage(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut corpus = Corpus::new();
    for lang in datm_lang::non_english() {
        let dir = lang_dir(root, lang);
        if dir.is_dir() {
            read_lang_dir(&mut corpus, &dir, lang)?;
        }
    }
    Ok(corpus)
}

/// Reads one language's folder into `corpus`.
fn read_lang_dir(corpus: &mut Corpus, dir: &Path, lang: Lang) -> Result<()> {
    let (to_en, from_en) = (Direction::to_english(lang), Direction::from_english(lang));
    for split in Split::ALL {
        let a = read_layout_set(dir, split, to_en)?;
        let b = read_layout_set(dir, split, from_en)?;
        match (a, b) {
            (Some(a), Some(b)) if a == b => corpus.set(lang, split, a)?,
            (Some(a), None) if split != Split::Test => corpus.set(lang, split, a)?,
            (a, b) => {
                if let Some(a) = a {
                    corpus.set_directed(to_en, split, a)?;
                }
                if let Some(b) = b {
                    corpus.set_directed(from_en, split, b)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `corpus` as an ALMA-style layout under `root` in `format`.
///
/// Shared train/valid sets go to `{split}.xx-en`; a shared test set is written for both
/// directions (`test.xx-en` and `test.en-xx`), as ALMA expects one test file per direction;
/// direction-specific sets go to their own direction's file. Returns the files written.
pub fn write_layout(corpus: &Corpus, root: &Path, format: Format) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for lang in corpus.langs() {
        let dir = lang_dir(root, lang);
        let (to_en, from_en) = (Direction::to_english(lang), Direction::from_english(lang));
        for split in Split::ALL {
            let mut sets: Vec<(Direction, &[Pair])> = Vec::new();
            if let Some(p) = corpus.shared(lang, split) {
                sets.push((to_en, p));
                if split == Split::Test && corpus.directed(from_en, split).is_none() {
                    sets.push((from_en, p));
                }
            }
            for d in [to_en, from_en] {
                if let Some(p) = corpus.directed(d, split) {
                    sets.retain(|(x, _)| *x != d);
                    sets.push((d, p));
                }
            }
            for (d, pairs) in sets {
                let paths = format.set_paths(&dir, split, d);
                write_set(format, &paths, d, pairs)?;
                written.extend(paths);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Direction {
        s.parse().unwrap()
    }

    #[test]
    fn alma_json_matches_python_json_dump() {
        let pairs = vec![
            Pair::new("Straße \"x\"\t\u{1}", "Street \\ n\n"),
            Pair::new("日本", "Japan"),
        ];
        let s = to_alma_json(d("de-en"), &pairs);
        assert_eq!(
            s,
            r#"[{"translation": {"de": "Straße \"x\"\t\u0001", "en": "Street \\ n\n"}}, {"translation": {"de": "日本", "en": "Japan"}}]"#
        );
        let s2 = to_alma_json(d("en-de"), &pairs[1..]);
        assert_eq!(s2, r#"[{"translation": {"en": "Japan", "de": "日本"}}]"#);
        assert_eq!(to_alma_json(d("de-en"), &[]), "[]");
        let back = parse_alma_json(&s, d("de-en"), Path::new("x.json")).unwrap();
        assert_eq!(back, pairs);
    }

    #[test]
    fn json_errors_name_entry_and_key() {
        let p = Path::new("t.json");
        let e = parse_alma_json(
            r#"[{"translation": {"de": "a", "en": "b"}}, {"x": 1}]"#,
            d("de-en"),
            p,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "t.json: entry 1: missing key \"translation\"");
        let e = parse_alma_json(
            r#"[{"translation": {"fr": "a", "en": "b"}}]"#,
            d("de-en"),
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("entry 0") && e.contains("no key \"de\""), "{e}");
        let e = parse_alma_json("[{", d("de-en"), p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.json:1: invalid JSON"), "{e}");
        let e = parse_jsonl(
            "{\"translation\": {\"de\": \"a\", \"en\": 3}}\n",
            d("de-en"),
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.json:1:") && e.contains("expected a string"),
            "{e}"
        );
    }

    #[test]
    fn flores_folders() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("devtest");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("eng_Latn.devtest"), "One.\nTwo.\n").unwrap();
        std::fs::write(sub.join("deu_Latn.devtest"), "Eins.\nZwei.\n").unwrap();
        std::fs::write(dir.path().join("fr.devtest"), "Un.\n").unwrap();
        let de = Lang::from_code("de").unwrap();
        let pairs = read_flores(dir.path(), de, "devtest").unwrap();
        assert_eq!(
            pairs,
            [Pair::new("Eins.", "One."), Pair::new("Zwei.", "Two.")]
        );
        let fr = Lang::from_code("fr").unwrap();
        let e = read_flores(dir.path(), fr, "devtest")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has 2 lines but") && e.contains("fr.devtest has 1"),
            "{e}"
        );
        let e = read_flores(dir.path(), Lang::from_code("ja").unwrap(), "devtest")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no devtest file for ja") && e.contains("jpn_Jpan.devtest"),
            "{e}"
        );
        assert!(datm_lang::all().all(|l| flores200_code(l).len() == 8));
    }

    /// JSON nesting is bounded by serde_json's recursion limit (128): 100,000 brackets give
    /// an error naming the file, not a stack overflow.
    #[test]
    fn deep_json_nesting_is_refused() {
        let deep = "[".repeat(100_000);
        let p = Path::new("deep.json");
        let e = parse_alma_json(&deep, d("de-en"), p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deep.json") && e.contains("recursion limit"),
            "{e}"
        );
        let e = parse_jsonl(&deep, d("de-en"), p).unwrap_err().to_string();
        assert!(
            e.contains("deep.json:1") && e.contains("recursion limit"),
            "{e}"
        );
    }

    #[test]
    fn tsv_and_text_lines() {
        let p = Path::new("t.tsv");
        let pairs = parse_tsv("Hello\tHallo\r\nBye\tTschüss\n", d("en-de"), p).unwrap();
        assert_eq!(pairs[1], Pair::new("Tschüss", "Bye"));
        let e = parse_tsv("a\tb\nc\n", d("en-de"), p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.tsv:2: expected 2 tab-separated columns"),
            "{e}"
        );
        let out = to_tsv(d("en-de"), &pairs, p).unwrap();
        assert_eq!(out, "Hello\tHallo\nBye\tTschüss\n");
        assert!(to_tsv(d("en-de"), &[Pair::new("a\tb", "c")], p).is_err());
        assert_eq!(text_lines(""), Vec::<&str>::new());
        assert_eq!(text_lines("a\n\nb"), vec!["a", "", "b"]);
    }
}
