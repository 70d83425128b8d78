//! The SVG figures: drawn when their data is there (and well-formed XML), skipped with a
//! note when it is not.

mod common;

use common::*;
use datm_report::{write_figures, Report, ReportOptions};
use datm_results::SystemResults;

/// A sweep over the number of languages (2 and 4) of multilingual and separate, plus the
/// usual systems at 4 languages in another experiment.
fn sweep() -> Vec<SystemResults> {
    let mut systems = Vec::new();
    for (point, langs) in [("languages=2", &LANGS[..2]), ("languages=4", &LANGS[..])] {
        for name in ["multilingual", "separate"] {
            systems.push(system("sweep", point, name, langs, true));
        }
    }
    systems
}

/// The trimmed text of every `<text>` element.
fn svg_texts<'a>(doc: &'a roxmltree::Document<'_>) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect()
}

fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc
}

#[test]
fn every_figure_is_well_formed_svg() {
    let r = Report::build(&experiment("e", true), &ReportOptions::default()).unwrap();
    let figs = r.figures();
    let names: Vec<&str> = figs.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "delta-separate-vs-multilingual.svg",
            "delta-datm-vs-dat.svg",
            "quality-vs-parameters.svg"
        ]
    );
    for f in &figs.figures {
        let doc = parse_svg(&f.svg);
        let texts = svg_texts(&doc);
        assert!(!texts.is_empty(), "{}: labels are SVG text", f.name);
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("rect") || n.has_tag_name("circle")),
            "{}: has marks",
            f.name
        );
        if f.name.starts_with("delta-separate") {
            for label in ["G1", "G2", "all", "high", "mid", "low", "XX→En", "En→XX"] {
                assert!(texts.contains(&label), "{label} in {texts:?}");
            }
        }
        if f.name.starts_with("quality-vs-parameters") {
            for label in ["multilingual", "separate", "dat", "datm"] {
                assert!(texts.contains(&label), "{label} in {texts:?}");
            }
        }
    }
    // One experiment, no sweep: the languages figure is skipped, with a note.
    assert_eq!(figs.skipped.len(), 1);
    assert!(
        figs.skipped[0].note.contains("two or more language counts"),
        "{:?}",
        figs.skipped
    );
}

#[test]
fn the_languages_figure_draws_one_line_per_system_with_separate_dotted() {
    let r = Report::build(&sweep(), &ReportOptions::default()).unwrap();
    let figs = r.figures();
    let f = figs
        .figures
        .iter()
        .find(|f| f.name == "quality-vs-languages.svg")
        .unwrap_or_else(|| panic!("{:?}", figs.skipped));
    let doc = parse_svg(&f.svg);
    let texts = svg_texts(&doc);
    for label in [
        "XX→En",
        "En→XX",
        "all",
        "multilingual",
        "separate",
        "languages",
    ] {
        assert!(texts.contains(&label), "{label} in {texts:?}");
    }
    // Three panels with a solid multilingual line each; separate is dashed: many short
    // segments rather than one polyline.
    let polylines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(polylines > 3 * 2, "{polylines}");
    // multilingual − ... comparisons pair within each sweep point.
    let titles: Vec<String> = r.sections[0]
        .comparisons
        .iter()
        .map(|c| c.title())
        .collect();
    assert_eq!(
        titles,
        [
            "separate@languages=2 − multilingual@languages=2",
            "separate@languages=4 − multilingual@languages=4"
        ]
    );
}

#[test]
fn figures_without_data_are_skipped_not_drawn_empty() {
    let one: Vec<SystemResults> = vec![system("e", "", "dat", &LANGS, false)];
    let r = Report::build(&one, &ReportOptions::default()).unwrap();
    let figs = r.figures();
    assert!(
        figs.figures.is_empty(),
        "{:?}",
        figs.figures.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    let notes: Vec<&str> = figs.skipped.iter().map(|s| s.note.as_str()).collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("no comparison"), "{notes:?}");
    assert!(
        notes[1].contains("two or more language counts"),
        "{notes:?}"
    );
    assert!(notes[2].contains("fewer than two systems"), "{notes:?}");
    let html = r.to_html();
    assert!(!html.contains("<svg"), "no empty charts");
    assert!(
        html.contains("fewer than two systems"),
        "the notes are in the page"
    );
}

#[test]
fn figures_are_written_to_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let r = Report::build(&sweep(), &ReportOptions::default()).unwrap();
    let figs = r.figures();
    let written = write_figures(&dir.path().join("figs"), &figs).unwrap();
    assert_eq!(written.len(), figs.figures.len());
    for p in written {
        parse_svg(&std::fs::read_to_string(&p).unwrap());
    }
}

#[test]
fn the_html_page_is_self_contained_xml_friendly_markup() {
    let r = Report::build(&experiment("e", true), &ReportOptions::default()).unwrap();
    let html = r.to_html();
    assert_eq!(html.matches("<svg").count(), r.figures().figures.len());
    for external in ["http://", "https://", "<script", "<link", "@import", "url("] {
        let outside_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside_svg_ns.contains(external), "{external}");
    }
    assert!(html.contains("<table>") && html.contains("<style>"));
}

#[test]
fn without_a_sweep_the_languages_figure_uses_the_adapters_language_counts() {
    let mut multi = system("e", "", "multilingual", &LANGS, false);
    for o in &mut multi.outputs {
        o.adapter_languages = Some(LANGS.len() as u32);
    }
    let separate = system("e", "", "separate", &LANGS, false);
    let r = Report::build(&[multi, separate], &ReportOptions::default()).unwrap();
    let figs = r.figures();
    let f = figs
        .figures
        .iter()
        .find(|f| f.name == "quality-vs-languages.svg")
        .unwrap_or_else(|| panic!("{:?}", figs.skipped));
    assert!(f.title.contains("in the adapter"), "{}", f.title);
    let doc = parse_svg(&f.svg);
    let texts = svg_texts(&doc);
    for label in [
        "languages in the adapter",
        "multilingual",
        "separate",
        "XX→En",
    ] {
        assert!(texts.contains(&label), "{label} in {texts:?}");
    }
    // One point per system and direction class, at 1 (separate) and 4 (multilingual).
    let circles = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert!(circles >= 4, "{circles}");
}
