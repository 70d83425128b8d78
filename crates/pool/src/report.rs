//! Reports over per-direction score tables: averages by direction type, group and
//! resource level, the paper's Table 1 view (rows = systems, columns = group ×
//! {XX→En, En→XX}) and conflict/synergy deltas (paper §3.1: separate − multilingual;
//! positive means multilingual training loses, i.e. conflicts dominate).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use datm_lang::{Direction, GroupId, Grouping, ResourceLevel};
use serde::{Deserialize, Serialize};

/// The system every delta is taken against.
pub const REFERENCE_SYSTEM: &str = "multilingual";
/// The system name of the untuned base model; left out of deltas.
pub const BASE_SYSTEM: &str = "base";

/// The scores of one system on one direction's test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionScore {
    /// System name (a strategy such as `dat`, or `base`).
    pub system: String,
    /// The direction.
    pub direction: Direction,
    /// Corpus BLEU.
    pub bleu: f64,
    /// Corpus chrF.
    pub chrf: f64,
    /// Number of test segments.
    pub segments: usize,
    /// The BLEU signature (tokenizer and settings), as sacrebleu prints it.
    #[serde(default)]
    pub bleu_signature: String,
    /// COMET system score (0–1), when a COMET model was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comet: Option<f64>,
    /// The COMET model's name (its folder name), with the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comet_model: Option<String>,
}

impl DirectionScore {
    /// The row of one stored output of `system`.
    pub fn of(system: &str, o: &datm_results::Output) -> DirectionScore {
        let score = |m: &str| o.score(m).map(|s| s.score);
        DirectionScore {
            system: system.to_string(),
            direction: o.direction,
            bleu: score("bleu").unwrap_or(f64::NAN),
            chrf: score("chrf").unwrap_or(f64::NAN),
            segments: o.hypotheses.len(),
            bleu_signature: o
                .score("bleu")
                .map(|s| s.signature.clone())
                .unwrap_or_default(),
            comet: score("comet"),
            comet_model: o
                .score("comet")
                .and_then(|s| s.signature.split('|').next().map(str::to_string)),
        }
    }
}

/// A mean over some directions: COMET (when every direction has it), chrF and BLEU, and
/// how many directions it covers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Average {
    /// Mean COMET × 100, when every averaged direction has a COMET score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comet: Option<f64>,
    /// Mean chrF.
    pub chrf: f64,
    /// Mean BLEU.
    pub bleu: f64,
    /// Directions averaged.
    pub n: usize,
}

impl Average {
    fn of<'a>(scores: impl IntoIterator<Item = &'a DirectionScore>) -> Option<Average> {
        let (mut chrf, mut bleu, mut n) = (0.0, 0.0, 0usize);
        let mut comet = Some(0.0);
        for s in scores {
            chrf += s.chrf;
            bleu += s.bleu;
            comet = comet.zip(s.comet).map(|(a, c)| a + 100.0 * c);
            n += 1;
        }
        (n > 0).then(|| Average {
            comet: comet.map(|c| c / n as f64),
            chrf: chrf / n as f64,
            bleu: bleu / n as f64,
            n,
        })
    }

    /// `COMET/chrF/BLEU` (or `chrF/BLEU` without COMET) with one decimal, COMET first as
    /// the paper's tables have it.
    pub fn cell(&self) -> String {
        score_cell(self.comet, self.chrf, self.bleu)
    }
}

/// Averages split by direction type: XX→En and En→XX.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SplitAverage {
    /// Over XX→En directions.
    pub xx_en: Option<Average>,
    /// Over En→XX directions.
    pub en_xx: Option<Average>,
}

impl SplitAverage {
    fn of(scores: &[&DirectionScore]) -> SplitAverage {
        SplitAverage {
            xx_en: Average::of(
                scores
                    .iter()
                    .copied()
                    .filter(|s| s.direction.is_to_english()),
            ),
            en_xx: Average::of(
                scores
                    .iter()
                    .copied()
                    .filter(|s| s.direction.is_from_english()),
            ),
        }
    }
}

/// One system's scores and averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSummary {
    /// System name.
    pub system: String,
    /// Per-direction scores, in direction order.
    pub directions: Vec<DirectionScore>,
    /// Over all directions.
    pub overall: Option<Average>,
    /// XX→En and En→XX over all languages.
    pub split: SplitAverage,
    /// Per group (key: group id).
    pub groups: BTreeMap<GroupId, SplitAverage>,
    /// Per resource level (`high`, `mid`, `low`).
    pub resources: BTreeMap<String, SplitAverage>,
}

/// A (chrF, BLEU) difference, system − reference.
pub type ScoreDiff = (f64, f64);

/// XX→En and En→XX differences of one group's averages.
pub type GroupDiff = (Option<ScoreDiff>, Option<ScoreDiff>);

/// Differences of one system from the reference (multilingual) system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The system compared (`separate`, `dat`, …).
    pub system: String,
    /// Per direction: (chrF difference, BLEU difference), system − reference.
    pub directions: BTreeMap<Direction, ScoreDiff>,
    /// Per group: XX→En and En→XX differences of the group averages.
    pub groups: BTreeMap<GroupId, GroupDiff>,
}

/// A full report over several systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Experiment title.
    pub title: String,
    /// Group id → member language codes, as used for the group columns.
    pub groups: BTreeMap<GroupId, Vec<String>>,
    /// One summary per system, in the order given.
    pub systems: Vec<SystemSummary>,
    /// System − multilingual deltas (empty without a multilingual system).
    pub deltas: Vec<Delta>,
}

impl Report {
    /// Builds the report. System order follows first appearance in `scores`.
    pub fn build(title: &str, scores: &[DirectionScore], grouping: &Grouping) -> Report {
        let mut order: Vec<&str> = Vec::new();
        for s in scores {
            if !order.contains(&s.system.as_str()) {
                order.push(&s.system);
            }
        }
        let systems: Vec<SystemSummary> = order
            .iter()
            .map(|name| summarize(name, scores, grouping))
            .collect();
        let deltas = systems
            .iter()
            .find(|s| s.system == REFERENCE_SYSTEM)
            .map(|reference| {
                systems
                    .iter()
                    .filter(|s| s.system != REFERENCE_SYSTEM && s.system != BASE_SYSTEM)
                    .map(|s| delta(s, reference))
                    .collect()
            })
            .unwrap_or_default();
        let groups = grouping
            .groups()
            .map(|(g, ls)| (g, ls.iter().map(|l| l.code().to_string()).collect()))
            .collect();
        Report {
            title: title.to_string(),
            groups,
            systems,
            deltas,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = format!("# {}\n\n{}\n\n", self.title, self.metrics_line());
        self.write_summary(&mut md);
        self.write_table1(&mut md);
        self.write_resources(&mut md);
        self.write_deltas(&mut md);
        self.write_base_check(&mut md);
        self.write_directions(&mut md);
        md
    }

    /// What the score cells hold: COMET first when every row has it, else a note that
    /// COMET was not computed.
    fn metrics_line(&self) -> String {
        let rows = || self.systems.iter().flat_map(|s| &s.directions);
        let mut models: Vec<&str> = rows().filter_map(|d| d.comet_model.as_deref()).collect();
        models.sort();
        models.dedup();
        match (rows().all(|d| d.comet.is_some()), models.as_slice()) {
            (true, [model]) => format!(
                "Scores are COMET/chrF/BLEU: COMET ×100 with `{model}` (datm's unbabel-comet \
                 2.2.7-exact fp32 scorer), chrF and BLEU sacreBLEU-exact."
            ),
            _ => "Scores are chrF/BLEU (sacreBLEU-exact). COMET was not computed: give a COMET \
                  model (`[comet] model = \"DIR\"` in the experiment, or \
                  `datm pool translate --comet DIR`)."
                .to_string(),
        }
    }

    fn write_summary(&self, md: &mut String) {
        md.push_str("## Averages\n\n| system | XX→En | En→XX | all |\n|---|---|---|---|\n");
        for s in &self.systems {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                s.system,
                cell(s.split.xx_en),
                cell(s.split.en_xx),
                cell(s.overall)
            );
        }
        md.push('\n');
    }

    fn write_table1(&self, md: &mut String) {
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        md.push_str("## Table 1 view (rows = systems, columns = group × direction)\n\n| system |");
        for g in &groups {
            let _ = write!(md, " G{g} XX-En | G{g} En-XX |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|---|".repeat(groups.len()));
        md.push('\n');
        for s in &self.systems {
            let _ = write!(md, "| {} |", s.system);
            for g in &groups {
                let split = s.groups.get(g).copied().unwrap_or_default();
                let _ = write!(md, " {} | {} |", cell(split.xx_en), cell(split.en_xx));
            }
            md.push('\n');
        }
        md.push_str("\nGroups: ");
        let names: Vec<String> = self
            .groups
            .iter()
            .map(|(g, ls)| format!("G{g} = {}", ls.join(", ")))
            .collect();
        md.push_str(&names.join("; "));
        md.push_str("\n\n");
    }

    fn write_resources(&self, md: &mut String) {
        let levels: Vec<String> = [ResourceLevel::High, ResourceLevel::Mid, ResourceLevel::Low]
            .iter()
            .map(|l| l.to_string())
            .filter(|l| self.systems.iter().any(|s| s.resources.contains_key(l)))
            .collect();
        md.push_str("## By resource level\n\n| system |");
        for l in &levels {
            let _ = write!(md, " {l} XX-En | {l} En-XX |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|---|".repeat(levels.len()));
        md.push('\n');
        for s in &self.systems {
            let _ = write!(md, "| {} |", s.system);
            for l in &levels {
                let split = s.resources.get(l).copied().unwrap_or_default();
                let _ = write!(md, " {} | {} |", cell(split.xx_en), cell(split.en_xx));
            }
            md.push('\n');
        }
        md.push('\n');
    }

    fn write_deltas(&self, md: &mut String) {
        if self.deltas.is_empty() {
            return;
        }
        md.push_str(
            "## Conflict/synergy deltas (system − multilingual, chrF/BLEU)\n\n\
             For `separate` this is the paper's measure (§3.1): a positive delta means \
             multilingual training loses to separate training (conflicts dominate), a negative \
             one that it wins (synergy dominates).\n\n| system | group | XX-En | En-XX |\n|---|---|---|---|\n",
        );
        for d in &self.deltas {
            for (g, (x, e)) in &d.groups {
                let _ = writeln!(
                    md,
                    "| {} | G{g} | {} | {} |",
                    d.system,
                    delta_cell(*x, &d.system),
                    delta_cell(*e, &d.system)
                );
            }
        }
        md.push('\n');
    }

    fn write_base_check(&self, md: &mut String) {
        let rows: Vec<(String, usize, Vec<Direction>)> = self
            .systems
            .iter()
            .filter_map(|s| {
                Some((
                    s.system.clone(),
                    s.directions.len(),
                    self.not_above_base(&s.system)?,
                ))
            })
            .filter(|(name, _, _)| name != BASE_SYSTEM)
            .collect();
        if rows.is_empty() {
            return;
        }
        md.push_str("## Fine-tuned vs base model (chrF)\n\n| system | directions above base | not above base |\n|---|---|---|\n");
        for (name, total, worse) in rows {
            let list: Vec<String> = worse.iter().map(|d| d.to_string()).collect();
            let list = if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            };
            let _ = writeln!(md, "| {name} | {}/{total} | {list} |", total - worse.len());
        }
        md.push('\n');
    }

    fn write_directions(&self, md: &mut String) {
        md.push_str("## Per direction\n\n| direction |");
        for s in &self.systems {
            let _ = write!(md, " {} |", s.system);
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.systems.len()));
        md.push('\n');
        let mut directions: Vec<Direction> = self
            .systems
            .iter()
            .flat_map(|s| s.directions.iter().map(|d| d.direction))
            .collect();
        directions.sort_by_key(|d| (!d.is_to_english(), *d));
        directions.dedup();
        for d in directions {
            let _ = write!(md, "| {d} |");
            for s in &self.systems {
                let score = s.directions.iter().find(|x| x.direction == d);
                let text = score.map_or("–".to_string(), |x| {
                    score_cell(x.comet.map(|c| 100.0 * c), x.chrf, x.bleu)
                });
                let _ = write!(md, " {text} |");
            }
            md.push('\n');
        }
        md.push('\n');
    }

    /// Directions where `system`'s chrF is not above the base model's; `None` when either
    /// system is missing.
    pub fn not_above_base(&self, system: &str) -> Option<Vec<Direction>> {
        let base = self.systems.iter().find(|s| s.system == BASE_SYSTEM)?;
        let sys = self.systems.iter().find(|s| s.system == system)?;
        Some(
            sys.directions
                .iter()
                .filter(|d| {
                    base.directions
                        .iter()
                        .find(|b| b.direction == d.direction)
                        .is_none_or(|b| d.chrf <= b.chrf)
                })
                .map(|d| d.direction)
                .collect(),
        )
    }
}

fn summarize(name: &str, scores: &[DirectionScore], grouping: &Grouping) -> SystemSummary {
    let mut mine: Vec<&DirectionScore> = scores.iter().filter(|s| s.system == name).collect();
    mine.sort_by_key(|s| s.direction);
    let by = |pred: &dyn Fn(&DirectionScore) -> bool| -> SplitAverage {
        SplitAverage::of(&mine.iter().copied().filter(|s| pred(s)).collect::<Vec<_>>())
    };
    let groups = grouping
        .groups()
        .map(|(g, _)| {
            (
                g,
                by(&|s| s.direction.non_english().and_then(|l| grouping.group_of(l)) == Some(g)),
            )
        })
        .filter(|(_, split)| split.xx_en.is_some() || split.en_xx.is_some())
        .collect();
    let mut resources = BTreeMap::new();
    for level in [ResourceLevel::High, ResourceLevel::Mid, ResourceLevel::Low] {
        let split = by(&|s| s.direction.non_english().map(|l| l.info().resource) == Some(level));
        if split.xx_en.is_some() || split.en_xx.is_some() {
            resources.insert(level.to_string(), split);
        }
    }
    SystemSummary {
        system: name.to_string(),
        overall: Average::of(mine.iter().copied()),
        split: SplitAverage::of(&mine),
        directions: mine.into_iter().cloned().collect(),
        groups,
        resources,
    }
}

fn delta(sys: &SystemSummary, reference: &SystemSummary) -> Delta {
    let directions = sys
        .directions
        .iter()
        .filter_map(|s| {
            let r = reference
                .directions
                .iter()
                .find(|r| r.direction == s.direction)?;
            Some((s.direction, (s.chrf - r.chrf, s.bleu - r.bleu)))
        })
        .collect();
    let diff =
        |a: Option<Average>, b: Option<Average>| Some((a?.chrf - b?.chrf, a?.bleu - b?.bleu));
    let groups = sys
        .groups
        .iter()
        .filter_map(|(g, s)| {
            let r = reference.groups.get(g)?;
            Some((*g, (diff(s.xx_en, r.xx_en), diff(s.en_xx, r.en_xx))))
        })
        .collect();
    Delta {
        system: sys.system.clone(),
        directions,
        groups,
    }
}

/// `COMET×100/chrF/BLEU`, or `chrF/BLEU` when COMET is absent.
fn score_cell(comet: Option<f64>, chrf: f64, bleu: f64) -> String {
    match comet {
        Some(c) => format!("{c:.1}/{chrf:.1}/{bleu:.1}"),
        None => format!("{chrf:.1}/{bleu:.1}"),
    }
}

fn cell(avg: Option<Average>) -> String {
    avg.map_or("–".to_string(), |a| a.cell())
}

fn delta_cell(d: Option<ScoreDiff>, system: &str) -> String {
    let Some((c, b)) = d else {
        return "–".to_string();
    };
    let label = match (system, c > 0.0) {
        ("separate", true) => " (conflict)",
        ("separate", false) if c < 0.0 => " (synergy)",
        _ => "",
    };
    format!("{c:+.1}/{b:+.1}{label}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(system: &str, dir: &str, chrf: f64, bleu: f64) -> DirectionScore {
        DirectionScore {
            system: system.into(),
            direction: dir.parse().unwrap(),
            bleu,
            chrf,
            segments: 10,
            bleu_signature: String::new(),
            comet: None,
            comet_model: None,
        }
    }

    fn synthetic() -> (Vec<DirectionScore>, Grouping) {
        let grouping =
            Grouping::from_toml("[groups]\n1 = [\"de\", \"sv\"]\n4 = [\"fr\"]\n", "t").unwrap();
        let mut scores = Vec::new();
        // multilingual: weak XX→En, strong En→XX; separate: the opposite.
        for (d, m, s) in [
            ("de-en", 50.0, 60.0),
            ("sv-en", 40.0, 46.0),
            ("fr-en", 30.0, 33.0),
            ("en-de", 55.0, 50.0),
            ("en-sv", 45.0, 41.0),
            ("en-fr", 35.0, 35.0),
        ] {
            scores.push(score("multilingual", d, m, m / 2.0));
            scores.push(score("separate", d, s, s / 2.0));
            scores.push(score("base", d, 10.0, 1.0));
        }
        (scores, grouping)
    }

    #[test]
    fn averages_by_direction_group_and_resource() {
        let (scores, grouping) = synthetic();
        let r = Report::build("t", &scores, &grouping);
        assert_eq!(r.systems.len(), 3);
        let m = &r.systems[0];
        assert_eq!(m.system, "multilingual");
        assert_eq!(m.split.xx_en.unwrap().chrf, 40.0);
        assert_eq!(m.split.en_xx.unwrap().chrf, 45.0);
        assert_eq!(m.overall.unwrap().n, 6);
        assert_eq!(m.groups[&1].xx_en.unwrap().chrf, 45.0);
        assert_eq!(m.groups[&1].en_xx.unwrap().bleu, 25.0);
        assert_eq!(m.groups[&4].xx_en.unwrap().chrf, 30.0);
        // de, fr, sv are all high-resource in the paper's table
        let high = m.resources["high"];
        assert_eq!(high.xx_en.unwrap().n, 3);
    }

    #[test]
    fn deltas_are_separate_minus_multilingual() {
        let (scores, grouping) = synthetic();
        let r = Report::build("t", &scores, &grouping);
        assert_eq!(r.deltas.len(), 1, "base is not compared");
        let d = &r.deltas[0];
        assert_eq!(d.system, "separate");
        assert_eq!(d.directions[&"de-en".parse().unwrap()], (10.0, 5.0));
        assert_eq!(d.directions[&"en-de".parse().unwrap()], (-5.0, -2.5));
        let (x, e) = d.groups[&1];
        assert_eq!(x.unwrap().0, 8.0);
        assert_eq!(e.unwrap().0, -4.5);
        let md = r.to_markdown();
        assert!(
            md.contains("| separate | G1 | +8.0/+4.0 (conflict) | -4.5/-2.2 (synergy) |"),
            "{md}"
        );
        assert!(
            md.contains("| multilingual | 45.0/22.5 | 50.0/25.0 | 30.0/15.0 | 35.0/17.5 |"),
            "{md}"
        );
        assert!(
            md.contains("| de-en | 50.0/25.0 | 60.0/30.0 | 10.0/1.0 |"),
            "{md}"
        );
    }

    #[test]
    fn base_comparison_and_json_round_trip() {
        let (mut scores, grouping) = synthetic();
        scores.retain(|s| !(s.system == "base" && s.direction.to_string() == "en-fr"));
        scores.push(score("base", "en-fr", 35.0, 1.0));
        let r = Report::build("t", &scores, &grouping);
        assert_eq!(
            r.not_above_base("multilingual").unwrap(),
            vec!["en-fr".parse::<Direction>().unwrap()]
        );
        assert!(r.not_above_base("dat").is_none());
        let md = r.to_markdown();
        assert!(md.contains("| multilingual | 5/6 | en-fr |"), "{md}");
        assert!(md.contains("| separate | 5/6 | en-fr |"), "{md}");
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn no_reference_no_deltas() {
        let (mut scores, grouping) = synthetic();
        scores.retain(|s| s.system != "multilingual");
        let r = Report::build("t", &scores, &grouping);
        assert!(r.deltas.is_empty());
        assert!(!r.to_markdown().contains("deltas"));
    }
}
