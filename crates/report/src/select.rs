//! Which systems and outputs a report covers: duplicates across stores (the later wins),
//! filters, display names, and how a system finds its baseline or counterpart.

use std::collections::HashMap;

use anyhow::{bail, Result};
use datm_lang::{Direction, Grouping, Lang};
use datm_results::{Output, SystemInfo, SystemResults};

use crate::{ReportOptions, SystemEntry, DEFAULT_BASELINE};

/// One selected system with its selected outputs.
pub(crate) struct Entry<'a> {
    /// As stored.
    pub info: &'a SystemInfo,
    /// The name in tables.
    pub name: String,
    /// Outputs left after the direction filter.
    pub outputs: Vec<&'a Output>,
}

/// How the baseline of each system is found.
enum Baseline {
    /// None: no deltas against a baseline.
    None,
    /// The system of this name in the same experiment and point.
    ByName(String),
    /// One fixed system (by entry index) for all.
    Fixed(usize),
}

/// The systems a report covers.
pub(crate) struct Selection<'a> {
    entries: Vec<Entry<'a>>,
    baseline: Baseline,
}

impl<'a> Selection<'a> {
    /// Deduplicates, filters and names `systems`; resolves the baseline. Notes what was
    /// replaced or left out.
    pub fn new(
        systems: &'a [SystemResults],
        opts: &ReportOptions,
        notes: &mut Vec<String>,
    ) -> Result<Selection<'a>> {
        let unique = latest_of_each(systems, notes);
        let kept = filter_systems(unique, opts)?;
        let entries = name_entries(kept, &opts.directions)?;
        let baseline = resolve_baseline(&entries, opts.baseline.as_deref(), notes)?;
        Ok(Selection { entries, baseline })
    }

    /// The selected systems.
    pub fn all(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The selected systems as the report lists them.
    pub fn entries(&self) -> Vec<SystemEntry> {
        self.entries
            .iter()
            .map(|e| SystemEntry {
                name: e.name.clone(),
                info: e.info.clone(),
            })
            .collect()
    }

    /// The baseline's name, when one is in use.
    pub fn baseline_name(&self) -> Option<&str> {
        match &self.baseline {
            Baseline::None => None,
            Baseline::ByName(n) => Some(n),
            Baseline::Fixed(i) => Some(&self.entries[*i].name),
        }
    }

    /// The entry `i` is compared with, if any (never itself).
    pub fn baseline_of(&self, i: usize) -> Option<usize> {
        match &self.baseline {
            Baseline::None => None,
            Baseline::ByName(name) => self.counterpart(i, name),
            Baseline::Fixed(b) => Some(*b).filter(|&b| b != i),
        }
    }

    /// The system called `name` that belongs with entry `i`: the one in the same
    /// experiment and sweep point, else the one in the same experiment outside any sweep.
    pub fn counterpart(&self, i: usize, name: &str) -> Option<usize> {
        let me = self.entries[i].info;
        let find = |point: &str| {
            self.entries.iter().position(|e| {
                e.info.system == name && e.info.experiment == me.experiment && e.info.point == point
            })
        };
        find(&me.point).or_else(|| find("")).filter(|&j| j != i)
    }

    /// Test-set names in the order first met.
    pub fn test_sets(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for o in self.entries.iter().flat_map(|e| &e.outputs) {
            if !names.contains(&o.test_set.name) {
                names.push(o.test_set.name.clone());
            }
        }
        names
    }

    /// `given` (or X-ALMA's groups) restricted to the languages of the selected outputs.
    pub fn grouping(&self, given: Option<&Grouping>) -> Grouping {
        let mut langs: Vec<Lang> = self
            .entries
            .iter()
            .flat_map(|e| &e.outputs)
            .filter_map(|o| o.direction.non_english())
            .collect();
        langs.sort();
        langs.dedup();
        given.cloned().unwrap_or_default().restricted_to(&langs)
    }
}

/// Each (experiment, point, system) once, at its first position with its last record: a
/// later store wins over an earlier one. Notes each replacement.
fn latest_of_each<'a>(
    systems: &'a [SystemResults],
    notes: &mut Vec<String>,
) -> Vec<&'a SystemResults> {
    let mut position: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut out: Vec<&SystemResults> = Vec::new();
    for s in systems {
        let i = &s.info;
        match position.get(&(i.experiment.as_str(), i.point.as_str(), i.system.as_str())) {
            Some(&at) => {
                notes.push(format!(
                    "experiment {:?}, system {}: found in more than one store; the one read \
                     last is used (config hash {} replaces {})",
                    i.experiment,
                    i.label(),
                    short_hash(&i.config_hash),
                    short_hash(&out[at].info.config_hash)
                ));
                out[at] = s;
            }
            None => {
                position.insert((&i.experiment, &i.point, &i.system), out.len());
                out.push(s);
            }
        }
    }
    out
}

fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// The systems passing the experiment and system filters; a filter value that matches
/// nothing is an error listing what there is.
fn filter_systems<'a>(
    systems: Vec<&'a SystemResults>,
    opts: &ReportOptions,
) -> Result<Vec<&'a SystemResults>> {
    if systems.is_empty() {
        bail!("the results stores hold no systems");
    }
    check_filter("experiment", &opts.experiments, &systems, |s, v| {
        s.info.experiment == v
    })?;
    check_filter("system", &opts.systems, &systems, system_matches)?;
    Ok(systems
        .into_iter()
        .filter(|s| opts.experiments.is_empty() || opts.experiments.contains(&s.info.experiment))
        .filter(|s| opts.systems.is_empty() || opts.systems.iter().any(|v| system_matches(s, v)))
        .collect())
}

/// Whether `value` names the system: its name, label or `experiment/label`.
fn system_matches(s: &SystemResults, value: &str) -> bool {
    let label = s.info.label();
    s.info.system == value || label == value || format!("{}/{label}", s.info.experiment) == value
}

/// Fails when some filter value matches no system.
fn check_filter(
    what: &str,
    values: &[String],
    systems: &[&SystemResults],
    matches: impl Fn(&SystemResults, &str) -> bool,
) -> Result<()> {
    for v in values {
        if !systems.iter().any(|s| matches(s, v)) {
            let mut known: Vec<String> = systems
                .iter()
                .map(|s| match what {
                    "experiment" => s.info.experiment.clone(),
                    _ => format!("{}/{}", s.info.experiment, s.info.label()),
                })
                .collect();
            known.sort();
            known.dedup();
            bail!(
                "no {what} {v:?} in the results stores (there are: {})",
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// Entries with display names (prefixed by the experiment when there are several) and the
/// outputs of the wanted directions; fails when no output is left.
fn name_entries<'a>(
    systems: Vec<&'a SystemResults>,
    directions: &[Direction],
) -> Result<Vec<Entry<'a>>> {
    let several = systems
        .iter()
        .any(|s| s.info.experiment != systems[0].info.experiment);
    let entries: Vec<Entry> = systems
        .into_iter()
        .map(|s| Entry {
            info: &s.info,
            name: if several {
                format!("{}/{}", s.info.experiment, s.info.label())
            } else {
                s.info.label()
            },
            outputs: s
                .outputs
                .iter()
                .filter(|o| directions.is_empty() || directions.contains(&o.direction))
                .collect(),
        })
        .collect();
    if let Some(d) = directions.iter().find(|d| {
        !entries
            .iter()
            .flat_map(|e| &e.outputs)
            .any(|o| o.direction == **d)
    }) {
        bail!("no system selected has outputs for direction {d}");
    }
    if entries.iter().all(|e| e.outputs.is_empty()) {
        bail!("no scored outputs left to report");
    }
    Ok(entries)
}

/// The baseline: by system name when some system has it, else a fixed system by label or
/// display name; an explicit baseline that matches nothing is an error, a missing default
/// a note.
fn resolve_baseline(
    entries: &[Entry],
    given: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Baseline> {
    let wanted = given.unwrap_or(DEFAULT_BASELINE);
    if entries.iter().any(|e| e.info.system == wanted) {
        return Ok(Baseline::ByName(wanted.to_string()));
    }
    if let Some(i) = entries
        .iter()
        .position(|e| e.name == wanted || e.info.label() == wanted)
    {
        return Ok(Baseline::Fixed(i));
    }
    if given.is_some() {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        bail!(
            "baseline {wanted:?} is not among the systems reported ({})",
            names.join(", ")
        );
    }
    notes.push(format!(
        "No {DEFAULT_BASELINE:?} system: no deltas against a baseline (choose one with --baseline)."
    ));
    Ok(Baseline::None)
}
