//! A set of feature vectors (one row per image), checked finite once at construction.

use crate::EvalError;

/// `n` feature vectors of dimension `dim`, row-major, in f64 (the metrics' precision; the
/// networks emit f32).
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    n: usize,
    dim: usize,
    data: Vec<f64>,
}

impl Features {
    /// `data` holds `n × dim` values row by row. Fails on a NaN or infinity, naming the
    /// sample and feature, or on a length that is not a multiple of `dim`.
    pub fn new(data: Vec<f64>, dim: usize) -> Result<Self, EvalError> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(EvalError::setting("features", format!("{} values do not form rows of {dim}", data.len())));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite { what: "the features", row: i / dim, col: i % dim });
        }
        Ok(Self { n: data.len() / dim, dim, data })
    }

    /// From f32 rows as the networks return them.
    pub fn from_f32(data: &[f32], dim: usize) -> Result<Self, EvalError> {
        Self::new(data.iter().map(|&v| v as f64).collect(), dim)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Features {
        let data = indices.iter().flat_map(|&i| self.row(i).iter().copied()).collect();
        Features { n: indices.len(), dim: self.dim, data }
    }

    /// Fails unless both sets have the same dimension and each holds at least `needed` rows.
    pub fn check_pair(&self, other: &Features, metric: &'static str, needed: usize) -> Result<(), EvalError> {
        if self.dim != other.dim {
            return Err(EvalError::DimensionMismatch { a: self.dim, b: other.dim });
        }
        let got = self.n.min(other.n);
        if got < needed {
            return Err(EvalError::TooFewSamples { metric, needed, got });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_features_are_refused_naming_the_sample_and_feature() {
        let err = Features::new(vec![0.0, 1.0, 2.0, f64::NAN, 4.0, 5.0], 3).unwrap_err();
        assert!(matches!(err, EvalError::NonFinite { row: 1, col: 0, .. }), "{err}");
        assert!(err.to_string().contains("sample 1, feature 0"), "{err}");
        let err = Features::from_f32(&[1.0, f32::INFINITY], 2).unwrap_err();
        assert!(matches!(err, EvalError::NonFinite { row: 0, col: 1, .. }), "{err}");
    }

    #[test]
    fn ragged_data_and_mismatched_pairs_are_refused() {
        assert!(matches!(Features::new(vec![0.0; 5], 2), Err(EvalError::BadSetting { .. })));
        let a = Features::new(vec![0.0; 6], 3).unwrap();
        let b = Features::new(vec![0.0; 6], 2).unwrap();
        assert!(matches!(a.check_pair(&b, "x", 2), Err(EvalError::DimensionMismatch { a: 3, b: 2 })));
        assert!(matches!(a.check_pair(&a, "x", 4), Err(EvalError::TooFewSamples { needed: 4, got: 2, .. })));
    }
}
