//! Sweeps (`[sweep]` in an experiment): the paper's Fig. 2 (quality against the number
//! of languages trained together) and its rank and merge-density tables (Tables 5–6) as
//! one experiment whose every point is a pipeline run into the same results store.

use serde::{Deserialize, Serialize};

/// `[sweep]`: values to try; several axes give their Cartesian product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sweep {
    /// Numbers of languages: each point takes the first `k` of the experiment's
    /// `languages` (Fig. 2's x-axis).
    pub languages: Vec<usize>,
    /// LoRA ranks (alpha stays 2·rank).
    pub rank: Vec<usize>,
    /// DATM merge densities.
    pub density: Vec<f64>,
}

/// One point of a sweep: a value per swept axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepPoint {
    /// Languages taken, when swept.
    pub languages: Option<usize>,
    /// LoRA rank, when swept.
    pub rank: Option<usize>,
    /// Merge density, when swept.
    pub density: Option<f64>,
}

impl SweepPoint {
    /// The point's name in tables and folders: `languages=4,rank=8`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(k) = self.languages {
            parts.push(format!("languages={k}"));
        }
        if let Some(r) = self.rank {
            parts.push(format!("rank={r}"));
        }
        if let Some(d) = self.density {
            parts.push(format!("density={d}"));
        }
        parts.join(",")
    }
}

impl Sweep {
    /// Whether no axis has a value.
    pub fn is_empty(&self) -> bool {
        self.languages.is_empty() && self.rank.is_empty() && self.density.is_empty()
    }

    /// Every point, in the order the axes list their values (languages slowest).
    pub fn points(&self) -> Vec<SweepPoint> {
        let (langs, ranks, densities) =
            (axis(&self.languages), axis(&self.rank), axis(&self.density));
        let mut out = Vec::new();
        for l in &langs {
            for r in &ranks {
                for d in &densities {
                    out.push(SweepPoint {
                        languages: *l,
                        rank: *r,
                        density: *d,
                    });
                }
            }
        }
        out
    }

    /// Checks the values against the experiment's `n_languages`; the error names the
    /// offending value.
    pub fn validate(&self, n_languages: usize) -> Result<(), String> {
        if self.is_empty() {
            return Err("[sweep] lists no values (languages, rank or density)".into());
        }
        if let Some(k) = self.languages.iter().find(|&&k| k == 0 || k > n_languages) {
            return Err(format!(
                "[sweep] languages = {k}: the experiment lists {n_languages} languages"
            ));
        }
        if self.rank.contains(&0) {
            return Err("[sweep] rank = 0: ranks must be positive".into());
        }
        if let Some(d) = self.density.iter().find(|d| !(**d > 0.0 && **d <= 1.0)) {
            return Err(format!("[sweep] density = {d}: densities are in (0, 1]"));
        }
        Ok(())
    }
}

/// An axis's values as options; an axis without values is one `None` point.
fn axis<T: Copy>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().copied().map(Some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_the_product_of_the_axes() {
        let s = Sweep {
            languages: vec![2, 4],
            rank: vec![8, 16],
            density: vec![],
        };
        let labels: Vec<String> = s.points().iter().map(SweepPoint::label).collect();
        assert_eq!(
            labels,
            [
                "languages=2,rank=8",
                "languages=2,rank=16",
                "languages=4,rank=8",
                "languages=4,rank=16"
            ]
        );
        let d = Sweep {
            density: vec![0.3, 0.7],
            ..Sweep::default()
        };
        assert_eq!(d.points()[1].label(), "density=0.7");
        assert_eq!(d.points()[1].density, Some(0.7));
    }

    #[test]
    fn bad_values_are_named() {
        let s = |languages: Vec<usize>, rank: Vec<usize>, density: Vec<f64>| Sweep {
            languages,
            rank,
            density,
        };
        assert!(s(vec![2, 4], vec![], vec![]).validate(4).is_ok());
        let err = s(vec![5], vec![], vec![]).validate(4).unwrap_err();
        assert!(err.contains("languages = 5"), "{err}");
        assert!(s(vec![], vec![0], vec![]).validate(4).is_err());
        assert!(s(vec![], vec![], vec![1.5]).validate(4).is_err());
        assert!(Sweep::default().validate(4).is_err());
    }
}
