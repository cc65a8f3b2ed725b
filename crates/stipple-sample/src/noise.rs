//! Randomness as an argument.

use crate::error::BoxError;
use stipple_math::ParseNameError;
use std::str::FromStr;

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

/// No noise source, for the deterministic samplers (e.g. [`crate::euler`] without churn):
/// any request for noise fails.
impl<L> Noise<L> for () {
    fn noise_like(&mut self, _x: &L) -> Result<L, BoxError> {
        Err("this run has no noise source, but the sampler asked for noise".into())
    }
}

/// Where a front end takes the samplers' noise from (the `--noise` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// The increment of one Brownian path per image over each step's interval
    /// ([`crate::BrownianTree`]; k-diffusion's `BrownianTreeNoiseSampler`): the result
    /// changes smoothly with the step count.
    Brownian,
    /// A fresh draw of the image's Philox stream for every request (k-diffusion's
    /// `default_noise_sampler`, `torch.randn_like`).
    Independent,
}

impl NoiseKind {
    /// Both kinds, in declaration order.
    pub const ALL: [NoiseKind; 2] = [NoiseKind::Brownian, NoiseKind::Independent];
    const NAMES: &'static [&'static str] = &["brownian", "independent"];

    /// The name in configs and flags.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl FromStr for NoiseKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| ParseNameError { what: "noise", got: s.to_string(), accepted: Self::NAMES })
    }
}

impl std::fmt::Display for NoiseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
