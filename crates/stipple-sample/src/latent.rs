//! The one operation samplers need from a latent: a weighted sum.

use crate::error::BoxError;

/// A value the samplers can move: anything with linear combinations in f64 weights.
pub trait Latent: Clone {
    /// Σ wᵢ·xᵢ; at least one term, all the same shape.
    fn lincomb(terms: &[(f64, &Self)]) -> Result<Self, BoxError>;
}

/// A flat vector of f64: for analytic tests and 1-D data.
impl Latent for Vec<f64> {
    fn lincomb(terms: &[(f64, &Self)]) -> Result<Self, BoxError> {
        let (first, rest) = terms.split_first().ok_or("lincomb needs at least one term")?;
        let n = first.1.len();
        if let Some((_, bad)) = rest.iter().find(|(_, x)| x.len() != n) {
            return Err(format!("lincomb: length {} differs from {}", bad.len(), n).into());
        }
        let mut out: Vec<f64> = first.1.iter().map(|v| first.0 * v).collect();
        for (w, x) in rest {
            out.iter_mut().zip(x.iter()).for_each(|(o, v)| *o += w * v);
        }
        Ok(out)
    }
}
