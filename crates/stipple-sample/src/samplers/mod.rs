//! The samplers: one short function per file, k-diffusion style (Crowson, `sampling.py`).
//!
//! Every sampler starts from `x` at `sigmas.first()` (the caller scales the initial noise
//! by σ₀), calls only the denoiser, keeps its history in locals, and returns the denoised
//! estimate on the last step to σ = 0.

mod ddim;
mod ddpm;
mod dpmpp_2m;
mod euler;
mod euler_ancestral;
mod heun;

pub use ddim::ddim;
pub use ddpm::ddpm;
pub use dpmpp_2m::dpmpp_2m;
pub use euler::euler;
pub use euler_ancestral::euler_ancestral;
pub use heun::heun;

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

pub(crate) fn noise_like<L>(noise: &mut impl Noise<L>, x: &L) -> Result<L, SampleError> {
    noise.noise_like(x).map_err(SampleError::Noise)
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
