//! Which adapters translate a language pair: the pool's router, with non-English pairs
//! pivoted through English; without a pool, the base model for every pair.

use std::path::{Path, PathBuf};

use anyhow::Result;
use datm_lang::{Direction, Lang};
use datm_pool::Router;

use crate::error::ApiError;

/// One decoding pass of a translation: a direction and the adapter that serves it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leg {
    /// The direction, `src-tgt`.
    #[serde(serialize_with = "as_string")]
    pub direction: Direction,
    /// Adapter id; `None` = the base model.
    pub adapter: Option<String>,
}

fn as_string<S: serde::Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

/// The routing table of the server.
#[derive(Debug, Clone)]
pub struct Routing {
    router: Option<Router>,
}

impl Routing {
    /// Opens the pool (`None`: the base model serves every pair); the pool's adapter files
    /// must all be present.
    pub fn open(pool: Option<&Path>) -> Result<Routing> {
        let router = pool.map(Router::open).transpose()?;
        if let Some(r) = &router {
            r.verify_files()?;
        }
        Ok(Routing { router })
    }

    /// The pool's routed adapters: id and directory.
    pub fn adapters(&self) -> Vec<(String, PathBuf)> {
        let Some(r) = &self.router else {
            return Vec::new();
        };
        let mut out: Vec<(String, PathBuf)> = r
            .plan()
            .routes
            .keys()
            .filter_map(|&d| r.adapter_for(d).ok())
            .map(|a| (a.id.clone(), a.path.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The passes that translate `source` → `target` (codes): one, or two through English;
    /// the error names what is served.
    pub fn legs(&self, source: &str, target: &str) -> Result<Vec<Leg>, ApiError> {
        let src = self.lang(source)?;
        let tgt = self.lang(target)?;
        if src == tgt {
            return Err(ApiError::bad_request(format!(
                "source and target are both {source}"
            )));
        }
        self.route(src, tgt).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{source}-{target} is not served; this server translates {}",
                self.served().join(", ")
            ))
        })
    }

    /// The passes for two different languages, if served.
    fn route(&self, src: Lang, tgt: Lang) -> Option<Vec<Leg>> {
        let direction = Direction::new(src, tgt).ok()?;
        let Some(router) = &self.router else {
            return Some(vec![Leg {
                direction,
                adapter: None,
            }]);
        };
        let leg = |d: Direction| {
            router.adapter_for(d).ok().map(|a| Leg {
                direction: d,
                adapter: Some(a.id.clone()),
            })
        };
        if let Some(l) = leg(direction) {
            return Some(vec![l]);
        }
        if src.is_english() || tgt.is_english() {
            return None;
        }
        Some(vec![
            leg(Direction::to_english(src))?,
            leg(Direction::from_english(tgt))?,
        ])
    }

    /// Every served pair, `src-tgt`, pivots included.
    pub fn served(&self) -> Vec<String> {
        self.languages()
            .into_iter()
            .flat_map(|(src, tgts)| tgts.into_iter().map(move |t| format!("{src}-{t}")))
            .collect()
    }

    /// Each source language with the targets it can be translated into.
    pub fn languages(&self) -> Vec<(Lang, Vec<Lang>)> {
        let langs: Vec<Lang> = match &self.router {
            None => datm_lang::all().collect(),
            Some(r) => {
                let mut l: Vec<Lang> = r
                    .plan()
                    .routes
                    .keys()
                    .flat_map(|d| [d.src, d.tgt])
                    .collect();
                l.sort_by_key(|l| l.code());
                l.dedup();
                l
            }
        };
        langs
            .iter()
            .map(|&s| {
                let targets: Vec<Lang> = langs
                    .iter()
                    .copied()
                    .filter(|&t| t != s && self.route(s, t).is_some())
                    .collect();
                (s, targets)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    fn lang(&self, code: &str) -> Result<Lang, ApiError> {
        Lang::from_code(code).map_err(|_| {
            let known: Vec<&str> = self.languages().iter().map(|(l, _)| l.code()).collect();
            ApiError::bad_request(format!(
                "unknown language {code:?}; this server translates from {}",
                known.join(", ")
            ))
        })
    }
}
