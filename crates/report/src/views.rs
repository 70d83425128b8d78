//! The plain-data views of one test set: score rows, averages over columns of directions
//! (Table 1, groups, resource levels) and Table 2.

use datm_lang::{Direction, GroupId, Grouping, ResourceLevel};
use datm_results::Params;
use serde::Serialize;

/// A direction class of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Class {
    /// Into English.
    #[serde(rename = "xx-en")]
    XxEn,
    /// Out of English.
    #[serde(rename = "en-xx")]
    EnXx,
}

impl Class {
    /// Both classes, XX→En first.
    pub const BOTH: [Class; 2] = [Class::XxEn, Class::EnXx];

    /// The class of a direction (none for a pair without English).
    pub fn of(d: Direction) -> Option<Class> {
        if d.is_to_english() {
            Some(Class::XxEn)
        } else if d.is_from_english() {
            Some(Class::EnXx)
        } else {
            None
        }
    }

    /// `xx-en` or `en-xx` (CSV, JSON).
    pub fn key(self) -> &'static str {
        match self {
            Class::XxEn => "xx-en",
            Class::EnXx => "en-xx",
        }
    }

    /// `XX→En` or `En→XX`.
    pub fn label(self) -> &'static str {
        match self {
            Class::XxEn => "XX→En",
            Class::EnXx => "En→XX",
        }
    }
}

/// Which directions a column averages, before the class split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Scope {
    /// Every direction.
    All,
    /// The directions of one language group.
    Group(GroupId),
    /// The directions of languages of one resource level.
    Resource(ResourceLevel),
}

impl Scope {
    /// `all`, `G1`, `high`.
    pub fn key(&self) -> String {
        match self {
            Scope::All => "all".to_string(),
            Scope::Group(g) => format!("G{g}"),
            Scope::Resource(r) => r.to_string(),
        }
    }
}

/// A column of averages: a scope, optionally restricted to one direction class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The directions' scope.
    pub scope: Scope,
    /// The class, or none for both.
    pub class: Option<Class>,
}

impl Column {
    /// `G1 XX→En`, `high En→XX`, `XX→En`, `G3`, `all`.
    pub fn label(&self) -> String {
        let scope = (self.scope != Scope::All).then(|| self.scope.key());
        match (scope, self.class) {
            (Some(s), Some(c)) => format!("{s} {}", c.label()),
            (Some(s), None) => s,
            (None, Some(c)) => c.label().to_string(),
            (None, None) => "all".to_string(),
        }
    }

    /// Whether the column averages direction `d`.
    pub fn contains(&self, d: Direction, grouping: &Grouping) -> bool {
        let class_ok = self.class.is_none_or(|c| Class::of(d) == Some(c));
        let scope_ok = match self.scope {
            Scope::All => true,
            Scope::Group(g) => d.non_english().and_then(|l| grouping.group_of(l)) == Some(g),
            Scope::Resource(r) => d.non_english().map(|l| l.info().resource) == Some(r),
        };
        class_ok && scope_ok
    }

    /// Table 1's columns: group × class, then XX→En, En→XX and all.
    pub(crate) fn table1(grouping: &Grouping) -> Vec<Column> {
        let mut cols: Vec<Column> = grouping
            .groups()
            .flat_map(|(g, _)| Class::BOTH.map(|c| Column::new(Scope::Group(g), Some(c))))
            .collect();
        cols.extend(Class::BOTH.map(|c| Column::new(Scope::All, Some(c))));
        cols.push(Column::new(Scope::All, None));
        cols
    }

    /// One column per group, both classes together.
    pub(crate) fn groups(grouping: &Grouping) -> Vec<Column> {
        grouping
            .groups()
            .map(|(g, _)| Column::new(Scope::Group(g), None))
            .collect()
    }

    /// Resource level × class, high to low.
    pub(crate) fn resources() -> Vec<Column> {
        [ResourceLevel::High, ResourceLevel::Mid, ResourceLevel::Low]
            .into_iter()
            .flat_map(|r| Class::BOTH.map(|c| Column::new(Scope::Resource(r), Some(c))))
            .collect()
    }

    fn new(scope: Scope, class: Option<Class>) -> Column {
        Column { scope, class }
    }
}

/// One system's scores on one direction, in display units (COMET ×100).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    /// The system's display name.
    pub system: String,
    /// The direction.
    pub direction: Direction,
    /// The adapter the router chose, if any.
    pub adapter: Option<String>,
    /// Non-English languages that adapter was trained on.
    pub adapter_languages: Option<u32>,
    /// Test segments.
    pub segments: usize,
    /// One value per shown metric, in the section's metric order.
    pub values: Vec<f64>,
}

/// Per-metric means over some directions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Directions averaged.
    pub n: usize,
    /// One mean per shown metric.
    pub values: Vec<f64>,
}

impl Aggregate {
    /// The mean of each metric over `rows`; none for no rows.
    pub(crate) fn of<'r>(rows: impl IntoIterator<Item = &'r [f64]>) -> Option<Aggregate> {
        let mut sums: Vec<f64> = Vec::new();
        let mut n = 0usize;
        for values in rows {
            sums.resize(values.len(), 0.0);
            sums.iter_mut().zip(values).for_each(|(s, v)| *s += v);
            n += 1;
        }
        (n > 0).then(|| Aggregate {
            n,
            values: sums.into_iter().map(|s| s / n as f64).collect(),
        })
    }
}

/// One system's line of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The system's display name.
    pub system: String,
    /// One cell per column; none where the system has no direction of the column.
    pub cells: Vec<Option<Aggregate>>,
}

/// Averages of every system over columns of directions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// The columns.
    pub columns: Vec<Column>,
    /// One line per system.
    pub lines: Vec<Line>,
}

impl Breakdown {
    /// Averages of `rows` by system (in `systems` order) over `columns`; columns no
    /// system has a direction of are dropped.
    pub(crate) fn build(
        rows: &[ScoreRow],
        systems: &[String],
        columns: Vec<Column>,
        grouping: &Grouping,
    ) -> Breakdown {
        let cell = |system: &str, col: &Column| {
            Aggregate::of(
                rows.iter()
                    .filter(|r| r.system == system && col.contains(r.direction, grouping))
                    .map(|r| r.values.as_slice()),
            )
        };
        let columns: Vec<Column> = columns
            .into_iter()
            .filter(|c| rows.iter().any(|r| c.contains(r.direction, grouping)))
            .collect();
        let lines = systems
            .iter()
            .map(|s| Line {
                system: s.clone(),
                cells: columns.iter().map(|c| cell(s, c)).collect(),
            })
            .collect();
        Breakdown { columns, lines }
    }

    /// The cell of `system` in the column equal to `column`.
    pub fn cell(&self, system: &str, column: Column) -> Option<&Aggregate> {
        let c = self.columns.iter().position(|x| *x == column)?;
        self.lines
            .iter()
            .find(|l| l.system == system)?
            .cells
            .get(c)?
            .as_ref()
    }
}

/// Parameter counts as the paper's Table 2 reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// Adapters in the pool.
    pub adapters: u32,
    /// LoRA parameters over all adapters, as stored.
    pub lora: u64,
    /// Base model parameters.
    pub base: u64,
    /// Base plus LoRA.
    pub total: u64,
}

impl From<Params> for ParamCounts {
    fn from(p: Params) -> Self {
        ParamCounts {
            adapters: p.adapters,
            lora: p.lora,
            base: p.base,
            total: p.total(),
        }
    }
}

/// One system's line of the Table-2 view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table2Line {
    /// The system's display name.
    pub system: String,
    /// Mean over XX→En directions.
    pub xx_en: Option<Aggregate>,
    /// Mean over En→XX directions.
    pub en_xx: Option<Aggregate>,
    /// Mean over all directions.
    pub all: Option<Aggregate>,
    /// Parameter counts, where stored.
    pub params: Option<ParamCounts>,
}

impl Table2Line {
    /// The line of `system` from Table 1's averages.
    pub(crate) fn build(system: &str, table1: &Breakdown, params: Option<Params>) -> Table2Line {
        let avg = |class| table1.cell(system, Column::new(Scope::All, class)).cloned();
        Table2Line {
            system: system.to_string(),
            xx_en: avg(Some(Class::XxEn)),
            en_xx: avg(Some(Class::EnXx)),
            all: avg(None),
            params: params.map(ParamCounts::from),
        }
    }
}
