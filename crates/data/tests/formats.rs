//! Corpus readers/writers against files Python's json.dump wrote (tests/fixtures/data/alma,
//! made by tools/make_data_fixtures.py), round trips through every format, and the errors.

use std::path::{Path, PathBuf};

use datm_data::{read_layout, read_set, write_layout, Corpus, Format, Pair, Split};
use datm_lang::{Direction, Lang};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data")
        .join(rel)
}

fn d(s: &str) -> Direction {
    s.parse().unwrap()
}

fn files_under(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = walk(root)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn alma_layout_is_read_and_rewritten_byte_identically() {
    let corpus = read_layout(&fixture("alma")).unwrap();
    let de = Lang::from_code("de").unwrap();
    assert_eq!(corpus.langs(), [de]);
    assert_eq!(corpus.pairs(d("de-en"), Split::Train).len(), 6);
    assert_eq!(corpus.pairs(d("en-de"), Split::Train).len(), 6);
    assert_eq!(corpus.pairs(d("en-de"), Split::Valid).len(), 2);
    // The two test files differ, so each direction keeps its own set.
    let t1 = corpus.pairs(d("de-en"), Split::Test);
    let t2 = corpus.pairs(d("en-de"), Split::Test);
    assert_eq!(t1[0].en, "Tab\there, newline\nthere too");
    assert_eq!(t2[0].xx, "Emoji 😀 und \u{2028} Trenner");
    let ex = corpus.examples(d("en-de"), Split::Test);
    assert_eq!(ex[0].src, "emoji 😀 and \u{2028} separator");

    let out = tempfile::tempdir().unwrap();
    write_layout(&corpus, out.path(), Format::Json).unwrap();
    assert_eq!(files_under(out.path()), files_under(&fixture("alma")));
}

#[test]
fn round_trip_through_every_format() {
    let mut corpus = Corpus::new();
    let fr = Lang::from_code("fr").unwrap();
    let pairs = vec![
        Pair::new("Bonjour « monde »", "Hello world"),
        Pair::new("Ça va ?", "All good?"),
    ];
    corpus.set(fr, Split::Train, pairs.clone()).unwrap();
    corpus.set(fr, Split::Test, pairs[..1].to_vec()).unwrap();
    corpus
        .set_directed(d("en-fr"), Split::Valid, pairs[1..].to_vec())
        .unwrap();
    for format in Format::ALL {
        let dir = tempfile::tempdir().unwrap();
        write_layout(&corpus, dir.path(), format).unwrap();
        let back = read_layout(dir.path()).unwrap();
        assert_eq!(back, corpus, "{format:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let written = write_layout(&corpus, dir.path(), Format::Text).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert!(
        names.contains(&"fren/train.fr-en.fr".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"fren/test.en-fr.en".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"fren/valid.en-fr.fr".to_string()),
        "{names:?}"
    );
}

#[test]
fn line_formats_refuse_segments_they_cannot_hold() {
    let corpus = read_layout(&fixture("alma")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = write_layout(&corpus, dir.path(), Format::Tsv)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train.de-en.tsv: entry 2") && e.contains("'\\t'"),
        "{e}"
    );
}

#[test]
fn read_errors_name_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        b"[{\"translation\": {\"de\": \"a\xff\", \"en\": \"b\"}}]",
    )
    .unwrap();
    let e = read_set(Format::Json, std::slice::from_ref(&p), d("de-en"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.json:1: invalid UTF-8 at byte 26"), "{e}");

    std::fs::write(&p, "[{\"translation\": {\"de\": \"a\"}}]").unwrap();
    let e = read_set(Format::Json, std::slice::from_ref(&p), d("de-en"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.json: entry 0: \"translation\" has no key \"en\""),
        "{e}"
    );

    std::fs::write(&p, "{\"translation\": {}}").unwrap();
    let e = read_set(Format::Json, std::slice::from_ref(&p), d("de-en"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a JSON array"), "{e}");

    let (a, b) = (dir.path().join("x.de"), dir.path().join("x.en"));
    std::fs::write(&a, "eins\nzwei\ndrei\n").unwrap();
    std::fs::write(&b, "one\ntwo\n").unwrap();
    let e = read_set(Format::Text, &[a.clone(), b.clone()], d("de-en"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.en: has 2 lines but") && e.contains("x.de has 3"),
        "{e}"
    );
    std::fs::write(&b, "one\ntwo\nthree").unwrap();
    let pairs = read_set(Format::Text, &[a, b], d("de-en")).unwrap();
    assert_eq!(pairs[2], Pair::new("drei", "three"));

    assert!(read_set(Format::Json, &[p], d("de-fr"))
        .unwrap_err()
        .to_string()
        .contains("English-centric"));
    assert!(read_layout(&dir.path().join("nope")).is_err());
}
