//! COMET's layer-wise attention weights (`modules/layerwise_attention.py`): softmax or
//! entmax's sparsemax over one scalar per hidden state, in f32 as torch computes them.

use crate::hparams::LayerTransform;

/// Normalised mixing weights for the per-layer scalars `s`.
pub fn layer_weights(s: &[f32], transform: LayerTransform) -> Vec<f32> {
    match transform {
        LayerTransform::Softmax => softmax(s),
        LayerTransform::Sparsemax => sparsemax(s),
    }
}

fn softmax(s: &[f32]) -> Vec<f32> {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = s.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|&x| x / sum).collect()
}

/// entmax 1.x `sparsemax(X, dim=0)`: shift by the max, sort descending, cumulative sums
/// minus one, support = #{k : k·z_k > C_k}, τ = C_K / K, output max(x − τ, 0).
fn sparsemax(s: &[f32]) -> Vec<f32> {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let x: Vec<f32> = s.iter().map(|&v| v - max).collect();
    let mut z = x.clone();
    z.sort_by(|a, b| b.total_cmp(a));
    let mut cum = Vec::with_capacity(z.len());
    let mut acc = 0f32;
    for &v in &z {
        acc += v;
        cum.push(acc - 1.0);
    }
    let support = (1..=z.len())
        .filter(|&k| k as f32 * z[k - 1] > cum[k - 1])
        .count();
    let tau = cum[support - 1] / support as f32;
    x.iter().map(|&v| (v - tau).max(0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsemax_matches_entmax() {
        // entmax.sparsemax(torch.tensor([0.9, -0.4, 0.7, 0.2, 1.1]), dim=0)
        let w = sparsemax(&[0.9, -0.4, 0.7, 0.2, 1.1]);
        let want = [0.33333334f32, 0.0, 0.13333334, 0.0, 0.53333336];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        assert_eq!(sparsemax(&[0.0; 4]), vec![0.25; 4]);
    }

    #[test]
    fn softmax_sums_to_one() {
        let w = softmax(&[1.0, 2.0, 3.0]);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((w[2] - 0.66524094).abs() < 1e-6);
    }
}
