use super::euler_ancestral;
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// DDPM ancestral sampling (Ho et al. 2020, Algorithm 2, with the posterior variance β̃_t)
/// over the discrete training sigmas.
///
/// Derivation. The DDPM posterior q(x_p | x_t, x₀) has variance
/// β̃ = (1−ᾱ_p)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_p) (for p = t−1, ᾱ_t/ᾱ_p = 1−β_t: Ho et al. eq. 7;
/// for strided timesteps diffusers' `DDPMScheduler` uses the same expression), which is the
/// DDIM σ_t² at η = 1; its mean √ᾱ_p·x̂₀ + √(1−ᾱ_p−β̃)·ε̂ is the DDIM η = 1 mean (Song et al.
/// 2021, §4.1). Hence DDPM = DDIM(η = 1) = [`euler_ancestral`] with η = 1 (see
/// [`crate::ddim`] for the change to VE coordinates). Over all T timesteps it is the
/// original sampler; over fewer it is the strided DDPM of diffusers.
pub fn ddpm<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    euler_ancestral(model, x, sigmas, 1.0, 1.0, noise, observer)
}
