//! Randomness as an argument.

use crate::error::BoxError;

/// A source of standard normal noise shaped like a latent.
pub trait Noise<L> {
    /// Independent N(0, 1) values with the shape of `x`.
    fn noise_like(&mut self, x: &L) -> Result<L, BoxError>;

    /// N(0, 1) noise for the move from noise level `sigma` to `sigma_next`.
    ///
    /// The SDE and ancestral samplers added with k-diffusion semantics draw their noise
    /// here (k-diffusion's `noise_sampler(sigma, sigma_next)`), so a source can tie the
    /// noise to the interval (a Brownian tree, or recorded reference noise). The default
    /// ignores the interval and calls [`Noise::noise_like`].
    fn noise_between(&mut self, x: &L, sigma: f64, sigma_next: f64) -> Result<L, BoxError> {
        let _ = (sigma, sigma_next);
        self.noise_like(x)
    }
}

impl<L, N: Noise<L> + ?Sized> Noise<L> for &mut N {
    fn noise_like(&mut self, x: &L) -> Result<L, BoxError> {
        (**self).noise_like(x)
    }
    fn noise_between(&mut self, x: &L, sigma: f64, sigma_next: f64) -> Result<L, BoxError> {
        (**self).noise_between(x, sigma, sigma_next)
    }
}
