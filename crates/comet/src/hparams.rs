//! A COMET model's hyper-parameters: `hparams.yaml` names the class, and the checkpoint's
//! own `hyper_parameters` (which unbabel-comet's `load_from_checkpoint` uses) override the
//! file's values; keys absent from both take the class defaults of unbabel-comet 2.2.7.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

/// The COMET model classes datm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelClass {
    /// `regression_metric` (wmt22-comet-da, wmt20-comet-da, …): needs references.
    Regression,
    /// `referenceless_regression_metric` (QE): source and hypothesis only.
    Referenceless,
}

/// How the per-layer scalars become mixing weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerTransform {
    /// `torch.softmax` (also used for the `sparsemax_patch` setting since 2.2.6).
    Softmax,
    /// entmax's `sparsemax`.
    Sparsemax,
}

/// Activations of the estimator (`getattr(torch.nn, name.title())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `nn.Tanh`.
    Tanh,
    /// `nn.Sigmoid`.
    Sigmoid,
}

/// The hyper-parameters the forward pass depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    /// The model class.
    pub class: ModelClass,
    /// HF name or path of the encoder (`pretrained_model`).
    pub pretrained_model: String,
    /// Layer-weight normalisation.
    pub layer_transformation: LayerTransform,
    /// Whether each layer is normalised per sentence before mixing.
    pub layer_norm: bool,
    /// Estimator hidden layer sizes.
    pub hidden_sizes: Vec<usize>,
    /// Estimator hidden activation.
    pub activations: Activation,
    /// Activation after the estimator's last linear layer, if any.
    pub final_activation: Option<Activation>,
}

/// Reads `hparams.yaml` and merges the checkpoint's `hyper_parameters` over it.
pub fn resolve(yaml_path: &Path, checkpoint: Option<&Value>) -> Result<Hparams> {
    let text = std::fs::read_to_string(yaml_path)
        .with_context(|| format!("cannot read {}", yaml_path.display()))?;
    let file: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{}: invalid YAML", yaml_path.display()))?;
    let Value::Object(mut merged) = file else {
        bail!(
            "{}: expected a mapping of hyper-parameters",
            yaml_path.display()
        );
    };
    let class = merged
        .get("class_identifier")
        .and_then(Value::as_str)
        .with_context(|| format!("{}: no class_identifier", yaml_path.display()))?
        .to_string();
    if let Some(Value::Object(ck)) = checkpoint {
        merged.extend(ck.clone());
    }
    from_map(&class, &merged).with_context(|| format!("{}", yaml_path.display()))
}

fn from_map(class: &str, m: &serde_json::Map<String, Value>) -> Result<Hparams> {
    let class = match class {
        "regression_metric" => ModelClass::Regression,
        "referenceless_regression_metric" => ModelClass::Referenceless,
        other => bail!(
            "COMET model class `{other}` is not supported (datm runs regression_metric and \
             referenceless_regression_metric)"
        ),
    };
    let str_or = |key: &str, default: &str| -> Result<String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => bail!("`{key}` must be a string, got {v}"),
        }
    };
    let encoder = str_or("encoder_model", "XLM-RoBERTa")?;
    if encoder != "XLM-RoBERTa" {
        bail!("encoder_model `{encoder}` is not supported (datm runs XLM-RoBERTa)");
    }
    let pool = str_or("pool", "avg")?;
    if pool != "avg" {
        bail!("pool `{pool}` is not supported (datm runs `avg`)");
    }
    match m.get("layer") {
        None => {}
        Some(Value::String(s)) if s == "mix" => {}
        Some(v) => bail!("layer {v} is not supported (datm runs `mix`)"),
    }
    let layer_transformation = match str_or("layer_transformation", "softmax")?.as_str() {
        "softmax" | "sparsemax_patch" => LayerTransform::Softmax,
        "sparsemax" => LayerTransform::Sparsemax,
        other => bail!("layer_transformation `{other}` is not supported"),
    };
    let layer_norm = match m.get("layer_norm") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => bail!("`layer_norm` must be a bool, got {v}"),
    };
    let default_sizes: &[usize] = match class {
        ModelClass::Regression => &[3072, 1024],
        ModelClass::Referenceless => &[2048, 1024],
    };
    let hidden_sizes = match m.get("hidden_sizes") {
        None => default_sizes.to_vec(),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_u64().filter(|&n| n > 0).map(|n| n as usize))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("`hidden_sizes` must be positive integers, got {a:?}"))?,
        Some(v) => bail!("`hidden_sizes` must be a non-empty list, got {v}"),
    };
    let activations = activation(&str_or("activations", "Tanh")?)?;
    let final_activation = match m.get("final_activation") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(activation(s)?),
        Some(v) => bail!("`final_activation` must be a string or null, got {v}"),
    };
    Ok(Hparams {
        class,
        pretrained_model: str_or("pretrained_model", "xlm-roberta-large")?,
        layer_transformation,
        layer_norm,
        hidden_sizes,
        activations,
        final_activation,
    })
}

/// `nn.<Name.title()>`: the activations datm implements.
fn activation(name: &str) -> Result<Activation> {
    match title(name).as_str() {
        "Tanh" => Ok(Activation::Tanh),
        "Sigmoid" => Ok(Activation::Sigmoid),
        other => {
            bail!("estimator activation `{name}` (nn.{other}) is not supported (Tanh, Sigmoid)")
        }
    }
}

/// Python's `str.title()` for ASCII names.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_alpha = false;
    for c in s.chars() {
        out.push(if prev_alpha {
            c.to_ascii_lowercase()
        } else {
            c.to_ascii_uppercase()
        });
        prev_alpha = c.is_alphabetic();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_values_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hparams.yaml");
        std::fs::write(
            &p,
            "class_identifier: regression_metric\nlayer_transformation: softmax\nhidden_sizes:\n- 8\n- 4\n",
        )
        .unwrap();
        let ck = serde_json::json!({"layer_transformation": "sparsemax", "layer_norm": false});
        let h = resolve(&p, Some(&ck)).unwrap();
        assert_eq!(h.layer_transformation, LayerTransform::Sparsemax);
        assert!(!h.layer_norm);
        assert_eq!(h.hidden_sizes, vec![8, 4]);
        assert_eq!(h.pretrained_model, "xlm-roberta-large");
        assert_eq!(h.activations, Activation::Tanh);
    }

    #[test]
    fn unsupported_classes_and_activations_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hparams.yaml");
        std::fs::write(&p, "class_identifier: unified_metric\n").unwrap();
        let e = format!("{:#}", resolve(&p, None).unwrap_err());
        assert!(e.contains("`unified_metric` is not supported"), "{e}");
        std::fs::write(
            &p,
            "class_identifier: regression_metric\nactivations: ReLU\n",
        )
        .unwrap();
        let e = format!("{:#}", resolve(&p, None).unwrap_err());
        assert!(e.contains("nn.Relu"), "{e}");
    }
}
