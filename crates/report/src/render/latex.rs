//! LaTeX: booktabs tables (`\usepackage{booktabs}`), headings as starred sections.

use std::fmt::Write as _;

use crate::doc::{Block, Table};

/// The document as a LaTeX fragment; figures are left out (SVG files: `--figures`).
pub(crate) fn latex(doc: &[Block]) -> String {
    let mut tex = String::from("% datm report; needs \\usepackage{booktabs}\n");
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let cmd = match level {
                    1 => "section",
                    2 => "subsection",
                    3 => "subsubsection",
                    _ => "paragraph",
                };
                let _ = writeln!(tex, "\n\\{cmd}*{{{}}}\n", escape(text));
            }
            Block::Para(text) => {
                let _ = writeln!(tex, "{}\n", escape(text));
            }
            Block::List(items) => {
                tex.push_str("\\begin{itemize}\n");
                for item in items {
                    let _ = writeln!(tex, "  \\item {}", escape(item));
                }
                tex.push_str("\\end{itemize}\n\n");
            }
            Block::Table(t) => table(t, &mut tex),
            Block::Figures(_) => {}
        }
    }
    tex
}

fn table(t: &Table, tex: &mut String) {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
        format!("{} \\\\\n", cells.join(" & "))
    };
    let _ = writeln!(
        tex,
        "\\begin{{table}}[ht]\n\\centering\n\\small\n\\begin{{tabular}}{{l{}}}\n\\toprule",
        "r".repeat(t.header.len().saturating_sub(1))
    );
    tex.push_str(&line(&t.header));
    tex.push_str("\\midrule\n");
    for r in &t.rows {
        tex.push_str(&line(r));
    }
    tex.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n\n");
}

/// Escapes LaTeX's special characters and writes arrows, minus signs and the like in math.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '→' => out.push_str("$\\rightarrow$"),
            '−' => out.push_str("$-$"),
            '×' => out.push_str("$\\times$"),
            '–' => out.push_str("--"),
            '§' => out.push_str("\\S{}"),
            '*' => out.push_str("$^{*}$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_are_escaped() {
        assert_eq!(escape("a_b & 5% #1"), "a\\_b \\& 5\\% \\#1");
        assert_eq!(escape("G1 XX→En"), "G1 XX$\\rightarrow$En");
        assert_eq!(escape("+1.2*"), "+1.2$^{*}$");
        assert_eq!(
            escape("{x}~^\\"),
            "\\{x\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
        );
    }
}
