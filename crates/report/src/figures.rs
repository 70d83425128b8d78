//! SVG figures drawn with plotters' SVG backend into strings. Text is written as SVG
//! `<text>` elements and laid out with plotters' built-in size estimate: no font files are
//! read (plotters is built without its `ttf`/`ab_glyph` features).
//!
//! - delta bars (paper Fig. 3): a comparison's delta of the primary metric per group and
//!   resource level, one bar per direction class;
//! - quality against the number of languages (paper Fig. 2): one line per system name
//!   across sweep points and experiments, `separate` dotted, one panel per class;
//! - quality against LoRA parameters (paper Table 2): one labelled point per system.
//!
//! A figure without the data it needs is skipped with a note.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use crate::cells;
use crate::compare::{Comparison, Measure};
use crate::section::Section;
use crate::views::{Class, Column, Scope};
use crate::Report;

/// One SVG figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// A file name (`quality-vs-languages.svg`).
    pub name: String,
    /// What it shows.
    pub title: String,
    /// The index of the section (test set) it belongs to.
    pub section: usize,
    /// The SVG document.
    pub svg: String,
}

/// A figure that was not drawn, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The index of the section (test set) it belongs to.
    pub section: usize,
    /// Which figure, and why it was skipped.
    pub note: String,
}

/// The figures of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// The figures drawn.
    pub figures: Vec<Figure>,
    /// The figures skipped.
    pub skipped: Vec<Skipped>,
}

impl Figures {
    fn add(&mut self, section: usize, name: String, title: String, svg: Result<String>) {
        match svg {
            Ok(svg) => self.figures.push(Figure {
                name,
                title,
                section,
                svg,
            }),
            Err(e) => self.skip(section, format!("{title}: not drawn ({e:#}).")),
        }
    }

    fn skip(&mut self, section: usize, note: String) {
        self.skipped.push(Skipped { section, note });
    }
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(0x35, 0x5c, 0x7d),
    RGBColor(0xe0, 0x6c, 0x4f),
    RGBColor(0x2a, 0x9d, 0x8f),
    RGBColor(0x8e, 0x5b, 0xa8),
    RGBColor(0xd4, 0xa0, 0x17),
    RGBColor(0x6b, 0x8e, 0x23),
    RGBColor(0xc0, 0x39, 0x6b),
    RGBColor(0x55, 0x55, 0x55),
];

const FONT: &str = "sans-serif";

/// Every figure the report's data allows.
pub(crate) fn all(report: &Report) -> Figures {
    let mut figures = Figures::default();
    let several = report.sections.len() > 1;
    for (i, s) in report.sections.iter().enumerate() {
        let suffix = if several {
            format!("-{}", slug(&s.test_set))
        } else {
            String::new()
        };
        let Some(metric) = s.primary.and_then(|m| s.metric_index(m)) else {
            figures.skip(
                i,
                format!("{}: no metric every output has; no figures.", s.test_set),
            );
            continue;
        };
        delta_figures(s, i, metric, &suffix, &mut figures);
        languages_figure(report, s, i, metric, &suffix, &mut figures);
        params_figure(s, i, metric, &suffix, &mut figures);
    }
    figures
}

/// File-name-safe: lowercase letters and digits, `-` for the rest.
fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}

/// The metric's label in section `s`.
fn metric_label(s: &Section, metric: usize) -> &'static str {
    s.metrics[metric].label()
}

/// Fig. 3: the paper's measures (separate − multilingual, datm − dat) when present, else
/// every comparison with the baseline.
fn delta_figures(s: &Section, section: usize, metric: usize, suffix: &str, out: &mut Figures) {
    let paper: Vec<&Comparison> = s
        .comparisons
        .iter()
        .filter(|c| c.measure != Measure::Baseline)
        .collect();
    let chosen = if paper.is_empty() {
        s.comparisons.iter().collect()
    } else {
        paper
    };
    if chosen.is_empty() {
        out.skip(
            section,
            format!(
                "Delta bars ({}): no comparison (no baseline and no separate/multilingual pair).",
                s.test_set
            ),
        );
    }
    for c in chosen {
        let title = format!(
            "Δ{} {} ({})",
            metric_label(s, metric),
            c.title(),
            s.test_set
        );
        let name = format!(
            "delta-{}-vs-{}{suffix}.svg",
            slug(&c.system),
            slug(&c.reference)
        );
        out.add(
            section,
            name,
            title.clone(),
            delta_svg(s, c, metric, &title),
        );
    }
}

/// Grouped bars: categories = groups, all, resource levels; one bar per class.
fn delta_svg(s: &Section, c: &Comparison, metric: usize, title: &str) -> Result<String> {
    let mut scopes: Vec<Scope> = Vec::new();
    for col in s.delta_columns.iter().filter(|c| c.class.is_some()) {
        if !scopes.contains(&col.scope) {
            scopes.push(col.scope);
        }
    }
    let value = |scope: Scope, class: Class| {
        let at = s.delta_columns.iter().position(|x| {
            *x == Column {
                scope,
                class: Some(class),
            }
        })?;
        Some(c.cells[at].as_ref()?.metrics[metric].delta)
    };
    let series: Vec<(String, Vec<Option<f64>>)> = Class::BOTH
        .iter()
        .map(|&class| {
            (
                class.label().to_string(),
                scopes.iter().map(|&sc| value(sc, class)).collect(),
            )
        })
        .collect();
    let categories: Vec<String> = scopes.iter().map(Scope::key).collect();
    let mut y_label = format!("Δ{}", metric_label(s, metric));
    if c.measure == Measure::ConflictSynergy {
        y_label.push_str(" (> 0 conflict, < 0 synergy)");
    }
    bar_chart(title, &y_label, &categories, &series)
}

/// A grouped bar chart with a zero line.
fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<Option<f64>>)],
) -> Result<String> {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    if values.is_empty() {
        return Err(anyhow!("no values"));
    }
    let (lo, hi) = padded_range(values.iter().copied().chain([0.0]));
    let n = categories.len() as f64;
    let width = (90 * categories.len() as u32).clamp(640, 1600);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, (FONT, 18)).map_err(plot_err)?;
        let (plot, key) = root.split_vertically(370);
        let entries: Vec<(&str, RGBColor, Mark)> = series
            .iter()
            .enumerate()
            .map(|(k, (name, _))| (name.as_str(), PALETTE[k % PALETTE.len()], Mark::Bar))
            .collect();
        legend_strip(&key, &entries)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n, lo..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(0)
            .y_desc(y_label)
            .draw()
            .map_err(plot_err)?;
        let slot = 0.8 / series.len() as f64;
        for (k, (_, vals)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(vals.iter().enumerate().filter_map(|(i, v)| {
                    let x0 = i as f64 + 0.1 + k as f64 * slot;
                    v.map(|v| Rectangle::new([(x0, 0.0), (x0 + 0.9 * slot, v)], color.filled()))
                }))
                .map_err(plot_err)?;
        }
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (n, 0.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?;
        let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let origin = plot.get_base_pixel();
        for (i, label) in categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
            plot.draw(&Text::new(
                label.clone(),
                (x - origin.0, y - origin.1 + 6),
                style.clone(),
            ))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// One system's averages at one language count.
struct LangPoint {
    system: String,
    languages: u32,
    /// XX→En, En→XX, all.
    values: [Option<f64>; 3],
}

/// Fig. 2: quality against the number of languages, one line per system name.
fn languages_figure(
    report: &Report,
    s: &Section,
    section: usize,
    metric: usize,
    suffix: &str,
    out: &mut Figures,
) {
    let title = format!(
        "{} against the number of languages ({})",
        metric_label(s, metric),
        s.test_set
    );
    let columns = [Some(Class::XxEn), Some(Class::EnXx), None].map(|class| Column {
        scope: Scope::All,
        class,
    });
    let points: Vec<LangPoint> = report
        .systems
        .iter()
        .filter_map(|e| {
            Some(LangPoint {
                system: e.info.system.clone(),
                languages: e.info.languages?,
                values: columns.map(|c| Some(s.table1.cell(&e.name, c)?.values[metric])),
            })
        })
        .filter(|p| p.values.iter().any(Option::is_some))
        .collect();
    let names = line_names(&points);
    let spans_two = names.iter().any(|n| {
        let mut xs: Vec<u32> = points
            .iter()
            .filter(|p| &p.system == n)
            .map(|p| p.languages)
            .collect();
        xs.sort();
        xs.dedup();
        xs.len() >= 2
    });
    let name = format!("quality-vs-languages{suffix}.svg");
    if spans_two {
        let svg = languages_svg(
            &points,
            &names,
            &title,
            metric_label(s, metric),
            "languages",
        );
        out.add(section, name, title, svg);
        return;
    }
    // One language count per system: the languages of the adapter each direction was
    // routed to (1 for separate, the group's for group adapters, all for multilingual).
    let points = adapter_points(s, metric);
    let mut xs: Vec<u32> = points.iter().map(|p| p.languages).collect();
    xs.sort();
    xs.dedup();
    if xs.len() < 2 {
        out.skip(
            section,
            format!(
                "{title}: skipped, no system was run at two or more language counts and every \
                 adapter serves the same number of languages."
            ),
        );
        return;
    }
    let title = format!(
        "{} against the number of languages in the adapter ({})",
        metric_label(s, metric),
        s.test_set
    );
    let names = line_names(&points);
    let x_desc = "languages in the adapter";
    let svg = languages_svg(&points, &names, &title, metric_label(s, metric), x_desc);
    out.add(section, name, title, svg);
}

/// Sum and count of the XX→En and the En→XX values.
type ClassSums = [(f64, usize); 2];

/// Per system and adapter size: the mean XX→En and En→XX values of the directions routed
/// to adapters trained on that many languages (the base model has none and is left out).
fn adapter_points(s: &Section, metric: usize) -> Vec<LangPoint> {
    let mut sums: Vec<(String, u32, ClassSums)> = Vec::new();
    for r in &s.scores {
        let Some(k) = r.adapter_languages else {
            continue;
        };
        let class = usize::from(!r.direction.is_to_english());
        let at = match sums.iter().position(|(n, x, _)| n == &r.system && *x == k) {
            Some(i) => i,
            None => {
                sums.push((r.system.clone(), k, [(0.0, 0); 2]));
                sums.len() - 1
            }
        };
        let cell = &mut sums[at].2[class];
        cell.0 += r.values[metric];
        cell.1 += 1;
    }
    sums.into_iter()
        .map(|(system, languages, cells)| {
            let mean = |(sum, n): (f64, usize)| (n > 0).then(|| sum / n as f64);
            LangPoint {
                system,
                languages,
                values: [mean(cells[0]), mean(cells[1]), None],
            }
        })
        .collect()
}

/// System names in the order first met.
fn line_names(points: &[LangPoint]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in points {
        if !names.contains(&p.system) {
            names.push(p.system.clone());
        }
    }
    names
}

fn languages_svg(
    points: &[LangPoint],
    names: &[String],
    title: &str,
    metric: &str,
    x_desc: &str,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1500, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, (FONT, 20)).map_err(plot_err)?;
        let (plots, key) = root.split_vertically(420);
        let entries: Vec<(&str, RGBColor, Mark)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), PALETTE[i % PALETTE.len()], line_mark(n)))
            .collect();
        legend_strip(&key, &entries)?;
        let labels = ["XX→En", "En→XX", "all"];
        for (k, panel) in plots.split_evenly((1, 3)).iter().enumerate() {
            let axes = (metric, x_desc);
            languages_panel(panel, points, &entries, k, labels[k], axes)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// How a system's line is drawn: `separate` (the paper's reference) dotted.
fn line_mark(system: &str) -> Mark {
    if system == "separate" {
        Mark::Dotted
    } else {
        Mark::Line
    }
}

/// One panel: value `k` of every point (0 XX→En, 1 En→XX, 2 all), one line per entry.
fn languages_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    points: &[LangPoint],
    lines: &[(&str, RGBColor, Mark)],
    k: usize,
    caption: &str,
    (metric, x_desc): (&str, &str),
) -> Result<()> {
    let ys: Vec<f64> = points.iter().filter_map(|p| p.values[k]).collect();
    if ys.is_empty() {
        return Ok(());
    }
    let (y_lo, y_hi) = padded_range(ys.into_iter());
    let x_lo = points.iter().map(|p| p.languages).min().unwrap_or(0);
    let x_hi = points.iter().map(|p| p.languages).max().unwrap_or(1);
    let pad = (f64::from(x_hi - x_lo) * 0.05).max(0.5);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((f64::from(x_lo) - pad)..(f64::from(x_hi) + pad), y_lo..y_hi)
        .map_err(plot_err)?;
    let whole = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels((x_hi - x_lo + 1).min(12) as usize)
        .x_desc(x_desc)
        .y_desc(metric)
        .x_label_formatter(&whole)
        .draw()
        .map_err(plot_err)?;
    for &(name, color, mark) in lines {
        let mut line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.system == name)
            .filter_map(|p| Some((f64::from(p.languages), p.values[k]?)))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        let style = color.stroke_width(2);
        let drawn = match mark {
            Mark::Dotted => chart.draw_series(DashedLineSeries::new(line.clone(), 3, 5, style)),
            _ => chart.draw_series(LineSeries::new(line.clone(), style)),
        };
        drawn.map_err(plot_err)?;
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Table 2 as a figure: quality against LoRA parameters, log scale across decades.
fn params_figure(s: &Section, section: usize, metric: usize, suffix: &str, out: &mut Figures) {
    let title = format!(
        "{} against LoRA parameters ({})",
        metric_label(s, metric),
        s.test_set
    );
    let mut points: Vec<(String, f64, f64)> = s
        .table2
        .iter()
        .filter_map(|l| {
            Some((
                l.system.clone(),
                l.params?.lora as f64,
                l.all.as_ref()?.values[metric],
            ))
        })
        .collect();
    let log = log_scale(points.iter().map(|p| p.1));
    if log {
        points.retain(|p| p.1 > 0.0);
    }
    if points.len() < 2 {
        out.skip(
            section,
            format!("{title}: skipped, fewer than two systems with LoRA parameter counts."),
        );
        return;
    }
    let name = format!("quality-vs-parameters{suffix}.svg");
    let y = format!("{} (all directions)", metric_label(s, metric));
    out.add(
        section,
        name,
        title.clone(),
        params_svg(&points, log, &title, &y),
    );
}

/// Log scale when the positive values span a decade or more.
fn log_scale(xs: impl Iterator<Item = f64>) -> bool {
    let pos: Vec<f64> = xs.filter(|&x| x > 0.0).collect();
    let (lo, hi) = (
        pos.iter().copied().fold(f64::INFINITY, f64::min),
        pos.iter().copied().fold(0.0, f64::max),
    );
    pos.len() >= 2 && hi / lo >= 10.0
}

fn params_svg(
    points: &[(String, f64, f64)],
    log: bool,
    title: &str,
    y_label: &str,
) -> Result<String> {
    let x = |v: f64| if log { v.log10() } else { v };
    let (x_lo, x_hi) = padded_range(points.iter().map(|p| x(p.1)));
    // Room on the right for the last point's label.
    let x_hi = x_hi + (x_hi - x_lo) * 0.2;
    let (y_lo, y_hi) = padded_range(points.iter().map(|p| p.2));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(plot_err)?;
        let formatter =
            |v: &f64| cells::params(if log { 10f64.powf(*v) } else { *v }.max(0.0).round() as u64);
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc(if log {
                "LoRA parameters (log scale)"
            } else {
                "LoRA parameters"
            })
            .y_desc(y_label)
            .x_label_formatter(&formatter)
            .draw()
            .map_err(plot_err)?;
        let pixels: Vec<(i32, i32)> = points
            .iter()
            .map(|(_, px, py)| chart.backend_coord(&(x(*px), *py)))
            .collect();
        let offsets = label_offsets(&pixels, points.iter().map(|p| p.0.as_str()));
        chart
            .draw_series(
                points
                    .iter()
                    .zip(offsets)
                    .enumerate()
                    .map(|(i, ((name, px, py), dy))| {
                        let color = PALETTE[i % PALETTE.len()];
                        EmptyElement::at((x(*px), *py))
                            + Circle::new((0, 0), 5, color.filled())
                            + Text::new(name.clone(), (8, dy), (FONT, 13).into_font())
                    }),
            )
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Vertical offsets of point labels (right of each point) so that no two overlap: a
/// label that would cover an earlier one moves down a line at a time.
fn label_offsets<'a>(pixels: &[(i32, i32)], names: impl Iterator<Item = &'a str>) -> Vec<i32> {
    const LINE: i32 = 15;
    let mut placed: Vec<(i32, i32, i32)> = Vec::new(); // (x0, x1, y)
    names
        .zip(pixels)
        .map(|(name, &(px, py))| {
            let (x0, x1) = (px + 8, px + 8 + 7 * name.chars().count() as i32);
            let mut dy = -14;
            while placed
                .iter()
                .any(|&(a0, a1, y)| x0 < a1 && a0 < x1 && (py + dy - y).abs() < LINE)
            {
                dy += LINE;
            }
            placed.push((x0, x1, py + dy));
            dy
        })
        .collect()
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// A filled box (bars).
    Bar,
    /// A solid line.
    Line,
    /// A dotted line.
    Dotted,
}

/// A one-row legend across `area`.
fn legend_strip(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[(&str, RGBColor, Mark)],
) -> Result<()> {
    let (width, height) = area.dim_in_pixel();
    let widths: Vec<i32> = entries
        .iter()
        .map(|(n, ..)| 34 + 7 * n.chars().count() as i32)
        .collect();
    let mut x = (width as i32 - widths.iter().sum::<i32>()).max(0) / 2;
    let y = height as i32 / 2;
    let font = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for ((name, color, mark), w) in entries.iter().zip(widths) {
        match mark {
            Mark::Bar => area.draw(&Rectangle::new(
                [(x, y - 6), (x + 18, y + 6)],
                color.filled(),
            )),
            Mark::Line => area.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                color.stroke_width(2),
            )),
            Mark::Dotted => (0..4).try_for_each(|k| {
                let x0 = x + 6 * k;
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 3, y)],
                    color.stroke_width(2),
                ))
            }),
        }
        .map_err(plot_err)?;
        area.draw(&Text::new(name.to_string(), (x + 26, y), font.clone()))
            .map_err(plot_err)?;
        x += w;
    }
    Ok(())
}

/// The range of `values` with 10% padding (10% of the value, at least 1, when they are
/// all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * 0.1
    } else {
        (lo.abs() * 0.1).max(1.0)
    };
    (lo - pad, hi + pad)
}

/// plotters' errors hold the backend's error type; keep the message.
fn plot_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}
