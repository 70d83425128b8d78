//! Numbers that follow Python/numpy 2 promotion rules, so one formula serves both
//! sacrebleu's plain path (Python floats) and its bootstrap path (numpy float32 statistics,
//! NEP 50: a Python scalar meeting a float32 is cast to float32).

use std::ops::{Add, Div, Mul};

use crate::significance::SampleScore;

/// A Python float or a numpy float32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    /// A Python float (or int).
    Py(f64),
    /// A numpy float32.
    F32(f32),
}

impl Num {
    /// The value as a Python float (`float(x)`).
    pub(crate) fn f64(self) -> f64 {
        match self {
            Num::Py(v) => v,
            Num::F32(v) => f64::from(v),
        }
    }

    /// The value as the score type sacrebleu's resampling sees.
    pub(crate) fn sample(self) -> SampleScore {
        match self {
            Num::Py(v) => SampleScore::F64(v),
            Num::F32(v) => SampleScore::F32(v),
        }
    }

    fn op(self, o: Num, f: fn(f64, f64) -> f64, g: fn(f32, f32) -> f32) -> Num {
        match (self, o) {
            (Num::Py(a), Num::Py(b)) => Num::Py(f(a, b)),
            (Num::F32(a), Num::F32(b)) => Num::F32(g(a, b)),
            (Num::Py(a), Num::F32(b)) => Num::F32(g(a as f32, b)),
            (Num::F32(a), Num::Py(b)) => Num::F32(g(a, b as f32)),
        }
    }
}

impl Add for Num {
    type Output = Num;
    fn add(self, o: Num) -> Num {
        self.op(o, |a, b| a + b, |a, b| a + b)
    }
}

impl Mul for Num {
    type Output = Num;
    fn mul(self, o: Num) -> Num {
        self.op(o, |a, b| a * b, |a, b| a * b)
    }
}

impl Div for Num {
    type Output = Num;
    fn div(self, o: Num) -> Num {
        self.op(o, |a, b| a / b, |a, b| a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_scalars_are_weak() {
        let x = Num::F32(3.0);
        assert!(matches!(Num::Py(100.0) * x, Num::F32(_)));
        assert!(matches!(Num::Py(1e-16) * Num::Py(4.0), Num::Py(_)));
        // 0.1 becomes float32 before the division.
        assert_eq!(Num::Py(0.1) / Num::F32(3.0), Num::F32(0.1f32 / 3.0));
    }
}
