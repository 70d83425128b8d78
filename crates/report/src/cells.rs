//! How numbers appear in table cells.

use crate::compare::{AggregateDelta, DeltaAggregate, DirectionDelta, Measure};
use crate::views::{Aggregate, Class};

/// The mark of a significant delta.
pub(crate) const MARK: &str = "*";

/// The placeholder of an unknown value.
pub(crate) const NONE: &str = "–";

/// `85.1/30.2/55.0`: one decimal per metric.
pub(crate) fn values(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// An average's values, or the placeholder.
pub(crate) fn aggregate(a: Option<&Aggregate>) -> String {
    a.map_or_else(|| NONE.to_string(), |a| values(&a.values))
}

/// `+1.2*/-0.3/+0.5*`: each metric's delta, marked when significant.
pub(crate) fn direction_delta(d: &DirectionDelta) -> String {
    d.metrics
        .iter()
        .map(|m| format!("{:+.1}{}", m.delta, if m.significant() { MARK } else { "" }))
        .collect::<Vec<_>>()
        .join("/")
}

/// One metric's mean delta over a column: `+1.2*` for one direction, `+1.2 [3/5*]` for
/// several (3 of the 5 tested directions significant), then the measure's label.
pub(crate) fn aggregate_delta(
    cell: Option<&DeltaAggregate>,
    metric: usize,
    measure: Measure,
    class: Option<Class>,
) -> String {
    let Some(cell) = cell else {
        return NONE.to_string();
    };
    let m: &AggregateDelta = &cell.metrics[metric];
    let marks = match (cell.n, m.tested) {
        (_, 0) => String::new(),
        (1, _) if m.significant == 1 => MARK.to_string(),
        (1, _) => String::new(),
        _ => format!(" [{}/{}{MARK}]", m.significant, m.tested),
    };
    let label = measure
        .label(m.delta, class)
        .map(|l| format!(" {l}"))
        .unwrap_or_default();
    format!("{:+.1}{marks}{label}", m.delta)
}

/// A parameter count with three significant digits: `270M`, `1.23B`, `737K`.
pub(crate) fn params(n: u64) -> String {
    if n < 1_000 {
        return n.to_string();
    }
    let units = [(1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")];
    let (value, unit) = units
        .iter()
        .map(|&(scale, unit)| (n as f64 / scale, unit))
        .find(|&(v, unit)| v < 999.5 || unit == "T")
        .expect("the last unit always fits");
    let decimals = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_read_like_the_paper() {
        assert_eq!(params(0), "0");
        assert_eq!(params(737_280), "737K");
        assert_eq!(params(4_194_304), "4.19M");
        assert_eq!(params(268_098_176), "268M");
        assert_eq!(params(13_000_000_000), "13.0B");
        assert_eq!(params(999_999), "1.00M", "rounding moves to the next unit");
        assert_eq!(params(9_999), "10.0K");
    }
}
