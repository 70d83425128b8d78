//! The PEFT adapter directory: `adapter_config.json` + `adapter_model.safetensors`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use crate::config::{LoraConfig, CONFIG_FILE};

/// The file name PEFT uses for the adapter weights.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The prefix PEFT puts before every module path in the saved tensor names.
const PEFT_PREFIX: &str = "base_model.model.";

/// One module's LoRA factors: ΔW = B·A·scaling.
#[derive(Debug, Clone)]
pub struct LoraPair {
    /// `lora_A.weight`, shape `[r, in_features]`.
    pub a: Tensor,
    /// `lora_B.weight`, shape `[out_features, r]`.
    pub b: Tensor,
}

impl LoraPair {
    /// Parameters in the two factors: `r·(in + out)`.
    pub fn parameter_count(&self) -> u64 {
        (self.a.elem_count() + self.b.elem_count()) as u64
    }

    /// The rank `r` of this pair.
    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }

    /// `(out_features, in_features)` of the base weight this pair adapts.
    pub fn base_shape(&self) -> (usize, usize) {
        (self.b.dims()[0], self.a.dims()[1])
    }
}

/// A LoRA adapter: its PEFT configuration and one [`LoraPair`] per adapted module, keyed by the module
/// path inside the base model (e.g. `model.layers.0.self_attn.q_proj`).
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The PEFT configuration.
    pub config: LoraConfig,
    /// Module path → factors.
    pub modules: BTreeMap<String, LoraPair>,
}

/// Which factor of a pair a saved tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Adapter {
    /// LoRA parameters over every adapted module.
    pub fn parameter_count(&self) -> u64 {
        self.modules.values().map(LoraPair::parameter_count).sum()
    }

    /// Builds an adapter, checking that every pair is 2-D, that A and B agree on the rank and that the
    /// rank is the one the config gives the module.
    pub fn new(config: LoraConfig, modules: BTreeMap<String, LoraPair>) -> Result<Self> {
        config.validate()?;
        for (name, pair) in &modules {
            check_pair(&config, name, pair)?;
        }
        Ok(Adapter { config, modules })
    }

    /// Loads a PEFT adapter directory. Accepts PEFT's saved names
    /// (`base_model.model.{module}.lora_A.weight`) and the unstripped legacy form with an adapter name
    /// (`….lora_A.default.weight`); refuses anything else (DoRA magnitudes, embeddings,
    /// `modules_to_save` copies) naming the tensor.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = LoraConfig::load(&dir.join(CONFIG_FILE))?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.exists() {
            let legacy = dir.join("adapter_model.bin");
            if legacy.exists() {
                bail!(
                    "{}: PyTorch pickle adapters are not supported; re-save it with PEFT's save_pretrained (safetensors)",
                    legacy.display()
                );
            }
            bail!("{}: missing adapter weights", weights.display());
        }
        let bytes = std::fs::read(&weights)
            .with_context(|| format!("cannot read adapter weights {}", weights.display()))?;
        Adapter::from_safetensors(config, &bytes, &weights.display().to_string())
            .with_context(|| format!("adapter {}", dir.display()))
    }

    /// Builds an adapter from `config` and the bytes of its `adapter_model.safetensors`
    /// (`origin` names them in errors). The safetensors crate checks the header against the
    /// buffer's length (every tensor's extent must lie inside it), so nothing is allocated
    /// beyond the tensors the bytes hold.
    pub fn from_safetensors(config: LoraConfig, bytes: &[u8], origin: &str) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .with_context(|| format!("{origin}: not a readable safetensors file"))?;
        let modules = pairs_from_tensors(tensors).with_context(|| origin.to_string())?;
        Adapter::new(config, modules)
    }

    /// Writes the adapter as PEFT does (tensor names `base_model.model.{module}.lora_A.weight`, file
    /// metadata `format=pt`). Each file is written crash-safely ([`datm_fsio`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create adapter directory {}", dir.display()))?;
        let mut tensors: Vec<(String, &Tensor)> = Vec::with_capacity(2 * self.modules.len());
        for (name, pair) in &self.modules {
            tensors.push((format!("{PEFT_PREFIX}{name}.lora_A.weight"), &pair.a));
            tensors.push((format!("{PEFT_PREFIX}{name}.lora_B.weight"), &pair.b));
        }
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let weights = dir.join(WEIGHTS_FILE);
        datm_fsio::write_atomic_with(&weights, |tmp| {
            safetensors::serialize_to_file(
                tensors.iter().map(|(n, t)| (n.as_str(), *t)),
                Some(metadata),
                tmp,
            )
            .map_err(anyhow::Error::from)
        })
        .with_context(|| format!("cannot write {}", weights.display()))?;
        let json = self.config.to_json()?;
        let config = dir.join(CONFIG_FILE);
        datm_fsio::write_atomic(&config, json.as_bytes())
            .with_context(|| format!("cannot write {}", config.display()))
    }

    /// The scaling of `module` under this adapter's config (`alpha/r` or `alpha/sqrt(r)`).
    pub fn scaling_for(&self, module: &str) -> f64 {
        self.config.scaling_for(module)
    }

    /// Whether PEFT's `target_modules` semantics select `module` (see [`LoraConfig::target_matches`]).
    pub fn target_matches(&self, module: &str) -> bool {
        self.config.target_matches(module)
    }

    /// The module's effective weight update `B·A·scaling` as an f32 `[out, in]` tensor.
    pub fn delta_weight(&self, module: &str) -> Result<Tensor> {
        let pair = self
            .modules
            .get(module)
            .ok_or_else(|| anyhow!("adapter has no LoRA on module {module}"))?;
        let a = pair.a.to_dtype(DType::F32)?;
        let b = pair.b.to_dtype(DType::F32)?;
        Ok((b.matmul(&a)? * self.scaling_for(module))?)
    }

    /// Refuses an adapter made for another base: one whose config targets none of the base's
    /// modules (PEFT's check, [`LoraConfig::check_targets`]), or with a module the base lacks or
    /// shapes differently. `base` lists the base's linear layers as
    /// `(module path, (out_features, in_features))`.
    pub fn check_against<'a>(
        &self,
        base: impl IntoIterator<Item = (&'a str, (usize, usize))>,
    ) -> Result<()> {
        let base: HashMap<&str, (usize, usize)> = base.into_iter().collect();
        self.config.check_targets(base.keys().copied())?;
        for (name, pair) in &self.modules {
            let (out, inp) = pair.base_shape();
            match base.get(name.as_str()).copied() {
                None => bail!(
                    "adapter module {name} (lora_B [{out}, r] · lora_A [r, {inp}]) does not exist in the base model; \
                     the adapter was made for another base"
                ),
                Some((bo, bi)) if (bo, bi) != (out, inp) => bail!(
                    "adapter module {name} has shape [{out}, {inp}] (lora_B [{out}, {r}], lora_A [{r}, {inp}]) \
                     but the base weight is [{bo}, {bi}]; the adapter was made for another base",
                    r = pair.rank()
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn check_pair(config: &LoraConfig, name: &str, pair: &LoraPair) -> Result<()> {
    let (ad, bd) = (pair.a.dims(), pair.b.dims());
    if ad.len() != 2 || bd.len() != 2 {
        bail!("{name}: lora_A {ad:?} and lora_B {bd:?} must both be 2-D");
    }
    if ad[0] != bd[1] {
        bail!(
            "{name}: lora_A {ad:?} has rank {} but lora_B {bd:?} has rank {}",
            ad[0],
            bd[1]
        );
    }
    let want = config.rank_for(name);
    if ad[0] != want {
        bail!(
            "{name}: lora_A {ad:?} has rank {} but the config gives this module r={want}",
            ad[0]
        );
    }
    Ok(())
}

/// Splits a saved tensor name into the module path and the factor it holds.
fn parse_name(name: &str) -> Result<(String, Side)> {
    let stem = name.strip_prefix(PEFT_PREFIX).unwrap_or(name);
    let stem = stem.strip_suffix(".weight").ok_or_else(|| {
        anyhow!("tensor {name}: not a LoRA weight (expected …lora_A.weight / …lora_B.weight)")
    })?;
    let stem = stem.strip_suffix(".default").unwrap_or(stem);
    if let Some(module) = stem.strip_suffix(".lora_A") {
        return Ok((module.to_string(), Side::A));
    }
    if let Some(module) = stem.strip_suffix(".lora_B") {
        return Ok((module.to_string(), Side::B));
    }
    bail!("tensor {name}: unsupported adapter tensor (only lora_A/lora_B of linear layers are supported)")
}

fn pairs_from_tensors(tensors: HashMap<String, Tensor>) -> Result<BTreeMap<String, LoraPair>> {
    let mut halves: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    for (name, tensor) in tensors {
        let (module, side) = parse_name(&name)?;
        let slot = halves.entry(module).or_default();
        let target = if side == Side::A {
            &mut slot.0
        } else {
            &mut slot.1
        };
        if target.replace(tensor).is_some() {
            bail!("tensor {name}: this LoRA factor appears twice");
        }
    }
    halves
        .into_iter()
        .map(|(module, pair)| match pair {
            (Some(a), Some(b)) => Ok((module, LoraPair { a, b })),
            (None, _) => bail!("module {module}: lora_B without lora_A"),
            (_, None) => bail!("module {module}: lora_A without lora_B"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetModules;

    fn toy() -> Adapter {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[1f32, 2., 3.], [0., 1., -1.]], &dev).unwrap();
        let b = Tensor::new(&[[1f32, 0.], [0., 2.], [1., 1.], [3., -1.]], &dev).unwrap();
        let config = LoraConfig::new(2, 4.0, TargetModules::List(vec!["q_proj".into()]));
        let modules = BTreeMap::from([(
            "model.layers.0.self_attn.q_proj".to_string(),
            LoraPair { a, b },
        )]);
        Adapter::new(config, modules).unwrap()
    }

    #[test]
    fn names_parse_both_forms() {
        let (m, s) =
            parse_name("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight").unwrap();
        assert_eq!(
            (m.as_str(), s == Side::A),
            ("model.layers.0.mlp.up_proj", true)
        );
        let (m, s) =
            parse_name("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight")
                .unwrap();
        assert_eq!(
            (m.as_str(), s == Side::B),
            ("model.layers.0.mlp.up_proj", true)
        );
        let err = parse_name("base_model.model.x.lora_magnitude_vector")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lora_magnitude_vector"), "{err}");
    }

    #[test]
    fn save_load_round_trip_and_delta() {
        let dir = tempfile::tempdir().unwrap();
        let ad = toy();
        ad.save(dir.path()).unwrap();
        let back = Adapter::load(dir.path()).unwrap();
        assert_eq!(back.config, ad.config);
        let d = back
            .delta_weight("model.layers.0.self_attn.q_proj")
            .unwrap();
        // B·A·2: row 1 = [0,2]·A = [0,2,-2] → ×2.
        assert_eq!(d.to_vec2::<f32>().unwrap()[1], vec![0., 4., -4.]);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }

    #[test]
    fn check_against_names_module_and_shapes() {
        let ad = toy();
        let q = "model.layers.0.self_attn.q_proj";
        let k = "model.layers.0.self_attn.k_proj";
        assert!(ad.check_against([(q, (4, 3)), (k, (4, 3))]).is_ok());
        let err = ad.check_against([(q, (4, 5))]).unwrap_err().to_string();
        assert!(
            err.contains("q_proj") && err.contains("[4, 3]") && err.contains("[4, 5]"),
            "{err}"
        );
        let mut other = ad.clone();
        other.config.target_modules = Some(TargetModules::List(vec!["k_proj".into()]));
        let err = other.check_against([(k, (4, 3))]).unwrap_err().to_string();
        assert!(err.contains(q) && err.contains("does not exist"), "{err}");
        // A config naming nothing in the base is refused first, with PEFT's message.
        let err = ad.check_against([(k, (4, 3))]).unwrap_err().to_string();
        assert!(err.contains("not found in the base model"), "{err}");
    }

    #[test]
    fn rank_mismatch_is_refused() {
        let mut ad = toy();
        ad.config.r = 3;
        let err = Adapter::new(ad.config, ad.modules).unwrap_err().to_string();
        assert!(err.contains("r=3"), "{err}");
    }
}
