//! Tidy CSV: one row per value, the same columns for every view.

use crate::compare::Comparison;
use crate::section::Section;
use crate::views::{Breakdown, Column};
use crate::Report;

/// The columns of every row.
const HEADER: [&str; 14] = [
    "view",
    "test_set",
    "system",
    "reference",
    "measure",
    "direction",
    "scope",
    "class",
    "metric",
    "value",
    "n",
    "tested",
    "significant",
    "p_value",
];

/// One CSV row, filled field by field.
#[derive(Default)]
struct Row {
    fields: [String; 14],
}

impl Row {
    fn new(view: &str, s: &Section, system: &str) -> Row {
        let mut r = Row::default();
        r.fields[0] = view.to_string();
        r.fields[1] = s.test_set.clone();
        r.fields[2] = system.to_string();
        r
    }

    fn set(mut self, column: &str, value: impl ToString) -> Row {
        let i = HEADER
            .iter()
            .position(|h| *h == column)
            .expect("a CSV column");
        self.fields[i] = value.to_string();
        self
    }

    fn column(self, c: &Column) -> Row {
        self.set("scope", c.scope.key())
            .set("class", c.class.map_or("both", |c| c.key()))
    }
}

/// The report as tidy CSV (values in display units: COMET ×100).
pub(crate) fn csv(report: &Report) -> String {
    let mut rows: Vec<Row> = Vec::new();
    for s in &report.sections {
        score_rows(s, &mut rows);
        for (view, b) in [
            ("table1", &s.table1),
            ("groups", &s.groups),
            ("resources", &s.resources),
        ] {
            breakdown_rows(view, s, b, &mut rows);
        }
        table2_rows(s, &mut rows);
        for c in &s.comparisons {
            delta_rows(s, c, &mut rows);
        }
    }
    let mut out = line(&HEADER.map(str::to_string));
    for r in &rows {
        out.push_str(&line(&r.fields));
    }
    out
}

fn score_rows(s: &Section, rows: &mut Vec<Row>) {
    for r in &s.scores {
        for (m, v) in s.metrics.iter().zip(&r.values) {
            rows.push(
                Row::new("score", s, &r.system)
                    .set("direction", r.direction)
                    .set("metric", m.key())
                    .set("value", v)
                    .set("n", r.segments),
            );
        }
    }
}

fn breakdown_rows(view: &str, s: &Section, b: &Breakdown, rows: &mut Vec<Row>) {
    for l in &b.lines {
        for (c, cell) in b.columns.iter().zip(&l.cells) {
            let Some(a) = cell else { continue };
            for (m, v) in s.metrics.iter().zip(&a.values) {
                rows.push(
                    Row::new(view, s, &l.system)
                        .column(c)
                        .set("metric", m.key())
                        .set("value", v)
                        .set("n", a.n),
                );
            }
        }
    }
}

fn table2_rows(s: &Section, rows: &mut Vec<Row>) {
    for l in &s.table2 {
        let Some(p) = l.params else { continue };
        for (name, v) in [
            ("adapters", u64::from(p.adapters)),
            ("lora_params", p.lora),
            ("base_params", p.base),
            ("total_params", p.total),
        ] {
            rows.push(
                Row::new("table2", s, &l.system)
                    .set("metric", name)
                    .set("value", v),
            );
        }
    }
}

fn delta_rows(s: &Section, c: &Comparison, rows: &mut Vec<Row>) {
    let base = || {
        Row::new("delta", s, &c.system)
            .set("reference", &c.reference)
            .set("measure", c.measure.key())
    };
    for d in &c.directions {
        for (m, md) in s.metrics.iter().zip(&d.metrics) {
            rows.push(
                base()
                    .set("direction", d.direction)
                    .set("metric", m.key())
                    .set("value", md.delta)
                    .set("n", 1)
                    .set("tested", usize::from(md.p_value.is_some()))
                    .set("significant", usize::from(md.significant()))
                    .set(
                        "p_value",
                        md.p_value.map_or(String::new(), |p| p.to_string()),
                    ),
            );
        }
    }
    for (col, cell) in s.delta_columns.iter().zip(&c.cells) {
        let Some(a) = cell else { continue };
        for (m, ad) in s.metrics.iter().zip(&a.metrics) {
            rows.push(
                base()
                    .column(col)
                    .set("metric", m.key())
                    .set("value", ad.delta)
                    .set("n", a.n)
                    .set("tested", ad.tested)
                    .set("significant", ad.significant),
            );
        }
    }
}

/// One CSV line (RFC 4180 quoting where needed).
fn line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}
