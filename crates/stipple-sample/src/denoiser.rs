//! The denoiser contract and the wrapper that turns a raw network into a denoiser.

use crate::error::BoxError;
use crate::latent::Latent;
use stipple_math::Prediction;

/// A model answering `D(x; σ) ≈ E[x₀ | x]` for `x = x₀ + σ·ε` (Karras et al. 2022, §2).
pub trait Denoiser<L> {
    fn denoise(&mut self, x: &L, sigma: f64) -> Result<L, BoxError>;
}

impl<L, D: Denoiser<L> + ?Sized> Denoiser<L> for &mut D {
    fn denoise(&mut self, x: &L, sigma: f64) -> Result<L, BoxError> {
        (**self).denoise(x, sigma)
    }
}

/// A raw network F, before preconditioning.
pub trait Network<L> {
    /// Raw network output F(c_in·x, c_noise).
    fn predict(&mut self, x_in: &L, c_noise: f64) -> Result<L, BoxError>;
}

impl<L, N: Network<L> + ?Sized> Network<L> for &mut N {
    fn predict(&mut self, x_in: &L, c_noise: f64) -> Result<L, BoxError> {
        (**self).predict(x_in, c_noise)
    }
}

/// D(x;σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ)) (Karras et al. 2022, eq. 7),
/// with the scalings of `prediction` ([`Prediction::scalings`]) and the noise conditioning
/// `c_noise` (e.g. `|s| schedule.timestep_for(s)` for a discrete VP net, or
/// [`stipple_math::edm_c_noise`]).
///
/// The same table gives the training target ([`Preconditioned::target_coefficients`]),
/// so loss and sampling cannot disagree. Mirrors k-diffusion `external.DiscreteEpsDDPMDenoiser`
/// / `DiscreteVDDPMDenoiser` and `layers.Denoiser`.
#[derive(Debug, Clone)]
pub struct Preconditioned<N, C> {
    pub net: N,
    pub prediction: Prediction,
    pub c_noise: C,
}

impl<N, C: FnMut(f64) -> f64> Preconditioned<N, C> {
    pub fn new(net: N, prediction: Prediction, c_noise: C) -> Self {
        Self {
            net,
            prediction,
            c_noise,
        }
    }

    /// (a, b) with training target a·x₀ + b·ε for x = x₀ + σ·ε
    /// ([`Prediction::target_coefficients`]).
    pub fn target_coefficients(&self, sigma: f64) -> (f64, f64) {
        self.prediction.target_coefficients(sigma)
    }
}

impl<L: Latent, N: Network<L>, C: FnMut(f64) -> f64> Denoiser<L> for Preconditioned<N, C> {
    fn denoise(&mut self, x: &L, sigma: f64) -> Result<L, BoxError> {
        let s = self.prediction.scalings(sigma);
        let x_in = L::lincomb(&[(s.c_in, x)])?;
        let f = self.net.predict(&x_in, (self.c_noise)(sigma))?;
        if s.c_skip == 0.0 {
            L::lincomb(&[(s.c_out, &f)])
        } else {
            L::lincomb(&[(s.c_skip, x), (s.c_out, &f)])
        }
    }
}
