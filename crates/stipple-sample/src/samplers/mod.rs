//! The samplers: one short function per file, k-diffusion style (Crowson, `sampling.py`).
//!
//! Every sampler starts from `x` at `sigmas.first()` (the caller scales the initial noise
//! by σ₀), calls only the denoiser, keeps its history in locals, and returns the denoised
//! estimate on the last step to σ = 0.

mod ddim;
mod ddpm;
mod deis;
mod dpm_2;
mod dpm_2_ancestral;
mod dpmpp_2m;
mod dpmpp_2m_sde;
mod dpmpp_2s_ancestral;
mod dpmpp_3m_sde;
mod dpmpp_sde;
mod edm;
mod euler;
mod euler_ancestral;
mod heun;
mod ipndm;
mod lcm;
mod lms;
mod unipc;

pub use ddim::ddim;
pub use ddpm::ddpm;
pub use dpmpp_2m::dpmpp_2m;
pub use euler::euler;
pub use euler_ancestral::euler_ancestral;
pub use heun::heun;
pub use deis::deis;
pub use dpm_2::dpm_2;
pub use dpm_2_ancestral::dpm_2_ancestral;
pub use dpmpp_2m_sde::{dpmpp_2m_sde, SdeSolver};
pub use dpmpp_2s_ancestral::dpmpp_2s_ancestral;
pub use dpmpp_3m_sde::dpmpp_3m_sde;
pub use dpmpp_sde::dpmpp_sde;
pub use edm::edm;
pub use ipndm::ipndm;
pub use lcm::lcm;
pub use lms::lms;
pub use unipc::{unipc, UniPcVariant};

use crate::denoiser::Denoiser;
use crate::error::SampleError;
use crate::latent::Latent;
use crate::noise::Noise;
use crate::observer::{Observer, StepInfo};
use std::ops::ControlFlow;

pub(crate) fn denoise<L>(model: &mut impl Denoiser<L>, x: &L, sigma: f64) -> Result<L, SampleError> {
    model.denoise(x, sigma).map_err(SampleError::Model)
}

pub(crate) fn lincomb<L: Latent>(terms: &[(f64, &L)]) -> Result<L, SampleError> {
    L::lincomb(terms).map_err(SampleError::Latent)
}

#[allow(dead_code)]
pub(crate) fn noise_like<L>(noise: &mut impl Noise<L>, x: &L) -> Result<L, SampleError> {
    noise.noise_like(x).map_err(SampleError::Noise)
}

pub(crate) fn noise_between<L>(
    noise: &mut impl Noise<L>,
    x: &L,
    sigma: f64,
    sigma_next: f64,
) -> Result<L, SampleError> {
    noise.noise_between(x, sigma, sigma_next).map_err(SampleError::Noise)
}

/// EDM's "churn" (Karras et al. 2022, Algorithm 2, lines 4–6): before each step with
/// σ ∈ [s_tmin, s_tmax], raise the noise level to σ̂ = σ·(1 + γ) with
/// γ = min(s_churn/steps, √2 − 1) by adding fresh noise of standard deviation
/// s_noise·√(σ̂² − σ²). k-diffusion `sample_euler`/`sample_heun`/`sample_dpm_2` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    pub s_churn: f64,
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
}

impl Churn {
    /// No churn: the deterministic sampler.
    pub const NONE: Churn = Churn { s_churn: 0.0, s_tmin: 0.0, s_tmax: f64::INFINITY, s_noise: 1.0 };
    /// The values of Karras et al. 2022, Table 5 (ImageNet-64): S_churn = 40,
    /// S_tmin = 0.05, S_tmax = 50, S_noise = 1.003.
    pub const EDM_IMAGENET: Churn = Churn { s_churn: 40.0, s_tmin: 0.05, s_tmax: 50.0, s_noise: 1.003 };

    /// γ for a step starting at σ in a schedule of `steps` steps.
    pub fn gamma(&self, sigma: f64, steps: usize) -> f64 {
        if self.s_churn > 0.0 && self.s_tmin <= sigma && sigma <= self.s_tmax {
            (self.s_churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        }
    }

    /// Applies the churn to `x` at `sigmas[i]`: returns (x̂, σ̂).
    pub(crate) fn apply<L: Latent>(
        &self,
        x: L,
        sigmas: &[f64],
        i: usize,
        noise: &mut impl Noise<L>,
    ) -> Result<(L, f64), SampleError> {
        let sigma = sigmas[i];
        let gamma = self.gamma(sigma, sigmas.len() - 1);
        if gamma <= 0.0 {
            return Ok((x, sigma));
        }
        let sigma_hat = sigma * (gamma + 1.0);
        let z = noise_between(noise, &x, sigma, sigmas[i + 1])?;
        let std = self.s_noise * (sigma_hat * sigma_hat - sigma * sigma).sqrt();
        Ok((lincomb(&[(1.0, &x), (std, &z)])?, sigma_hat))
    }
}

pub(crate) fn check_eta(eta: f64) -> Result<(), SampleError> {
    if eta.is_finite() && eta >= 0.0 {
        Ok(())
    } else {
        Err(SampleError::InvalidEta(eta))
    }
}

/// Tells the observer that step `i` (σ = sigmas[i] → sigmas[i+1]) is done.
pub(crate) fn notify<L>(
    observer: &mut impl Observer<L>,
    sigmas: &[f64],
    i: usize,
    x: &L,
    denoised: &L,
) -> Result<(), SampleError> {
    let info = StepInfo {
        step: i,
        steps: sigmas.len() - 1,
        sigma: sigmas[i],
        sigma_next: sigmas[i + 1],
        x,
        denoised,
    };
    match observer.on_step(&info) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(SampleError::Cancelled { step: i }),
    }
}
