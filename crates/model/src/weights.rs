//! Named weight tensors, whatever file they came from.
//!
//! Every loader (HF safetensors, GGUF) produces a [`WeightMap`] keyed by the **HF tensor
//! names** (`model.layers.0.self_attn.q_proj.weight`), so the architectures never see file
//! formats. GGUF tensors may stay quantized ([`Weight::Quantized`]).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::Tensor;

/// One weight: a dense tensor, or a quantized GGUF tensor kept for quantized matmuls.
#[derive(Debug, Clone)]
pub enum Weight {
    /// A dense tensor in any dtype.
    Dense(Tensor),
    /// A quantized tensor (GGUF k-quants and friends).
    Quantized(Arc<QTensor>),
}

impl Weight {
    /// The weight's shape, row-major (`[out, in]` for linear layers).
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Weight::Dense(t) => t.dims().to_vec(),
            Weight::Quantized(q) => q.shape().dims().to_vec(),
        }
    }
}

/// Weights by HF name, with the file they came from for error messages.
#[derive(Debug, Default)]
pub struct WeightMap {
    tensors: HashMap<String, Weight>,
    origin: String,
}

impl WeightMap {
    /// An empty map whose errors will name `origin` (usually a file or directory).
    pub fn new(origin: impl Into<String>) -> Self {
        WeightMap {
            tensors: HashMap::new(),
            origin: origin.into(),
        }
    }

    /// Adds or replaces a weight.
    pub fn insert(&mut self, name: impl Into<String>, weight: Weight) {
        self.tensors.insert(name.into(), weight);
    }

    /// Where these weights came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// All tensor names (unordered).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Whether any weight is quantized.
    pub fn has_quantized(&self) -> bool {
        self.tensors
            .values()
            .any(|w| matches!(w, Weight::Quantized(_)))
    }

    /// Consumes the map, yielding every weight with its name.
    pub fn into_weights(self) -> impl Iterator<Item = (String, Weight)> {
        self.tensors.into_iter()
    }

    /// Takes the weight `name`, checking its shape; errors name the file, the tensor and the
    /// expected shape.
    pub fn get(&self, name: &str, expected: &[usize]) -> anyhow::Result<Weight> {
        let w = self.tensors.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: missing tensor {name} (expected shape {expected:?})",
                self.origin
            )
        })?;
        let dims = w.dims();
        anyhow::ensure!(
            dims == expected,
            "{}: tensor {name} has shape {dims:?}, expected {expected:?}",
            self.origin
        );
        Ok(w.clone())
    }
}
