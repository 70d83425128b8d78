//! gettext catalogs: a msgfmt-compiled .mo against its .po source, both byte orders, and
//! whole-tree imports (locale mapping, code lists, malformed catalogs, duplicates, splits,
//! determinism).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datm_data::gettext::import::{extract, import_gettext, Filters, ImportOptions};
use datm_data::gettext::locale::Unmapped;
use datm_data::gettext::{mo, read_catalog, Message};
use datm_data::{write_layout, Format, Split};
use datm_lang::{Direction, Lang};

const FILTERS: Filters = Filters {
    min_words: 3,
    max_chars: 400,
};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data")
        .join(rel)
}

#[test]
fn msgfmt_mo_matches_its_po_source() {
    let po = read_catalog(&fixture("catalog.po")).unwrap();
    let mo = read_catalog(&fixture("catalog.mo")).unwrap();
    let (po_ex, mo_ex) = (extract(&po, FILTERS), extract(&mo, FILTERS));
    let (po_pairs, po_drops, mo_pairs) = (po_ex.pairs, po_ex.drops, mo_ex.pairs);
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(po_pairs.clone()), sorted(mo_pairs));
    assert_eq!(po_drops.fuzzy, 1);
    assert_eq!(po_drops.untranslated, 1);
    let want = [
        ("Open the file", "Открыть файл"),
        ("Copy %s to %s now", "Скопировать %s в %s сейчас"),
        ("%d file was deleted", "%d файл удалён"),
        ("%d files were deleted", "%d файлов удалено"),
        (
            "Read %<PRIuMAX> bytes from the file",
            "Прочитано %<PRIuMAX> байт из файла",
        ),
        (
            "A long message that spans several lines in the catalog",
            "Длинное сообщение, которое занимает несколько строк в каталоге",
        ),
    ];
    let got: Vec<(&str, &str)> = po_pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(got, want);
    // The context survives parsing but not extraction.
    let open = mo
        .messages
        .iter()
        .find(|m| m.msgid == "_Open the file")
        .unwrap();
    assert_eq!(open.context.as_deref(), Some("menu"));
}

#[test]
fn big_endian_mo_reads_like_little_endian() {
    let po = read_catalog(&fixture("catalog.po")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for be in [false, true] {
        let p = dir.path().join(format!("c{be}.mo"));
        std::fs::write(&p, mo::encode(&po.messages, be)).unwrap();
        let cat = read_catalog(&p).unwrap();
        assert_eq!(extract(&cat, FILTERS).pairs.len(), 6, "be={be}");
    }
}

fn msg(id: &str, s: &str) -> Message {
    Message {
        msgid: id.into(),
        msgstr: vec![s.into()],
        ..Message::default()
    }
}

fn header() -> Message {
    msg("", "Content-Type: text/plain; charset=UTF-8\n")
}

/// Writes `{root}/{locale}/LC_MESSAGES/{domain}.mo` (or `.po` text when `po` is given).
fn put(root: &Path, locale: &str, domain: &str, messages: &[Message]) {
    let dir = root.join(locale).join("LC_MESSAGES");
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = vec![header()];
    all.extend_from_slice(messages);
    std::fs::write(
        dir.join(format!("{domain}.mo")),
        mo::encode(&all, locale.len().is_multiple_of(2)),
    )
    .unwrap();
}

/// A small locale tree with every case import must handle.
fn build_tree(root: &Path) {
    let common: Vec<(&str, &str, &str, &str)> = vec![
        (
            "Open the selected file",
            "Ausgewählte Datei öffnen",
            "Ouvrir le fichier",
            "Abrir o arquivo",
        ),
        (
            "Save the _current document",
            "Aktuelles Dokument _speichern",
            "Enregistrer le document",
            "Salvar o documento",
        ),
        (
            "Quit the application now",
            "Anwendung jetzt beenden",
            "Quitter l'application",
            "Sair do aplicativo",
        ),
    ];
    let mut de = Vec::new();
    let mut fr = Vec::new();
    let mut pt_br = Vec::new();
    for i in 0..60 {
        let en = format!("Message number {i} for the test");
        de.push(msg(&en, &format!("Nachricht Nummer {i} für den Test")));
        fr.push(msg(&en, &format!("Message numéro {i} pour le test")));
        pt_br.push(msg(&en, &format!("Mensagem número {i} para o teste")));
    }
    for (en, d, f, p) in &common {
        de.push(msg(en, d));
        fr.push(msg(en, f));
        pt_br.push(msg(en, p));
    }
    put(root, "de", "app", &de);
    // Duplicates across catalogs: the most frequent translation wins.
    put(
        root,
        "de",
        "b",
        &[msg("Quit the application now", "Programm sofort verlassen")],
    );
    put(
        root,
        "de_DE",
        "c",
        &[msg("Quit the application now", "Anwendung jetzt beenden")],
    );
    put(root, "fr", "app", &fr);
    put(root, "pt_BR", "app", &pt_br);
    // pt is preferred over pt_BR for the sentences it has.
    put(
        root,
        "pt",
        "app",
        &[msg(
            "Open the selected file",
            "Abrir o ficheiro seleccionado",
        )],
    );
    put(
        root,
        "nb",
        "app",
        &[msg("Open the selected file", "Åpne den valgte filen")],
    );
    put(
        root,
        "zh_CN",
        "app",
        &[msg("Open the selected file", "打开所选文件(_O)")],
    );
    put(
        root,
        "sr@latin",
        "app",
        &[msg("Open the selected file", "Otvori izabranu datoteku")],
    );
    put(
        root,
        "en_GB",
        "app",
        &[msg("Open the selected file", "Open the selected file")],
    );
    put(
        root,
        "eo",
        "app",
        &[msg(
            "Open the selected file",
            "Malfermi la elektitan dosieron",
        )],
    );
    put(
        root,
        "de",
        "iso_639",
        &[msg(
            "Norwegian Bokmål language",
            "Norwegisch Bokmål Sprache",
        )],
    );
    // A malformed catalog is reported and skipped, not mixed in.
    std::fs::write(
        root.join("de/LC_MESSAGES/broken.mo"),
        b"\xde\x12\x04\x95 truncated",
    )
    .unwrap();
    // A copy under another locale category is not read twice.
    std::fs::create_dir_all(root.join("de/LC_TIME")).unwrap();
    std::fs::copy(
        root.join("de/LC_MESSAGES/b.mo"),
        root.join("de/LC_TIME/b.mo"),
    )
    .unwrap();
    // A broken link is reported, not fatal.
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        root.join("nowhere.mo"),
        root.join("de/LC_MESSAGES/dangling.mo"),
    )
    .unwrap();
    // A .po catalog in the tree.
    std::fs::create_dir_all(root.join("ru/LC_MESSAGES")).unwrap();
    std::fs::copy(
        fixture("catalog.po"),
        root.join("ru/LC_MESSAGES/fixture.po"),
    )
    .unwrap();
}

fn opts() -> ImportOptions {
    ImportOptions {
        valid_fraction: 0.2,
        test_fraction: 0.2,
        ..ImportOptions::default()
    }
}

fn lang(c: &str) -> Lang {
    Lang::from_code(c).unwrap()
}

#[test]
fn import_tree() {
    let root = tempfile::tempdir().unwrap();
    build_tree(root.path());
    let (corpus, report) = import_gettext(root.path(), &opts(), &|_| {}).unwrap();

    let failed: Vec<&str> = report.failed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(failed.len(), 2, "{:?}", report.failed);
    assert!(failed[0].ends_with("dangling.mo"), "{failed:?}");
    assert!(failed[1].ends_with("broken.mo"), "{failed:?}");
    let reason = &report.failed[1].reason;
    assert!(
        reason.contains("broken.mo") && reason.contains("too short"),
        "{reason}"
    );
    assert_eq!(report.code_lists_skipped, 1);
    assert_eq!(report.other_categories_skipped, 1);
    assert_eq!(
        report.unmapped_locales["sr@latin"].reason,
        Unmapped::Variant
    );
    assert_eq!(report.unmapped_locales["en_GB"].reason, Unmapped::English);
    assert_eq!(
        report.unmapped_locales["eo"].reason,
        Unmapped::NotAPaperLanguage
    );

    let codes: Vec<&str> = corpus.langs().iter().map(|l| l.code()).collect();
    assert_eq!(codes, ["de", "fr", "no", "pt", "ru", "zh"]);

    let all = |l: &str| -> BTreeMap<String, String> {
        Split::ALL
            .iter()
            .flat_map(|&s| corpus.pairs(Direction::to_english(lang(l)), s).to_vec())
            .map(|p| (p.en, p.xx))
            .collect()
    };
    let de = all("de");
    assert_eq!(de.len(), 63);
    assert_eq!(de["Quit the application now"], "Anwendung jetzt beenden");
    assert_eq!(
        de["Save the current document"],
        "Aktuelles Dokument speichern"
    );
    let pt = all("pt");
    assert_eq!(
        pt["Open the selected file"],
        "Abrir o ficheiro seleccionado"
    );
    assert_eq!(pt["Quit the application now"], "Sair do aplicativo");
    assert_eq!(all("zh")["Open the selected file"], "打开所选文件");
    assert_eq!(report.langs["de"].conflicts, 1);
    assert_eq!(report.langs["pt"].locales, ["pt", "pt_BR"]);

    // No English sentence is in two splits, across all languages.
    let mut seen: BTreeMap<String, Split> = BTreeMap::new();
    for l in corpus.langs() {
        for s in Split::ALL {
            for p in corpus.pairs(Direction::to_english(l), s) {
                let prev = seen.insert(p.en.clone(), s);
                assert!(
                    prev.is_none_or(|x| x == s),
                    "{:?} in {prev:?} and {s:?}",
                    p.en
                );
            }
        }
    }
    for s in Split::ALL {
        assert!(
            !corpus.pairs("de-en".parse().unwrap(), s).is_empty(),
            "de {s} is empty"
        );
    }
}

#[test]
fn import_is_deterministic_to_the_byte() {
    let root = tempfile::tempdir().unwrap();
    build_tree(root.path());
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let (corpus, report) = import_gettext(root.path(), &opts(), &|_| {}).unwrap();
        let out = tempfile::tempdir().unwrap();
        let files = write_layout(&corpus, out.path(), Format::Json).unwrap();
        let mut bytes: Vec<(PathBuf, Vec<u8>)> = files
            .iter()
            .map(|p| {
                (
                    p.strip_prefix(out.path()).unwrap().to_path_buf(),
                    std::fs::read(p).unwrap(),
                )
            })
            .collect();
        bytes.push(("report".into(), serde_json::to_vec(&report).unwrap()));
        outputs.push(bytes);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(outputs[0]
        .iter()
        .any(|(p, _)| p == Path::new("deen/test.en-de.json")));
}

#[test]
fn caps_and_language_filter() {
    let root = tempfile::tempdir().unwrap();
    build_tree(root.path());
    let capped = ImportOptions {
        langs: Some(vec![lang("fr")]),
        max_test: Some(2),
        max_valid: Some(1),
        ..opts()
    };
    let (corpus, report) = import_gettext(root.path(), &capped, &|_| {}).unwrap();
    assert_eq!(corpus.langs(), [lang("fr")]);
    let fr_en: Direction = "fr-en".parse().unwrap();
    assert_eq!(corpus.pairs(fr_en, Split::Test).len(), 2);
    assert_eq!(corpus.pairs(fr_en, Split::Valid).len(), 1);
    let s = &report.langs["fr"];
    assert_eq!(s.train + s.valid + s.test + s.capped, 63);
    assert!(report.other_langs_skipped > 0);
    let bad = ImportOptions {
        valid_fraction: 0.7,
        test_fraction: 0.5,
        ..opts()
    };
    assert!(import_gettext(root.path(), &bad, &|_| {}).is_err());
}

/// Regression (issue 13): a `.mo` whose `Plural-Forms` expression is nested 100,000 deep
/// overflowed the stack and aborted the whole import. Its plural rule is now refused with a
/// warning naming the catalog, and the other catalogs are imported.
#[test]
fn deeply_nested_plural_rule_is_refused_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let good = [msg("Open the selected file", "Ausgewählte Datei öffnen")];
    put(root.path(), "de", "good", &good);
    let deep = format!(
        "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural={}n{};\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let dir = root.path().join("fr/LC_MESSAGES");
    std::fs::create_dir_all(&dir).unwrap();
    let hostile = [
        msg("", &deep),
        msg("Open the selected file", "Ouvrir le fichier"),
    ];
    std::fs::write(dir.join("hostile.mo"), mo::encode(&hostile, false)).unwrap();
    let (corpus, report) = import_gettext(root.path(), &opts(), &|_| {}).unwrap();
    assert_eq!(report.catalogs_read, 2);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let w = &report.warnings[0];
    assert!(w.path.ends_with("hostile.mo"), "{w:?}");
    assert!(w.reason.contains("nested deeper than"), "{w:?}");
    assert_eq!(corpus.langs(), [lang("de"), lang("fr")]);
}

/// Regression (issue 13): an import whose catalogs were all unreadable failed writing its
/// report (`…/import-report.json: No such file or directory`). It now fails up front, naming
/// each catalog and why it was refused.
#[test]
fn import_with_no_readable_catalog_names_them() {
    let root = tempfile::tempdir().unwrap();
    for locale in ["de", "fr"] {
        let dir = root.path().join(locale).join("LC_MESSAGES");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bad.mo"), b"not a catalog at all").unwrap();
    }
    let err = import_gettext(root.path(), &opts(), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("none of the 2 catalogs could be read"),
        "{err}"
    );
    assert!(err.contains("de/LC_MESSAGES/bad.mo") && err.contains("fr/LC_MESSAGES/bad.mo"));
    assert!(err.contains("too short for a .mo header"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = import_gettext(empty.path(), &opts(), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no catalogs to import"), "{err}");
}
