use super::{denoise, lincomb, notify, Churn};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// Heun's second-order method on the probability-flow ODE with EDM's optional stochastic
/// churn (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
/// Models", Algorithm 2; with [`Churn::NONE`] Algorithm 1; k-diffusion `sample_heun` with
/// `s_churn`, `s_tmin`, `s_tmax`, `s_noise`).
///
/// Each step first raises σ to σ̂ = σ·(1 + γ) by adding noise ([`Churn`]; none is drawn
/// when γ = 0), then takes an Euler predictor from σ̂ to σ' and averages the slopes
/// d = (x − D(x;σ))/σ at both ends. Two model evaluations per step, except the last step
/// to σ' = 0, which is an Euler step (it returns D).
pub fn heun<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    churn: &Churn,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let mut x = x;
    for i in 0..sigmas.steps() {
        let (xh, sigma_hat) = churn.apply(x, s, i, noise)?;
        let sigma_next = s[i + 1];
        let denoised = denoise(model, &xh, sigma_hat)?;
        x = if sigma_next == 0.0 {
            denoised.clone()
        } else {
            let r = sigma_next / sigma_hat;
            let x_euler = lincomb(&[(r, &xh), (1.0 - r, &denoised)])?;
            let denoised_2 = denoise(model, &x_euler, sigma_next)?;
            // x̂ + dt·(d + d₂)/2, d = (x̂ − D)/σ̂, d₂ = (x₂ − D₂)/σ', dt = σ' − σ̂.
            let dt = sigma_next - sigma_hat;
            let (a, b) = (dt / (2.0 * sigma_hat), dt / (2.0 * sigma_next));
            lincomb(&[(1.0 + a, &xh), (-a, &denoised), (b, &x_euler), (-b, &denoised_2)])?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
