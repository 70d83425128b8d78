//! Markdown (GitHub tables).

use std::fmt::Write as _;

use crate::doc::{Block, Table};

/// The document as Markdown; figures are left out (they are files: `--figures`).
pub(crate) fn markdown(doc: &[Block]) -> String {
    let mut md = String::new();
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(md, "{} {}\n", "#".repeat(usize::from(*level)), escape(text));
            }
            Block::Para(text) => {
                let _ = writeln!(md, "{}\n", escape(text));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(md, "- {}", escape(item));
                }
                md.push('\n');
            }
            Block::Table(t) => table(t, &mut md),
            Block::Figures(_) => {}
        }
    }
    md
}

fn table(t: &Table, md: &mut String) {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| escape(c).replace('|', "\\|"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    md.push_str(&line(&t.header));
    md.push_str(&format!("|{}\n", "---|".repeat(t.header.len())));
    for r in &t.rows {
        md.push_str(&line(r));
    }
    md.push('\n');
}

/// Keeps `*` (significance marks) and `_` literal.
fn escape(text: &str) -> String {
    text.replace('*', "\\*").replace('_', "\\_")
}
