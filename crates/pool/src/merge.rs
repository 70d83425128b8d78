//! Merging inside a pool folder: DATM's group-wise merging (paper §4.3: the XX→En adapters
//! of each group merged into one, TIES by default, leaving 2·N_G adapters), the ablations of
//! [`MergeMode`], and the merges a hand-written plan declares in its `[[adapters]]`.
//!
//! Every merged adapter gets a [`MERGE_RECORD`] with the spec it was made from, so a rerun
//! keeps what is up to date.

use std::path::Path;

use datm_adapter::{merge_utils, Adapter, MajoritySign, MergeOptions, Method, Space};

use crate::plan::{MergeMode, MergeSettings};
use crate::{MergeSpec, PoolError, PoolPlan};

/// Record written next to a merged adapter: the [`MergeSpec`] it was made with, as JSON.
pub const MERGE_RECORD: &str = "merge.json";

/// One merge run by [`merge_declared`] or [`merge_pool`].
#[derive(Debug, Clone, PartialEq)]
pub struct MergeRun {
    /// The merged adapter's id (its folder in the pool).
    pub id: String,
    /// How it is made.
    pub spec: MergeSpec,
    /// Whether it was merged now (`false`: its record matched, it was kept).
    pub merged: bool,
}

/// The merge library's options for a plan's merge spec.
pub fn merge_options(spec: &MergeSpec) -> Result<MergeOptions, PoolError> {
    let plan_error = |e: anyhow::Error| PoolError::Plan(e.to_string());
    let mut opts = MergeOptions {
        method: Method::parse(&spec.method).map_err(plan_error)?,
        space: Space::parse(&spec.space).map_err(plan_error)?,
        majority_sign: MajoritySign::parse(&spec.majority_sign).map_err(plan_error)?,
        rank: spec.rank,
        ..MergeOptions::default()
    };
    if let Some(d) = spec.density {
        opts.density = d;
    }
    Ok(opts)
}

/// The per-source weights of a spec: its `weights`, or 1.0 per source when there are none.
/// A count other than the number of sources is an error naming the merge and both counts.
pub fn merge_weights(id: &str, spec: &MergeSpec) -> Result<Vec<f64>, PoolError> {
    if spec.weights.is_empty() {
        return Ok(vec![1.0; spec.sources.len()]);
    }
    if spec.weights.len() != spec.sources.len() {
        return Err(PoolError::Plan(format!(
            "merge {id}: {} weights given for {} sources ({}); give one weight per source, in that order",
            spec.weights.len(),
            spec.sources.len(),
            spec.sources.join(", ")
        )));
    }
    if let Some(w) = spec.weights.iter().find(|w| !w.is_finite()) {
        return Err(PoolError::Plan(format!(
            "merge {id}: weight {w} is not a finite number"
        )));
    }
    Ok(spec.weights.clone())
}

/// Checks a merge spec without loading any adapter: sources, method, space, sign election,
/// density, rank and weights. Errors name the merged adapter `id`.
pub fn check_spec(id: &str, spec: &MergeSpec) -> Result<(), PoolError> {
    let fail = |what: String| PoolError::Plan(format!("merge {id}: {what}"));
    if spec.sources.is_empty() {
        return Err(fail("no source adapters".into()));
    }
    if spec.sources.iter().any(|s| s == id) {
        return Err(fail(
            "an adapter cannot be one of its own merge sources".into(),
        ));
    }
    let opts = merge_options(spec).map_err(|e| fail(e.to_string()))?;
    if opts.method.uses_density() {
        merge_utils::check_density(opts.density).map_err(|e| fail(e.to_string()))?;
    }
    match (opts.space, opts.rank) {
        (_, Some(0)) => return Err(fail("rank must be at least 1".into())),
        (Space::Factors, Some(r)) => {
            return Err(fail(format!(
                "rank {r} applies to the delta space only (a factors merge keeps its sources' rank)"
            )))
        }
        _ => {}
    }
    merge_weights(id, spec).map(|_| ())
}

/// Runs one merge: loads the sources from `source_dir`, merges, and publishes `out_dir/<id>`
/// with its [`MERGE_RECORD`] in one rename. A merged adapter whose record matches `spec` is
/// kept as is (so an interrupted pipeline resumes); a folder holding an adapter that no merge
/// made (no record) is refused rather than overwritten. Returns whether it merged now.
pub fn run_merge(
    id: &str,
    spec: &MergeSpec,
    source_dir: &Path,
    out_dir: &Path,
) -> Result<bool, PoolError> {
    let target = out_dir.join(id);
    let record = serde_json::to_string_pretty(spec).expect("merge specs serialize");
    match std::fs::read_to_string(target.join(MERGE_RECORD)) {
        Ok(old) if old == record => return Ok(false),
        Err(_) if target.join(datm_adapter::CONFIG_FILE).exists() => {
            return Err(PoolError::Plan(format!(
                "merge {id}: {} holds an adapter that no merge made (no {MERGE_RECORD}); refusing to overwrite it (rename the merged adapter, or remove the folder if it is left over)",
                target.display()
            )))
        }
        _ => {}
    }
    check_spec(id, spec)?;
    let opts = merge_options(spec)?;
    let weights = merge_weights(id, spec)?;
    let adapters = spec
        .sources
        .iter()
        .map(|s| load_source(id, s, source_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let merged =
        datm_adapter::merge(&adapters, &weights, &opts).map_err(|source| PoolError::Adapter {
            context: format!("merging {id} from {}", spec.sources.join(", ")),
            source,
        })?;
    publish(&merged, &record, out_dir, id)?;
    Ok(true)
}

/// Loads one merge source, naming the merge, the source and its folder on failure.
fn load_source(id: &str, source: &str, source_dir: &Path) -> Result<Adapter, PoolError> {
    let dir = source_dir.join(source);
    Adapter::load(&dir).map_err(|e| PoolError::Adapter {
        context: format!(
            "merging {id}: source adapter {source:?} at {}",
            dir.display()
        ),
        source: e,
    })
}

/// Writes the merged adapter and its record into a temporary sibling folder, then renames
/// it onto `out_dir/<id>` ([`datm_fsio::publish_dir`]).
fn publish(merged: &Adapter, record: &str, out_dir: &Path, id: &str) -> Result<(), PoolError> {
    let target = out_dir.join(id);
    let tmp = out_dir.join(format!(".{id}.merging"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|source| PoolError::Io {
            action: "remove the unfinished merge",
            path: tmp.clone(),
            source,
        })?;
    }
    merged.save(&tmp).map_err(|source| PoolError::Adapter {
        context: format!("saving merged adapter {}", target.display()),
        source,
    })?;
    datm_fsio::write_atomic(&tmp.join(MERGE_RECORD), record.as_bytes())?;
    Ok(datm_fsio::publish_dir(&tmp, &target)?)
}

/// Runs `merges` in order inside `pool_dir` (sources read from it, results written to it).
fn run_merges(merges: &[(String, MergeSpec)], pool_dir: &Path) -> Result<Vec<MergeRun>, PoolError> {
    merges
        .iter()
        .map(|(id, spec)| {
            Ok(MergeRun {
                id: id.clone(),
                spec: spec.clone(),
                merged: run_merge(id, spec, pool_dir, pool_dir)?,
            })
        })
        .collect()
}

/// The merges a plan declares (its adapters with a `merge` spec), ordered so that a merge
/// of merged adapters comes after them. A cycle is an error naming its adapters.
pub fn declared_merges(plan: &PoolPlan) -> Result<Vec<(String, MergeSpec)>, PoolError> {
    let mut pending: Vec<(String, MergeSpec)> = plan
        .adapters
        .iter()
        .filter_map(|a| a.merge.clone().map(|m| (a.id.clone(), m)))
        .collect();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, spec)| {
            !spec
                .sources
                .iter()
                .any(|s| pending.iter().any(|(id, _)| id == s))
        });
        let Some(i) = ready else {
            let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
            return Err(PoolError::Plan(format!(
                "the merges of {} take each other as sources in a cycle",
                ids.join(", ")
            )));
        };
        ordered.push(pending.remove(i));
    }
    Ok(ordered)
}

/// Runs the merges `plan` declares inside `pool_dir` (e.g. a custom plan's merged adapters,
/// or a DATM plan's group merges); up-to-date ones are kept.
pub fn merge_declared(plan: &PoolPlan, pool_dir: &Path) -> Result<Vec<MergeRun>, PoolError> {
    run_merges(&declared_merges(plan)?, pool_dir)
}

/// A merge mode over a pool folder: runs the merges the plan declares, then the mode's
/// merges ([`PoolPlan::merged_by`]), and returns the new plan with the runs. The caller saves
/// the plan (e.g. as `pool_dir/`[`MergeMode::manifest`]).
pub fn merge_pool(
    plan: &PoolPlan,
    pool_dir: &Path,
    mode: MergeMode,
    settings: &MergeSettings,
) -> Result<(PoolPlan, Vec<MergeRun>), PoolError> {
    let (merged, merges) = plan.merged_by(mode, settings)?;
    let mut runs = merge_declared(plan, pool_dir)?;
    runs.extend(run_merges(&merges, pool_dir)?);
    Ok((merged, runs))
}

/// DATM over a trained pool: merges the XX→En adapters of each group found in `plan`
/// (read from `pool_dir`), writes the merged adapters into `pool_dir` and returns the
/// new plan (unchanged when no group has two XX→En adapters). The caller saves the plan
/// (e.g. as `pool_dir/datm.toml`).
pub fn merge_groupwise(
    plan: &PoolPlan,
    pool_dir: &Path,
    settings: &MergeSettings,
) -> Result<PoolPlan, PoolError> {
    let (merged, merges) = plan.merged_groupwise(settings)?;
    run_merges(&merges, pool_dir)?;
    Ok(merged)
}
