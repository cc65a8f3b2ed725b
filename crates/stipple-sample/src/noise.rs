//! Randomness as an argument.

use crate::error::BoxError;

/// A source of standard normal noise shaped like a latent.
pub trait Noise<L> {
    /// Independent N(0, 1) values with the shape of `x`.
    fn noise_like(&mut self, x: &L) -> Result<L, BoxError>;
}

impl<L, N: Noise<L> + ?Sized> Noise<L> for &mut N {
    fn noise_like(&mut self, x: &L) -> Result<L, BoxError> {
        (**self).noise_like(x)
    }
}
