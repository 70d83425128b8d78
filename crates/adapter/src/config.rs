//! `adapter_config.json`: the PEFT `LoraConfig`, with PEFT's module-matching semantics.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file name PEFT uses for the adapter configuration.
pub const CONFIG_FILE: &str = "adapter_config.json";

/// PEFT's `target_modules`: a list of module-name suffixes, or one regex matched against the whole name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// Names matched as the whole key or as its last dotted components (`key.endswith("." + name)`).
    List(Vec<String>),
    /// A regular expression that must match the full module key (Python `re.fullmatch`).
    Regex(String),
}

impl TargetModules {
    /// PEFT's name test: the regex matches the whole name, or a list entry is the name or its dotted suffix.
    pub fn matches(&self, module: &str) -> bool {
        match self {
            TargetModules::Regex(pattern) => {
                full_match_regex(pattern).is_ok_and(|re| re.is_match(module))
            }
            TargetModules::List(names) => names
                .iter()
                .any(|n| module == n || module.ends_with(&format!(".{n}"))),
        }
    }
}

/// PEFT's `layers_to_transform`: one layer index or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerSelection {
    /// A single layer index.
    One(usize),
    /// Several layer indices.
    Many(Vec<usize>),
}

/// PEFT's `layers_pattern`: one name or a list of names of the layer container (e.g. `layers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayersPattern {
    /// One container name.
    One(String),
    /// Several container names, tried in order.
    Many(Vec<String>),
}

/// A PEFT LoRA configuration (`adapter_config.json`). Keys datm does not model are kept in `extra`
/// and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Always `"LORA"`.
    pub peft_type: String,
    /// PEFT task type, e.g. `"CAUSAL_LM"`.
    #[serde(default)]
    pub task_type: Option<String>,
    /// The base model the adapter was trained on.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// Revision of the base model.
    #[serde(default)]
    pub revision: Option<String>,
    /// Whether the adapter was saved for inference.
    #[serde(default)]
    pub inference_mode: bool,
    /// Default LoRA rank.
    pub r: usize,
    /// Default LoRA alpha.
    pub lora_alpha: f64,
    /// Dropout on the LoRA input (training only).
    #[serde(default)]
    pub lora_dropout: f64,
    /// Which modules carry LoRA.
    #[serde(default)]
    pub target_modules: Option<TargetModules>,
    /// Modules excluded from `target_modules` (same list/regex semantics).
    #[serde(default)]
    pub exclude_modules: Option<TargetModules>,
    /// Bias handling; datm supports only `"none"`.
    #[serde(default = "default_bias")]
    pub bias: String,
    /// Whether the base layer stores its weight transposed (GPT-2 Conv1D); unsupported.
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// rsLoRA: scaling `alpha/sqrt(r)` instead of `alpha/r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// Modules trained and saved in full (not supported by merging).
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// Initialisation of the LoRA weights (`true`, `false`, `"gaussian"`, `"pissa"`, …).
    #[serde(default = "default_init")]
    pub init_lora_weights: Value,
    /// Only these layer indices carry LoRA.
    #[serde(default)]
    pub layers_to_transform: Option<LayerSelection>,
    /// Name(s) of the layer container used with `layers_to_transform`.
    #[serde(default)]
    pub layers_pattern: Option<LayersPattern>,
    /// Per-module rank overrides: pattern → rank.
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, usize>,
    /// Per-module alpha overrides: pattern → alpha.
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, f64>,
    /// DoRA (weight-decomposed LoRA); unsupported.
    #[serde(default)]
    pub use_dora: bool,
    /// Every other key of the file, preserved on round trip.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

fn default_bias() -> String {
    "none".to_string()
}

fn default_init() -> Value {
    Value::Bool(true)
}

impl LoraConfig {
    /// A plain LoRA configuration (`bias="none"`, no patterns) for `target_modules` at rank `r`.
    pub fn new(r: usize, lora_alpha: f64, target_modules: TargetModules) -> Self {
        LoraConfig {
            peft_type: "LORA".to_string(),
            task_type: Some("CAUSAL_LM".to_string()),
            base_model_name_or_path: None,
            revision: None,
            inference_mode: true,
            r,
            lora_alpha,
            lora_dropout: 0.0,
            target_modules: Some(target_modules),
            exclude_modules: None,
            bias: default_bias(),
            fan_in_fan_out: false,
            use_rslora: false,
            modules_to_save: None,
            init_lora_weights: default_init(),
            layers_to_transform: None,
            layers_pattern: None,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            use_dora: false,
            extra: serde_json::Map::new(),
        }
    }

    /// Reads and validates `adapter_config.json` from `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read adapter config {}", path.display()))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses and validates the text of an `adapter_config.json`; `origin` names it in errors.
    /// Nesting is bounded by serde_json's recursion limit (128).
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let config: LoraConfig = serde_json::from_str(text)
            .with_context(|| format!("{origin}: not a valid PEFT LoRA config"))?;
        config
            .validate()
            .with_context(|| format!("{origin}: unsupported adapter"))?;
        Ok(config)
    }

    /// The configuration as pretty JSON, the way PEFT writes it.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Refuses what datm cannot apply faithfully: non-LoRA PEFT types, DoRA, trained biases, fan-in-fan-out
    /// layers, zero ranks and invalid regexes.
    pub fn validate(&self) -> Result<()> {
        if self.peft_type != "LORA" {
            bail!(
                "peft_type is {:?}; only \"LORA\" adapters are supported",
                self.peft_type
            );
        }
        if self.use_dora {
            bail!("use_dora=true: DoRA adapters are not supported (their magnitude vector changes the merge math)");
        }
        if self.bias != "none" {
            bail!(
                "bias={:?}: adapters with trained biases are not supported; only bias=\"none\"",
                self.bias
            );
        }
        if self
            .extra
            .get("lora_bias")
            .is_some_and(|v| v == &Value::Bool(true))
        {
            bail!("lora_bias=true: adapters with a trained lora_B bias are not supported");
        }
        if self.fan_in_fan_out {
            bail!("fan_in_fan_out=true (Conv1D/GPT-2 style layers) is not supported");
        }
        if self.r == 0 || self.rank_pattern.values().any(|&r| r == 0) {
            bail!("rank 0 in r or rank_pattern");
        }
        for targets in [&self.target_modules, &self.exclude_modules] {
            if let Some(TargetModules::Regex(pattern)) = targets {
                full_match_regex(pattern)?;
            }
        }
        for key in self.rank_pattern.keys().chain(self.alpha_pattern.keys()) {
            pattern_regex(key)?;
        }
        Ok(())
    }

    /// The rank PEFT gives `module` (its `rank_pattern` entry, else `r`).
    pub fn rank_for(&self, module: &str) -> usize {
        pattern_value(&self.rank_pattern, module).unwrap_or(self.r)
    }

    /// The alpha PEFT gives `module` (its `alpha_pattern` entry, else `lora_alpha`).
    pub fn alpha_for(&self, module: &str) -> f64 {
        pattern_value(&self.alpha_pattern, module).unwrap_or(self.lora_alpha)
    }

    /// The LoRA scaling of `module`: `alpha/r`, or `alpha/sqrt(r)` with rsLoRA.
    pub fn scaling_for(&self, module: &str) -> f64 {
        let r = self.rank_for(module) as f64;
        let alpha = self.alpha_for(module);
        if self.use_rslora {
            alpha / r.sqrt()
        } else {
            alpha / r
        }
    }

    /// The largest rank any module of this adapter may have.
    pub fn max_rank(&self) -> usize {
        self.rank_pattern.values().copied().fold(self.r, usize::max)
    }

    /// Whether PEFT would put LoRA on the module named `module` (e.g. `model.layers.0.self_attn.q_proj`):
    /// a regex `target_modules` must match the whole name; a list matches the name itself or its dotted
    /// suffix, then `layers_to_transform`/`layers_pattern` restrict the layer index.
    pub fn target_matches(&self, module: &str) -> bool {
        if let Some(saved) = &self.modules_to_save {
            if saved.iter().any(|m| module_or_parent_named(module, m)) {
                return false;
            }
        }
        if self
            .exclude_modules
            .as_ref()
            .is_some_and(|ex| ex.matches(module))
        {
            return false;
        }
        match &self.target_modules {
            None => false,
            Some(t @ TargetModules::Regex(_)) => t.matches(module),
            Some(t @ TargetModules::List(_)) => t.matches(module) && self.layer_allowed(module),
        }
    }

    /// Refuses a config that puts LoRA on none of `modules` (the base model's linear layers),
    /// as PEFT's `inject_adapter` does, with PEFT 0.21's messages (module sets sorted, as
    /// Python would print a set): an adapter whose `target_modules` names nothing in the base
    /// would otherwise change nothing in silence.
    pub fn check_targets<'a>(&self, modules: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut excluded = false;
        for module in modules {
            if self.target_matches(module) {
                return Ok(());
            }
            excluded |= self
                .exclude_modules
                .as_ref()
                .is_some_and(|ex| ex.matches(module));
        }
        if excluded {
            bail!(
                "No modules were targeted for adaptation. This might be caused by a combination of \
                 mismatched target modules and excluded modules. Please check your `target_modules` \
                 and `exclude_modules` configuration. You may also have only targeted modules that \
                 are marked to be saved (`modules_to_save`)."
            );
        }
        let Some(targets) = &self.target_modules else {
            bail!("No `target_modules` passed: the adapter config targets no module");
        };
        let targets = match targets {
            TargetModules::Regex(pattern) => pattern.clone(),
            TargetModules::List(names) => {
                let mut names: Vec<String> = names.iter().map(|n| py_str(n)).collect();
                names.sort();
                names.dedup();
                format!("{{{}}}", names.join(", "))
            }
        };
        let mut msg = format!(
            "Target modules {targets} not found in the base model. Please check the target modules and try again."
        );
        if let Some(layers) = &self.layers_to_transform {
            let layers = match layers {
                LayerSelection::One(i) => i.to_string(),
                LayerSelection::Many(v) => format!("{v:?}"),
            };
            msg += &format!(" Note: You specified 'layers_to_transform': {layers}.");
        }
        if let Some(pattern) = &self.layers_pattern {
            let pattern = match pattern {
                LayersPattern::One(p) => p.clone(),
                LayersPattern::Many(v) => {
                    let v: Vec<String> = v.iter().map(|p| py_str(p)).collect();
                    format!("[{}]", v.join(", "))
                }
            };
            msg += &format!(" You also specified 'layers_pattern': {pattern}.");
        }
        bail!(msg)
    }

    fn layer_allowed(&self, module: &str) -> bool {
        let wanted = match &self.layers_to_transform {
            None => return true,
            Some(LayerSelection::Many(v)) if v.is_empty() => return true,
            Some(sel) => sel,
        };
        let patterns: Vec<String> = match &self.layers_pattern {
            None => vec![],
            Some(LayersPattern::One(p)) if p.is_empty() => vec![],
            Some(LayersPattern::One(p)) => vec![p.clone()],
            Some(LayersPattern::Many(v)) => v.clone(),
        };
        let Some(index) = layer_index(module, &patterns) else {
            return false;
        };
        match wanted {
            LayerSelection::One(i) => *i == index,
            LayerSelection::Many(v) => v.contains(&index),
        }
    }
}

/// A string as Python's `repr` writes it inside a list or set (single quotes; enough for
/// module names, which hold no quotes or backslashes).
fn py_str(s: &str) -> String {
    format!("'{s}'")
}

/// The first numbered path segment after a layer container, as PEFT extracts it.
fn layer_index(module: &str, patterns: &[String]) -> Option<usize> {
    let regexes: Vec<String> = if patterns.is_empty() {
        vec![r"^.*?\.[^.]*\.(\d+)\.".to_string()]
    } else {
        patterns
            .iter()
            .map(|p| format!(r"^(?:.*?\.)?(?:{p})\.(\d+)\."))
            .collect()
    };
    regexes.iter().find_map(|re| {
        let re = Regex::new(re).ok()?;
        re.captures(module)?.get(1)?.as_str().parse().ok()
    })
}

/// PEFT's `modules_to_save` exclusion: `name` matches whole dotted components of `module`.
fn module_or_parent_named(module: &str, name: &str) -> bool {
    Regex::new(&format!(r"^(?:|.*\.)(?:{name})(?:$|\..*)")).is_ok_and(|re| re.is_match(module))
}

fn full_match_regex(pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$"))
        .with_context(|| format!("target_modules regex {pattern:?} does not compile"))
}

fn pattern_regex(key: &str) -> Result<Regex> {
    Regex::new(&format!(r"^(?:.*\.)?(?:{key})$"))
        .with_context(|| format!("rank/alpha pattern {key:?} does not compile"))
}

/// PEFT's `get_pattern_key`: the first pattern (in key order) whose regex matches the end of `module`
/// at a component boundary.
fn pattern_value<T: Copy>(patterns: &BTreeMap<String, T>, module: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(key, _)| pattern_regex(key).is_ok_and(|re| re.is_match(module)))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> LoraConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn list_targets_match_suffix_components() {
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj","mlp.up_proj"]}"#,
        );
        assert!(c.target_matches("model.layers.0.self_attn.q_proj"));
        assert!(c.target_matches("model.layers.3.mlp.up_proj"));
        assert!(!c.target_matches("model.layers.0.self_attn.xq_proj"));
        assert!(!c.target_matches("model.layers.0.self_attn.k_proj"));
        assert!(c.target_matches("q_proj"));
        let mut c = c;
        c.exclude_modules = Some(TargetModules::List(
            vec!["layers.1.self_attn.q_proj".into()],
        ));
        assert!(!c.target_matches("model.layers.1.self_attn.q_proj"));
        assert!(c.target_matches("model.layers.2.self_attn.q_proj"));
    }

    #[test]
    fn regex_targets_must_match_fully() {
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":".*layers\\.1\\..*(q|v)_proj"}"#,
        );
        assert!(c.target_matches("model.layers.1.self_attn.q_proj"));
        assert!(!c.target_matches("model.layers.0.self_attn.q_proj"));
        assert!(!c.target_matches("model.layers.1.self_attn.q_proj.x"));
    }

    /// Regression (issue 13): PEFT refuses an adapter whose `target_modules` names nothing in
    /// the base model; datm accepted it in silence. The messages are PEFT 0.21.2's, as
    /// `PeftModel.from_pretrained` printed them for the tiny-llama fixture.
    #[test]
    fn targets_naming_nothing_are_refused_as_peft_does() {
        let base = [
            "model.layers.0.self_attn.q_proj",
            "model.layers.1.self_attn.v_proj",
        ];
        let c = cfg(r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj"]}"#);
        assert!(c.check_targets(base).is_ok());
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["c_attn","query"]}"#,
        );
        let e = c.check_targets(base).unwrap_err().to_string();
        assert_eq!(
            e,
            "Target modules {'c_attn', 'query'} not found in the base model. Please check the target modules and try again."
        );
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj"],"layers_to_transform":[5],"layers_pattern":"layers"}"#,
        );
        let e = c.check_targets(base).unwrap_err().to_string();
        assert!(
            e.ends_with(" Note: You specified 'layers_to_transform': [5]. You also specified 'layers_pattern': layers."),
            "{e}"
        );
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj"],"exclude_modules":["q_proj"]}"#,
        );
        let e = c.check_targets(base).unwrap_err().to_string();
        assert!(
            e.starts_with("No modules were targeted for adaptation."),
            "{e}"
        );
        let c = cfg(r#"{"peft_type":"LORA","r":8,"lora_alpha":16}"#);
        assert!(c.check_targets(base).is_err());
    }

    #[test]
    fn layers_to_transform_restricts_indices() {
        let c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj"],"layers_to_transform":[1],"layers_pattern":"layers"}"#,
        );
        assert!(c.target_matches("model.layers.1.self_attn.q_proj"));
        assert!(!c.target_matches("model.layers.0.self_attn.q_proj"));
    }

    #[test]
    fn scaling_with_patterns_and_rslora() {
        let mut c = cfg(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj","v_proj"],
                "rank_pattern":{"v_proj":4},"alpha_pattern":{"layers.1.self_attn.q_proj":2}}"#,
        );
        assert_eq!(c.scaling_for("model.layers.0.self_attn.q_proj"), 2.0);
        assert_eq!(c.scaling_for("model.layers.0.self_attn.v_proj"), 4.0);
        assert_eq!(c.scaling_for("model.layers.1.self_attn.q_proj"), 0.25);
        assert_eq!(c.rank_for("model.layers.0.self_attn.v_proj"), 4);
        assert_eq!(c.max_rank(), 8);
        c.use_rslora = true;
        assert!(
            (c.scaling_for("model.layers.0.self_attn.q_proj") - 16.0 / 8f64.sqrt()).abs() < 1e-12
        );
    }

    #[test]
    fn unknown_keys_round_trip() {
        let text = r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":"q","megatron_core":"megatron.core","loftq_config":{},"eva_config":null}"#;
        let c = cfg(text);
        let back: Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
        assert_eq!(back["megatron_core"], "megatron.core");
        assert_eq!(back["loftq_config"], serde_json::json!({}));
        assert!(back.get("eva_config").unwrap().is_null());
        assert_eq!(back["target_modules"], "q");
    }

    #[test]
    fn unsupported_variants_are_refused() {
        for (field, msg) in [
            (r#""use_dora":true"#, "DoRA"),
            (r#""bias":"all""#, "bias"),
            (r#""fan_in_fan_out":true"#, "fan_in_fan_out"),
            (r#""lora_bias":true"#, "lora_bias"),
            (r#""peft_type":"IA3""#, "peft_type"),
        ] {
            let text = format!(r#"{{"peft_type":"LORA","r":8,"lora_alpha":16,{field}}}"#);
            let text = text.replacen(
                r#""peft_type":"LORA","#,
                "",
                usize::from(field.contains("peft_type")),
            );
            let err = cfg(&text).validate().unwrap_err().to_string();
            assert!(err.contains(msg), "{err}");
        }
    }
}
