use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ancestral_step, Sigmas};

/// Ancestral Euler (k-diffusion `sample_euler_ancestral`): each step σ → σ' is split by
/// [`ancestral_step`] into an Euler step of the probability-flow ODE down to σ_down and
/// fresh noise of standard deviation σ_up, with σ_down² + σ_up² = σ'². η = 0 is Euler.
///
/// x' = (σ_down/σ)·x + (1 − σ_down/σ)·D(x;σ) + s_noise·σ_up·z, z ~ N(0, I); the step to
/// σ' = 0 returns D (σ_down = σ_up = 0, no noise drawn). Noise is drawn only when σ_up > 0.
/// `s_noise` (k-diffusion's noise multiplier, 1 for the exact ancestral step) scales the
/// fresh noise only, so s_noise ≠ 1 leaves the marginal at σ' off by design.
pub fn euler_ancestral<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    eta: f64,
    s_noise: f64,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    check_eta(eta)?;
    let s = sigmas.as_slice();
    let mut x = x;
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        x = if sigma_next == 0.0 {
            denoised.clone()
        } else {
            let (sigma_down, sigma_up) = ancestral_step(sigma, sigma_next, eta);
            let r = sigma_down / sigma;
            if sigma_up > 0.0 {
                let z = noise_between(noise, &x, sigma, sigma_next)?;
                lincomb(&[(r, &x), (1.0 - r, &denoised), (s_noise * sigma_up, &z)])?
            } else {
                lincomb(&[(r, &x), (1.0 - r, &denoised)])?
            }
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
