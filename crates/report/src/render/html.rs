//! One self-contained HTML page: the tables, the figures as inline SVG, a little CSS; no
//! scripts and no external resources, so it opens offline.

use std::fmt::Write as _;

use crate::doc::{Block, Table};
use crate::figures::Figures;

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #1b1b1b; background: #fff; }
h1 { border-bottom: 2px solid #355c7d; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
th, td { padding: 3px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-top: 2px solid #333; border-bottom: 1px solid #333; }
tbody tr:last-child td { border-bottom: 2px solid #333; }
tbody tr:nth-child(even) { background: #f4f6f8; }
.scroll { overflow-x: auto; }
figure { margin: 1em 0 2em; }
figure svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #444; }
.note { color: #6a4b00; }
";

/// The document as an HTML page with the figures of each section inline.
pub(crate) fn html(doc: &[Block], title: &str, figures: &Figures) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(t, &mut out),
            Block::Figures(section) => section_figures(figures, *section, &mut out),
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn table(t: &Table, out: &mut String) {
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in &t.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn section_figures(figures: &Figures, section: usize, out: &mut String) {
    let mine: Vec<_> = figures
        .figures
        .iter()
        .filter(|f| f.section == section)
        .collect();
    let skipped: Vec<_> = figures
        .skipped
        .iter()
        .filter(|s| s.section == section)
        .collect();
    if mine.is_empty() && skipped.is_empty() {
        return;
    }
    out.push_str("<h3>Figures</h3>\n");
    for f in mine {
        let _ = writeln!(
            out,
            "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
            f.svg.trim(),
            escape(&f.title)
        );
    }
    for s in skipped {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(&s.note));
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
