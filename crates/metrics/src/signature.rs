//! sacrebleu reproducibility signatures (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:…`).

use std::fmt;

use crate::Metric;

/// The `version` field datm writes: sacrebleu 2.6.0 semantics, as implemented by this
/// datm release (SemVer build metadata), e.g. `2.6.0+datm.0.1.0`. It is the only field
/// that differs from sacrebleu's own signature.
pub const SIGNATURE_VERSION: &str = concat!("2.6.0+datm.", env!("CARGO_PKG_VERSION"));

/// The number of references per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NRefs {
    /// The same number for every segment.
    Fixed(usize),
    /// A number that varies between segments.
    Var,
}

impl fmt::Display for NRefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NRefs::Fixed(n) => write!(f, "{n}"),
            NRefs::Var => f.write_str("var"),
        }
    }
}

/// A metric's signature: the global fields sacrebleu puts first, the metric's own
/// fields, and the version last.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// References per segment.
    pub nrefs: NRefs,
    /// Bootstrap resamples (`bs:`), when confidence intervals or paired bootstrap ran.
    pub bs: Option<usize>,
    /// Approximate-randomization trials (`ar:`).
    pub ar: Option<usize>,
    /// The resampling seed as sacrebleu prints it (`12345`, or `none`).
    pub seed: Option<String>,
    /// The metric's own `(long key, short key, value)` fields.
    pub fields: Vec<(&'static str, &'static str, String)>,
}

impl Signature {
    /// The plain signature of `metric` for `nrefs` references.
    pub fn new(metric: &dyn Metric, nrefs: NRefs) -> Self {
        Signature {
            nrefs,
            bs: None,
            ar: None,
            seed: None,
            fields: metric.signature_fields(),
        }
    }

    /// `(key, value)` pairs in sacrebleu's order, with long or short keys.
    pub fn pairs(&self, short: bool) -> Vec<(&'static str, String)> {
        let pick = |long: &'static str, abbr: &'static str| if short { abbr } else { long };
        let mut out = vec![(pick("nrefs", "#"), self.nrefs.to_string())];
        if let Some(bs) = self.bs {
            out.push(("bs", bs.to_string()));
        }
        if let Some(ar) = self.ar {
            out.push(("ar", ar.to_string()));
        }
        if let Some(seed) = &self.seed {
            out.push((pick("seed", "rs"), seed.clone()));
        }
        for (long, abbr, value) in &self.fields {
            out.push((pick(long, abbr), value.clone()));
        }
        out.push((pick("version", "v"), SIGNATURE_VERSION.to_string()));
        out
    }

    /// The `key:value|…` string, long (`short = false`) or abbreviated.
    pub fn format(&self, short: bool) -> String {
        let parts: Vec<String> = self
            .pairs(short)
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        parts.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bleu, BleuOptions, Chrf, ChrfOptions};

    #[test]
    fn formats_like_sacrebleu() {
        let bleu = Bleu::new(BleuOptions::default()).unwrap();
        let sig = Signature::new(&bleu, NRefs::Fixed(1));
        let v = SIGNATURE_VERSION;
        assert_eq!(
            sig.format(false),
            format!("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{v}")
        );
        assert_eq!(
            sig.format(true),
            format!("#:1|c:mixed|e:no|tok:13a|s:exp|v:{v}")
        );
        let chrf = Chrf::new(ChrfOptions::default()).unwrap();
        let mut sig = Signature::new(&chrf, NRefs::Var);
        sig.bs = Some(1000);
        sig.seed = Some("12345".into());
        assert_eq!(
            sig.format(false),
            format!(
                "nrefs:var|bs:1000|seed:12345|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{v}"
            )
        );
    }
}
