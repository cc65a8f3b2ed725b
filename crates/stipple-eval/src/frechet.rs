//! The Fréchet distance between two Gaussians fitted to feature sets: FID (Heusel et al.
//! 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
//! Equilibrium", eq. 6) when the features are Inception-v3's pool features.

use crate::linalg::{matmul, pivoted_cholesky, symmetric_eigenvalues, transpose};
use crate::{EvalError, Features};

/// Mean and covariance of a feature set, as pytorch-fid's `calculate_activation_statistics`
/// computes them (`np.mean(axis=0)`, `np.cov(rowvar=False)`: the unbiased estimate, divided
/// by `n − 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussian {
    pub dim: usize,
    pub mean: Vec<f64>,
    /// `dim × dim`, row-major.
    pub cov: Vec<f64>,
}

impl Gaussian {
    /// Fits a Gaussian to `features` (at least 2 samples, for the `n − 1` of the covariance).
    pub fn fit(features: &Features) -> Result<Self, EvalError> {
        let (n, d) = (features.len(), features.dim());
        if n < 2 {
            return Err(EvalError::TooFewSamples { metric: "the covariance", needed: 2, got: n });
        }
        let mut mean = vec![0.0; d];
        for i in 0..n {
            mean.iter_mut().zip(features.row(i)).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centered: Vec<f64> = (0..n).flat_map(|i| features.row(i).iter().zip(&mean).map(|(x, m)| x - m).collect::<Vec<_>>()).collect();
        let xt = transpose(&centered, n, d);
        let mut cov = matmul(&xt, &centered, d, n, d)?;
        cov.iter_mut().for_each(|c| *c /= (n - 1) as f64);
        Ok(Self { dim: d, mean, cov })
    }

    /// A Gaussian from given statistics (e.g. a stored reference), checked square and finite.
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self, EvalError> {
        let dim = mean.len();
        if cov.len() != dim * dim {
            return Err(EvalError::setting("cov", format!("a {dim}×{dim} matrix for a mean of {dim}, got {} values", cov.len())));
        }
        if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite { what: "the mean", row: 0, col: i });
        }
        if let Some(i) = cov.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite { what: "the covariance", row: i / dim, col: i % dim });
        }
        Ok(Self { dim, mean, cov })
    }
}

/// `d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2}` (pytorch-fid's
/// `calculate_frechet_distance`).
///
/// pytorch-fid takes `tr sqrtm(Σ₁Σ₂)` with scipy's Schur-based `sqrtm` and drops the
/// imaginary part rounding leaves. Here the trace is computed without a non-symmetric square
/// root: with `Σ₁ = L·Lᵀ` (pivoted Cholesky, `L` of the numerical rank of `Σ₁`), the non-zero
/// eigenvalues of `Σ₁Σ₂ = L·(LᵀΣ₂)` are those of the symmetric positive semi-definite
/// `LᵀΣ₂L`, so `tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(LᵀΣ₂L)`, all in f64. That holds for singular
/// covariances too (fewer samples than dimensions), where `sqrtm` is ill-conditioned.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64, EvalError> {
    if a.dim != b.dim {
        return Err(EvalError::DimensionMismatch { a: a.dim, b: b.dim });
    }
    let d = a.dim;
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    let (l, r) = pivoted_cholesky(&a.cov, d);
    let m = matmul(&matmul(&transpose(&l, d, r), &b.cov, r, d, d)?, &l, r, d, r)?;
    let sym: Vec<f64> = (0..r * r).map(|k| 0.5 * (m[k] + m[(k % r) * r + k / r])).collect();
    let tr_covmean: f64 = symmetric_eigenvalues(&sym, r).iter().map(|l| l.max(0.0).sqrt()).sum();
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * tr_covmean)
}

/// The Fréchet distance between Gaussians fitted to two feature sets.
pub fn frechet_distance_of(a: &Features, b: &Features) -> Result<f64, EvalError> {
    a.check_pair(b, "the Fréchet distance", 2)?;
    frechet_distance(&Gaussian::fit(a)?, &Gaussian::fit(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_of_diagonal_gaussians_is_the_closed_form() {
        // For commuting covariances d² = ‖Δμ‖² + Σᵢ (√aᵢ − √bᵢ)².
        let a = Gaussian::new(vec![0.0, 1.0, 2.0], vec![4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        let b = Gaussian::new(vec![1.0, 1.0, 0.0], vec![1.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 2.25]).unwrap();
        let want = 1.0 + 4.0 + 1.0 + 4.0 + 2.25;
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-12);
    }

    #[test]
    fn non_finite_statistics_and_mismatched_dimensions_are_refused() {
        assert!(matches!(Gaussian::new(vec![f64::NAN], vec![1.0]), Err(EvalError::NonFinite { what: "the mean", .. })));
        assert!(matches!(Gaussian::new(vec![0.0, 0.0], vec![1.0, 0.0, f64::INFINITY, 1.0]), Err(EvalError::NonFinite { row: 1, col: 0, .. })));
        let a = Gaussian::new(vec![0.0], vec![1.0]).unwrap();
        let b = Gaussian::new(vec![0.0, 0.0], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        assert!(matches!(frechet_distance(&a, &b), Err(EvalError::DimensionMismatch { a: 1, b: 2 })));
    }
}
