use super::euler_ancestral;
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// DDIM with stochasticity η (Song et al. 2021, "Denoising Diffusion Implicit Models",
/// eq. 12 and 16), run over the discrete training sigmas (e.g. `SigmaSchedule::Leading`).
///
/// Derivation. In VP coordinates x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, DDIM steps t → p by
///   x_p = √ᾱ_p·x̂₀ + √(1−ᾱ_p−σ_t²)·ε̂ + σ_t·z,
///   σ_t² = η²·(1−ᾱ_p)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_p),
/// with x̂₀ = D and ε̂ = (x̃ − D)/σ in VE coordinates x̃ = x/√ᾱ, σ² = (1−ᾱ)/ᾱ. Dividing by
/// √ᾱ_p: x̃_p = D + σ_down·ε̂ + σ_up·z with σ_up = σ_t/√ᾱ_p and
/// σ_down = √(σ_p² − σ_up²). Substituting ᾱ = 1/(1+σ²) gives
///   σ_up² = η²·σ_p²·(σ² − σ_p²)/σ²,
/// which is exactly k-diffusion's `get_ancestral_step`; and D + σ_down·(x̃ − D)/σ is the
/// Euler step to σ_down. So DDIM(η) is [`euler_ancestral`] with the same η, and η = 0 is
/// [`crate::euler`]. The final step to σ = 0 returns x̂₀, i.e. diffusers' DDIM with
/// `set_alpha_to_one = True`. `s_noise` multiplies the fresh noise σ_up·z as in
/// [`euler_ancestral`] (1 is DDIM; diffusers has no such factor).
pub fn ddim<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    eta: f64,
    s_noise: f64,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    euler_ancestral(model, x, sigmas, eta, s_noise, noise, observer)
}
