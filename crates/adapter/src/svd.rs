//! Truncated SVD of a merged ΔW back into LoRA factors (`B = U_r·diag(S_r)`, `A = Vh_r`, as PEFT's
//! `*_svd` merges do).
//!
//! Computed in f64 with faer from the Gram matrix of the smaller side: for an `m×n` matrix M with
//! `m ≥ n`, the eigenvectors of `MᵀM` are the right singular vectors, so `A = V_rᵀ` and `B = M·V_r`
//! (= `U_r·S_r`); for `m < n`, `U_r` comes from `MMᵀ` and `A = diag(S_r)⁻¹·U_rᵀM`. This is an exact
//! SVD (no randomisation); squaring the matrix costs precision only on the small singular values
//! (relative error ≈ 1e-16·σ₁²/σᵢ²), not on the leading ones a LoRA keeps. The product `B·A` is
//! the best rank-r approximation of M, to ≈1e-12 relative when σ_r and σ_{r+1} are separated.

use faer::{Mat, Side};

/// Factors of a rank-`r` approximation: `b` is `[m, r]` and `a` is `[r, n]`, both row-major f32.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank {
    /// `U_r·diag(S_r)`, row-major `[m, r]`.
    pub b: Vec<f32>,
    /// `Vh_r`, row-major `[r, n]`.
    pub a: Vec<f32>,
}

/// The best rank-`rank` factors of the row-major `m×n` matrix `data`. Components beyond `min(m, n)`
/// are zero. Singular values are in descending order, as in `torch.linalg.svd`.
pub fn truncate(data: &[f32], m: usize, n: usize, rank: usize) -> LowRank {
    let mat = Mat::<f64>::from_fn(m, n, |i, j| data[i * n + j] as f64);
    let keep = rank.min(m).min(n);
    let (u_s, vh) = if m >= n {
        let v = top_eigenvectors(&(mat.transpose() * &mat), keep);
        let us = &mat * &v;
        (us, v.transpose().to_owned())
    } else {
        let u = top_eigenvectors(&(&mat * mat.transpose()), keep);
        let s_vh = u.transpose() * &mat;
        let s: Vec<f64> = (0..keep).map(|k| s_vh.row(k).norm_l2()).collect();
        let vh = Mat::from_fn(
            keep,
            n,
            |k, j| if s[k] > 0.0 { s_vh[(k, j)] / s[k] } else { 0.0 },
        );
        let us = Mat::from_fn(m, keep, |i, k| u[(i, k)] * s[k]);
        (us, vh)
    };
    pack(&u_s, &vh, rank)
}

/// The best rank-`rank` factors of the product `B·A` of a row-major `[m, k]` matrix `b` and a
/// row-major `[k, n]` matrix `a`, without forming it: thin QR of B and of Aᵀ, then the SVD of the
/// small `k×k` core `R_B·R_Aᵀ`. Exact and cheap (O((m+n)·k²)) when `k ≪ min(m, n)`, e.g. for a
/// linear merge, whose ΔW is the product of the stacked factors.
pub fn truncate_product(
    b: &[f32],
    a: &[f32],
    m: usize,
    k: usize,
    n: usize,
    rank: usize,
) -> LowRank {
    let bm = Mat::<f64>::from_fn(m, k, |i, c| b[i * k + c] as f64);
    let at = Mat::<f64>::from_fn(n, k, |j, c| a[c * n + j] as f64);
    let (qb, qa) = (bm.qr(), at.qr());
    let core = qb.thin_R() * qa.thin_R().transpose();
    let keep = rank.min(core.nrows()).min(core.ncols());
    let (u_s, vh) = match core.thin_svd() {
        Ok(svd) => {
            let (u, s, v) = (svd.U(), svd.S(), svd.V());
            let us = qb.compute_thin_Q() * Mat::from_fn(u.nrows(), keep, |i, c| u[(i, c)] * s[c]);
            let vh = (qa.compute_thin_Q() * v.subcols(0, keep))
                .transpose()
                .to_owned();
            (us, vh)
        }
        // A k×k SVD of finite numbers converges; should it not, fall back to the dense path.
        Err(_) => return truncate(&dense_product(b, a, m, k, n), m, n, rank),
    };
    pack(&u_s, &vh, rank)
}

fn dense_product(b: &[f32], a: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let bm = Mat::<f64>::from_fn(m, k, |i, c| b[i * k + c] as f64);
    let am = Mat::<f64>::from_fn(k, n, |c, j| a[c * n + j] as f64);
    let p = bm * am;
    (0..m * n).map(|idx| p[(idx / n, idx % n)] as f32).collect()
}

/// Row-major f32 factors `[m, rank]` and `[rank, n]` from `u_s` (`m×keep`) and `vh` (`keep×n`),
/// zero-padded when `keep < rank`.
fn pack(u_s: &Mat<f64>, vh: &Mat<f64>, rank: usize) -> LowRank {
    let (m, keep, n) = (u_s.nrows(), u_s.ncols(), vh.ncols());
    let b = (0..m * rank)
        .map(|idx| {
            let (i, k) = (idx / rank, idx % rank);
            if k < keep {
                u_s[(i, k)] as f32
            } else {
                0.0
            }
        })
        .collect();
    let a = (0..rank * n)
        .map(|idx| {
            let (k, j) = (idx / n, idx % n);
            if k < keep {
                vh[(k, j)] as f32
            } else {
                0.0
            }
        })
        .collect();
    LowRank { b, a }
}

/// The eigenvectors of the symmetric matrix `g` for its `k` largest eigenvalues, largest first.
fn top_eigenvectors(g: &Mat<f64>, k: usize) -> Mat<f64> {
    let n = g.nrows();
    // Symmetric input: the eigen solver cannot fail to converge on it; fall back to zeros if it does.
    match g.self_adjoint_eigen(Side::Lower) {
        Ok(eig) => {
            let u = eig.U();
            Mat::from_fn(n, k, |i, c| u[(i, n - 1 - c)])
        }
        Err(_) => Mat::zeros(n, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(m: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..m * n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    fn product(lr: &LowRank, m: usize, n: usize, r: usize) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for k in 0..r {
                for j in 0..n {
                    out[i * n + j] += lr.b[i * r + k] as f64 * lr.a[k * n + j] as f64;
                }
            }
        }
        out
    }

    /// The rank-r truncation from faer's own SVD, the reference.
    fn reference(data: &[f32], m: usize, n: usize, r: usize) -> Vec<f64> {
        let mat = Mat::<f64>::from_fn(m, n, |i, j| data[i * n + j] as f64);
        let svd = mat.thin_svd().unwrap();
        let (u, s, v) = (svd.U(), svd.S(), svd.V());
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..r).map(|k| u[(i, k)] * s[k] * v[(j, k)]).sum();
            }
        }
        out
    }

    fn rel_err(x: &[f64], y: &[f64]) -> f64 {
        let num: f64 = x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
        let den: f64 = y.iter().map(|b| b * b).sum();
        (num / den).sqrt()
    }

    #[test]
    fn matches_full_svd_truncation_tall_and_wide() {
        for (m, n) in [(40, 24), (24, 40)] {
            let data = pseudo_random(m, n, (m * 31 + n) as u64);
            let lr = truncate(&data, m, n, 6);
            let err = rel_err(&product(&lr, m, n, 6), &reference(&data, m, n, 6));
            assert!(err < 1e-6, "{m}x{n}: {err}");
        }
    }

    #[test]
    fn factors_are_orthonormal_rows_and_scaled_columns() {
        let (m, n, r) = (30, 20, 4);
        let lr = truncate(&pseudo_random(m, n, 9), m, n, r);
        for k in 0..r {
            let norm: f64 = (0..n).map(|j| (lr.a[k * n + j] as f64).powi(2)).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        let col = |k: usize| {
            (0..m)
                .map(|i| (lr.b[i * r + k] as f64).powi(2))
                .sum::<f64>()
        };
        assert!(
            col(0) >= col(1) && col(1) >= col(2),
            "descending singular values"
        );
    }

    #[test]
    fn product_path_equals_dense_path() {
        let (m, k, n, r) = (30, 7, 22, 5);
        let b = pseudo_random(m, k, 3);
        let a = pseudo_random(k, n, 4);
        let fast = truncate_product(&b, &a, m, k, n, r);
        let dense = dense_product(&b, &a, m, k, n);
        let err = rel_err(&product(&fast, m, n, r), &reference(&dense, m, n, r));
        assert!(err < 1e-6, "{err}");
        let full = truncate_product(&b, &a, m, k, n, 9);
        let err = rel_err(
            &product(&full, m, n, 9),
            &dense.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        assert!(err < 1e-6, "rank ≥ k reproduces the product: {err}");
    }

    #[test]
    fn rank_above_min_dim_is_zero_padded() {
        let lr = truncate(&pseudo_random(3, 5, 1), 3, 5, 4);
        assert_eq!(lr.b.len(), 12);
        assert!((0..3).all(|i| lr.b[i * 4 + 3] == 0.0));
        assert!(lr.a[15..].iter().all(|&v| v == 0.0));
    }
}
