//! DATM's group-wise merging (paper §4.3): the XX→En adapters of each group are merged
//! into one adapter (TIES by default) and the routing table is updated, leaving 2·N_G
//! adapters.

use std::path::Path;

use datm_adapter::{Adapter, MergeOptions, Method, Space};

use crate::plan::MergeSettings;
use crate::{MergeSpec, PoolError, PoolPlan};

/// Record written next to a merged adapter: the [`MergeSpec`] it was made with, as JSON.
pub const MERGE_RECORD: &str = "merge.json";

/// The merge library's options for a plan's merge spec.
pub fn merge_options(spec: &MergeSpec) -> Result<MergeOptions, PoolError> {
    let method = Method::parse(&spec.method).map_err(|e| PoolError::Plan(e.to_string()))?;
    let space = match spec.space.as_str() {
        "delta" => Space::Delta,
        "factors" => Space::Factors,
        other => {
            return Err(PoolError::Plan(format!(
                "unknown merge space {other:?} (delta or factors)"
            )))
        }
    };
    let mut opts = MergeOptions {
        method,
        space,
        ..MergeOptions::default()
    };
    if let Some(d) = spec.density {
        opts.density = d;
    }
    Ok(opts)
}

/// Runs one merge: loads the sources from `source_dir`, merges, saves into
/// `out_dir/<id>` with a [`MERGE_RECORD`]. A merged adapter whose record matches `spec`
/// is kept as is (so an interrupted pipeline resumes).
pub fn run_merge(
    id: &str,
    spec: &MergeSpec,
    source_dir: &Path,
    out_dir: &Path,
) -> Result<bool, PoolError> {
    let target = out_dir.join(id);
    let record = serde_json::to_string_pretty(spec).expect("merge specs serialize");
    if std::fs::read_to_string(target.join(MERGE_RECORD))
        .ok()
        .as_deref()
        == Some(record.as_str())
    {
        return Ok(false);
    }
    let opts = merge_options(spec)?;
    let adapters = spec
        .sources
        .iter()
        .map(|s| {
            let dir = source_dir.join(s);
            Adapter::load(&dir).map_err(|source| PoolError::Adapter {
                context: format!("merging {id}: source adapter {s:?} at {}", dir.display()),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let weights = if spec.weights.is_empty() {
        vec![1.0; adapters.len()]
    } else {
        spec.weights.clone()
    };
    let merged =
        datm_adapter::merge(&adapters, &weights, &opts).map_err(|source| PoolError::Adapter {
            context: format!("merging {id} from {}", spec.sources.join(", ")),
            source,
        })?;
    let _ = std::fs::remove_file(target.join(MERGE_RECORD));
    merged.save(&target).map_err(|source| PoolError::Adapter {
        context: format!("saving merged adapter {}", target.display()),
        source,
    })?;
    datm_fsio::write_atomic(&target.join(MERGE_RECORD), record.as_bytes())?;
    Ok(true)
}

/// DATM over a trained pool: merges the XX→En adapters of each group found in `plan`
/// (read from `pool_dir`), writes the merged adapters into `pool_dir` and returns the
/// new plan. The caller saves the plan (e.g. as `pool_dir/datm.toml`).
pub fn merge_groupwise(
    plan: &PoolPlan,
    pool_dir: &Path,
    settings: &MergeSettings,
) -> Result<PoolPlan, PoolError> {
    let (merged, merges) = plan.merged_groupwise(settings)?;
    for (id, spec) in &merges {
        run_merge(id, spec, pool_dir, pool_dir)?;
    }
    Ok(merged)
}
