use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ancestral_step, Sigmas};

/// Ancestral DPM-Solver-2 (k-diffusion `sample_dpm_2_ancestral`; "DPM2 a"): each step
/// σ → σ' is split by [`ancestral_step`] into a [`crate::dpm_2`] step (midpoint in ln σ)
/// down to σ_down and fresh noise s_noise·σ_up·z.
///
/// As in k-diffusion, a step whose σ_down is 0 (the last step, or σ_up clamped to σ') is
/// an Euler step to 0 that returns D and adds no noise.
pub fn dpm_2_ancestral<L: Latent>(
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
        let (sigma_down, sigma_up) = ancestral_step(sigma, sigma_next, eta);
        x = if sigma_down == 0.0 {
            denoised.clone()
        } else {
            let sigma_mid = (0.5 * (sigma.ln() + sigma_down.ln())).exp();
            let r = sigma_mid / sigma;
            let x_mid = lincomb(&[(r, &x), (1.0 - r, &denoised)])?;
            let denoised_mid = denoise(model, &x_mid, sigma_mid)?;
            let c = (sigma_down - sigma) / sigma_mid;
            let z = noise_between(noise, &x, sigma, sigma_next)?;
            lincomb(&[(1.0, &x), (c, &x_mid), (-c, &denoised_mid), (s_noise * sigma_up, &z)])?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
