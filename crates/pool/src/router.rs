//! The router: picks the adapter of a pool for a translation direction (hard routing, as
//! X-ALMA's `lang=` argument; paper §4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datm_lang::Direction;

use crate::{PoolError, PoolPlan};

/// File name of the manifest inside a pool directory.
pub const MANIFEST: &str = "pool.toml";

/// One adapter on disk, as the router hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterRef {
    /// Adapter id from the manifest.
    pub id: String,
    /// The PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`).
    pub path: PathBuf,
}

/// Direction → adapter, built from a validated plan and the pool directory holding it.
#[derive(Debug, Clone)]
pub struct Router {
    plan: PoolPlan,
    adapters: BTreeMap<String, AdapterRef>,
}

impl Router {
    /// A router over `plan` whose adapters live in `pool_dir/<id>/`.
    pub fn from_plan(plan: PoolPlan, pool_dir: &Path) -> Result<Router, PoolError> {
        plan.validate()?;
        let adapters = plan
            .adapters
            .iter()
            .map(|a| {
                let r = AdapterRef {
                    id: a.id.clone(),
                    path: pool_dir.join(&a.id),
                };
                (a.id.clone(), r)
            })
            .collect();
        Ok(Router { plan, adapters })
    }

    /// Opens a pool: `path` is either a manifest file (its directory is the pool) or a pool
    /// directory holding [`MANIFEST`].
    pub fn open(path: &Path) -> Result<Router, PoolError> {
        let (manifest, dir) = if path.is_dir() {
            (path.join(MANIFEST), path.to_path_buf())
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (path.to_path_buf(), dir)
        };
        Router::from_plan(PoolPlan::load(&manifest)?, &dir)
    }

    /// The adapter serving `direction`; the error names the direction and what is served.
    pub fn adapter_for(&self, direction: Direction) -> Result<&AdapterRef, PoolError> {
        let id = self.plan.routes.get(&direction).ok_or_else(|| {
            let served: Vec<String> = self.plan.routes.keys().map(|d| d.to_string()).collect();
            PoolError::Route(format!(
                "direction {direction} is not served by this {} pool (it serves {})",
                self.plan.strategy,
                served.join(", ")
            ))
        })?;
        Ok(&self.adapters[id])
    }

    /// Every adapter of the pool, by id.
    pub fn adapters(&self) -> impl Iterator<Item = &AdapterRef> {
        self.adapters.values()
    }

    /// Checks that every adapter directory holds a PEFT adapter; the error names the
    /// adapter, its directions and the missing file.
    pub fn verify_files(&self) -> Result<(), PoolError> {
        for spec in &self.plan.adapters {
            let dir = &self.adapters[&spec.id].path;
            for file in ["adapter_config.json", "adapter_model.safetensors"] {
                if !dir.join(file).is_file() {
                    let dirs: Vec<String> = spec.directions.iter().map(|d| d.to_string()).collect();
                    return Err(PoolError::Route(format!(
                        "adapter {:?} (directions {}) has no {}",
                        spec.id,
                        dirs.join(", "),
                        dir.join(file).display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The plan behind the router.
    pub fn plan(&self) -> &PoolPlan {
        &self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;
    use datm_lang::{parse_list, Grouping};

    #[test]
    fn routes_each_direction_and_names_unserved_ones() {
        let langs = parse_list("de,sv,fr").unwrap();
        let plan = PoolPlan::build(Strategy::Dat, &langs, &Grouping::default()).unwrap();
        let router = Router::from_plan(plan, Path::new("/pool")).unwrap();
        let a = router.adapter_for("sv-en".parse().unwrap()).unwrap();
        assert_eq!(a.id, "xx-en.sv");
        assert_eq!(a.path, Path::new("/pool/xx-en.sv"));
        assert_eq!(
            router.adapter_for("en-sv".parse().unwrap()).unwrap().id,
            "en-xx.g1"
        );
        assert_eq!(
            router.adapter_for("en-fr".parse().unwrap()).unwrap().id,
            "en-xx.g4"
        );
        let err = router
            .adapter_for("ru-en".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("direction ru-en is not served by this dat pool"),
            "{err}"
        );
        let err = router.verify_files().unwrap_err().to_string();
        assert!(err.contains("adapter_config.json"), "{err}");
    }
}
