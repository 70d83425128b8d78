//! A report as a format-neutral document (headings, paragraphs, lists, tables), built
//! once and rendered by each text format.

use datm_lang::Direction;

use crate::cells;
use crate::metric::cell_legend;
use crate::section::{direction_order, Section};
use crate::views::{Breakdown, Column, Scope};
use crate::Report;

/// A table: a header row and body rows of plain-text cells; the first column is a label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A piece of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// A heading of level 1–4.
    Heading(u8, String),
    /// A paragraph of plain text.
    Para(String),
    /// A bulleted list of plain text.
    List(Vec<String>),
    /// A table.
    Table(Table),
    /// The figures of section `n` (where the format can show them).
    Figures(usize),
}

/// The whole report as blocks.
pub(crate) fn document(report: &Report) -> Vec<Block> {
    let mut doc = vec![
        Block::Heading(1, report.title.clone()),
        Block::Para(summary(report)),
        Block::Para(significance_text(report)),
    ];
    if !report.groups.is_empty() {
        doc.push(Block::Para(groups_text(report)));
    }
    if !report.notes.is_empty() {
        doc.push(Block::List(report.notes.clone()));
    }
    for (i, section) in report.sections.iter().enumerate() {
        section_blocks(section, i, &mut doc);
    }
    doc
}

fn summary(report: &Report) -> String {
    let baseline = report
        .baseline
        .as_ref()
        .map_or_else(|| "no baseline".to_string(), |b| format!("baseline {b}"));
    format!(
        "{} systems, {} test sets, {baseline}. Systems: {}.",
        report.systems.len(),
        report.sections.len(),
        report
            .systems
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn significance_text(report: &Report) -> String {
    let s = &report.significance;
    if s.samples == 0 {
        return "Significance was not tested (0 bootstrap samples).".to_string();
    }
    format!(
        "Significance: {} of every per-direction delta against its reference system, \
         {} resamples, seed {}, from the stored segment statistics (BLEU, chrF) and segment \
         scores (COMET); {} marks p < {}. A cell averaging several directions shows [k/n{}]: \
         k of its n tested directions differ significantly.",
        s.test,
        s.samples,
        s.seed,
        cells::MARK,
        s.alpha,
        cells::MARK
    )
}

fn groups_text(report: &Report) -> String {
    let groups: Vec<String> = report
        .groups
        .iter()
        .map(|(g, ls)| format!("G{g} = {}", ls.join(", ")))
        .collect();
    format!("Groups: {}.", groups.join("; "))
}

fn section_blocks(s: &Section, index: usize, doc: &mut Vec<Block>) {
    let legend = cell_legend(&s.metrics);
    doc.push(Block::Heading(2, format!("Test set {}", s.test_set)));
    doc.push(Block::Para(format!(
        "Cells are {legend}{}.",
        if s.metric_index(crate::MetricKind::Comet).is_some() {
            " (COMET ×100)"
        } else {
            ""
        }
    )));
    if !s.notes.is_empty() {
        doc.push(Block::List(s.notes.clone()));
    }
    doc.push(Block::Heading(
        3,
        "Table 1 view: group × direction class".to_string(),
    ));
    doc.push(Block::Table(breakdown_table(&s.table1)));
    doc.push(Block::Heading(
        3,
        "Table 2 view: quality and parameters".to_string(),
    ));
    doc.push(Block::Table(table2(s)));
    doc.push(Block::Heading(3, "By resource level".to_string()));
    doc.push(Block::Table(breakdown_table(&s.resources)));
    doc.push(Block::Heading(3, "By group".to_string()));
    doc.push(Block::Table(breakdown_table(&s.groups)));
    delta_blocks(s, doc);
    doc.push(Block::Figures(index));
    base_check_blocks(s, doc);
    doc.push(Block::Heading(3, format!("Per direction ({legend})")));
    doc.push(Block::Table(scores_table(s)));
}

fn breakdown_table(b: &Breakdown) -> Table {
    Table {
        header: header("system", b.columns.iter().map(Column::label)),
        rows: b
            .lines
            .iter()
            .map(|l| {
                row(
                    &l.system,
                    l.cells.iter().map(|c| cells::aggregate(c.as_ref())),
                )
            })
            .collect(),
    }
}

fn table2(s: &Section) -> Table {
    let counts = ["adapters", "LoRA params", "base params", "total params"];
    Table {
        header: header(
            "system",
            ["XX→En", "En→XX", "all"]
                .into_iter()
                .chain(counts)
                .map(str::to_string),
        ),
        rows: s
            .table2
            .iter()
            .map(|l| {
                let quality = [&l.xx_en, &l.en_xx, &l.all].map(|a| cells::aggregate(a.as_ref()));
                let params = match l.params {
                    Some(p) => [
                        p.adapters.to_string(),
                        cells::params(p.lora),
                        cells::params(p.base),
                        cells::params(p.total),
                    ],
                    None => counts.map(|_| cells::NONE.to_string()),
                };
                row(&l.system, quality.into_iter().chain(params))
            })
            .collect(),
    }
}

fn delta_blocks(s: &Section, doc: &mut Vec<Block>) {
    if s.comparisons.is_empty() {
        return;
    }
    doc.push(Block::Heading(3, "Deltas (system − reference)".to_string()));
    doc.push(Block::Para(format!(
        "Comparisons: {}. For separate − multilingual (paper §3.1) a positive delta in a \
         direction class means conflict (multilingual training loses), a negative one \
         synergy; datm − dat is the cost of merging.",
        s.comparisons
            .iter()
            .map(|c| c.title())
            .collect::<Vec<_>>()
            .join("; ")
    )));
    let by_resource = |c: &Column| matches!(c.scope, Scope::Resource(_));
    for (m, metric) in s.metrics.iter().enumerate() {
        for (title, resources) in [
            ("by group and direction class", false),
            ("by resource level", true),
        ] {
            let table = delta_table(s, m, |c| by_resource(c) == resources);
            if table.header.len() > 1 {
                doc.push(Block::Heading(
                    4,
                    format!("{} deltas {title}", metric.label()),
                ));
                doc.push(Block::Table(table));
            }
        }
    }
    doc.push(Block::Heading(
        4,
        format!("Deltas per direction ({})", cell_legend(&s.metrics)),
    ));
    doc.push(Block::Table(direction_delta_table(s)));
}

/// Rows = comparisons, columns = the delta columns `keep` accepts, for metric `m`.
fn delta_table(s: &Section, m: usize, keep: impl Fn(&Column) -> bool) -> Table {
    let cols: Vec<usize> = (0..s.delta_columns.len())
        .filter(|&c| keep(&s.delta_columns[c]))
        .collect();
    Table {
        header: header(
            "comparison",
            cols.iter().map(|&c| s.delta_columns[c].label()),
        ),
        rows: s
            .comparisons
            .iter()
            .map(|cmp| {
                row(
                    &cmp.title(),
                    cols.iter().map(|&c| {
                        cells::aggregate_delta(
                            cmp.cells[c].as_ref(),
                            m,
                            cmp.measure,
                            s.delta_columns[c].class,
                        )
                    }),
                )
            })
            .collect(),
    }
}

/// Rows = directions, columns = comparisons.
fn direction_delta_table(s: &Section) -> Table {
    let directions = sorted_directions(
        s.comparisons
            .iter()
            .flat_map(|c| c.directions.iter().map(|d| d.direction)),
    );
    Table {
        header: header("direction", s.comparisons.iter().map(|c| c.title())),
        rows: directions
            .iter()
            .map(|&d| {
                row(
                    &d.to_string(),
                    s.comparisons.iter().map(|c| {
                        c.directions
                            .iter()
                            .find(|x| x.direction == d)
                            .map_or_else(|| cells::NONE.to_string(), cells::direction_delta)
                    }),
                )
            })
            .collect(),
    }
}

fn base_check_blocks(s: &Section, doc: &mut Vec<Block>) {
    let Some(first) = s.base_checks.first() else {
        return;
    };
    doc.push(Block::Heading(
        3,
        format!("Fine-tuned vs base model ({})", first.metric.label()),
    ));
    doc.push(Block::Table(Table {
        header: ["system", "directions above base", "not above base"]
            .map(str::to_string)
            .to_vec(),
        rows: s
            .base_checks
            .iter()
            .map(|b| {
                let worse: Vec<String> = b.not_above.iter().map(Direction::to_string).collect();
                vec![
                    b.system.clone(),
                    format!("{}/{}", b.directions - b.not_above.len(), b.directions),
                    if worse.is_empty() {
                        "none".to_string()
                    } else {
                        worse.join(", ")
                    },
                ]
            })
            .collect(),
    }));
}

/// Rows = directions, columns = systems.
fn scores_table(s: &Section) -> Table {
    let systems: Vec<&str> = s.table1.lines.iter().map(|l| l.system.as_str()).collect();
    let directions = sorted_directions(s.scores.iter().map(|r| r.direction));
    Table {
        header: header("direction", systems.iter().map(|x| x.to_string())),
        rows: directions
            .iter()
            .map(|&d| {
                row(
                    &d.to_string(),
                    systems.iter().map(|&sys| {
                        s.scores
                            .iter()
                            .find(|r| r.system == sys && r.direction == d)
                            .map_or_else(|| cells::NONE.to_string(), |r| cells::values(&r.values))
                    }),
                )
            })
            .collect(),
    }
}

fn sorted_directions(ds: impl Iterator<Item = Direction>) -> Vec<Direction> {
    let mut out: Vec<Direction> = ds.collect();
    out.sort_by_key(|&d| direction_order(d));
    out.dedup();
    out
}

fn header(first: &str, rest: impl Iterator<Item = String>) -> Vec<String> {
    std::iter::once(first.to_string()).chain(rest).collect()
}

fn row(label: &str, rest: impl Iterator<Item = String>) -> Vec<String> {
    std::iter::once(label.to_string()).chain(rest).collect()
}
