//! numpy's numeric behaviour where sacrebleu's results depend on it: float32 versus
//! float64 score arrays, pairwise summation in `mean()`, and Python's exact `fsum`.

use std::ops::{Add, Div, Mul, Sub};

use super::SampleScore;

/// A numpy array of resampled scores: float32 when every score was a numpy float32,
/// float64 otherwise (as `np.array([...])` infers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scores {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Scores {
    pub(crate) fn from_samples(samples: Vec<SampleScore>) -> Self {
        if samples.iter().all(|s| matches!(s, SampleScore::F32(_))) {
            Scores::F32(
                samples
                    .iter()
                    .map(|s| match s {
                        SampleScore::F32(v) => *v,
                        SampleScore::F64(v) => *v as f32,
                    })
                    .collect(),
            )
        } else {
            Scores::F64(
                samples
                    .iter()
                    .map(|s| match s {
                        SampleScore::F32(v) => f64::from(*v),
                        SampleScore::F64(v) => *v,
                    })
                    .collect(),
            )
        }
    }

    pub(crate) fn as_f64(&self) -> Vec<f64> {
        match self {
            Scores::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Scores::F64(v) => v.clone(),
        }
    }

    /// Sorted ascending (`np.sort` / `sorted`).
    pub(crate) fn sorted(mut self) -> Self {
        match &mut self {
            Scores::F32(v) => v.sort_by(f32::total_cmp),
            Scores::F64(v) => v.sort_by(f64::total_cmp),
        }
        self
    }

    /// The 95% bounds of sorted scores: `s[n // 40]` and `s[n - n // 40 - 1]`.
    pub(crate) fn bounds(&self) -> (f64, f64) {
        let v = self.as_f64();
        let n = v.len();
        (v[n / 40], v[n - n / 40 - 1])
    }

    /// `0.5 * (hi - lo)` in the array's type.
    pub(crate) fn half_range(&self, lo: f64, hi: f64) -> f64 {
        match self {
            Scores::F32(_) => f64::from(0.5f32 * (hi as f32 - lo as f32)),
            Scores::F64(_) => 0.5 * (hi - lo),
        }
    }

    /// `x` rounded to the array's type.
    pub(crate) fn round_to_type(&self, x: f64) -> f64 {
        match self {
            Scores::F32(_) => f64::from(x as f32),
            Scores::F64(_) => x,
        }
    }

    /// `np.abs(self - other)`, float32 only when both are.
    pub(crate) fn abs_diff(&self, other: &Scores) -> Scores {
        match (self, other) {
            (Scores::F32(a), Scores::F32(b)) => {
                Scores::F32(a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect())
            }
            _ => Scores::F64(
                self.as_f64()
                    .iter()
                    .zip(other.as_f64())
                    .map(|(x, y)| (x - y).abs())
                    .collect(),
            ),
        }
    }

    /// `self - scalar`, where `scalar` is a value of the array's own type.
    pub(crate) fn minus_scalar(&self, scalar: f64) -> Scores {
        match self {
            Scores::F32(v) => Scores::F32(v.iter().map(|x| x - scalar as f32).collect()),
            Scores::F64(v) => Scores::F64(v.iter().map(|x| x - scalar).collect()),
        }
    }

    /// `np.sum(self > threshold)` with a Python-float threshold, which numpy 2 compares in
    /// the array's type.
    pub(crate) fn count_greater(&self, threshold: f64) -> usize {
        match self {
            Scores::F32(v) => v.iter().filter(|&&x| x > threshold as f32).count(),
            Scores::F64(v) => v.iter().filter(|&&x| x > threshold).count(),
        }
    }
}

/// The float operations numpy's pairwise summation needs.
trait NpFloat:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    const ZERO: Self;
}

impl NpFloat for f32 {
    const ZERO: Self = 0.0;
}

impl NpFloat for f64 {
    const ZERO: Self = 0.0;
}

/// numpy's `pairwise_sum` (blocks of 128, eight accumulators), which `np.add.reduce`
/// applies to the whole contiguous array.
fn pairwise_sum<T: NpFloat>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        a.iter().fold(T::ZERO, |s, &x| s + x)
    } else if n <= 128 {
        let mut r = [T::ZERO; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        for chunk in a[8..full].chunks_exact(8) {
            for (acc, &x) in r.iter_mut().zip(chunk) {
                *acc = *acc + x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[full..] {
            res = res + x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `arr.mean()` in the array's type.
pub(crate) fn np_mean(scores: &Scores) -> f64 {
    match scores {
        Scores::F32(v) => f64::from(pairwise_sum(v) / v.len() as f32),
        Scores::F64(v) => pairwise_sum(v) / v.len() as f64,
    }
}

/// Python's `math.fsum`: the correctly rounded sum (Shewchuk's exact partials).
pub(crate) fn fsum(values: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &v in values {
        let mut x = v;
        let mut kept = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    // Sum from the top, with CPython's half-even correction of the last rounding.
    let Some(mut hi) = partials.pop() else {
        return 0.0;
    };
    let mut lo = 0.0;
    while let Some(y) = partials.pop() {
        let x = hi;
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if let Some(&next) = partials.last() {
        if (lo < 0.0 && next < 0.0) || (lo > 0.0 && next > 0.0) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsum_is_exact() {
        assert_eq!(fsum(&[0.1; 10]), 1.0);
        assert_eq!(fsum(&[1e100, 1.0, -1e100, 1e-100]), 1.0);
        assert_eq!(fsum(&[]), 0.0);
    }

    #[test]
    fn pairwise_sum_groups_like_numpy() {
        // Small arrays sum left to right; a float32 cancellation shows the grouping.
        assert_eq!(pairwise_sum(&[1e8f32, 1.0, -1e8, 1.0]), 1.0);
        let v: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.1).collect();
        assert!((pairwise_sum(&v) - 49950.0).abs() < 1e-6);
    }
}
