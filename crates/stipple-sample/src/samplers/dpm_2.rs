use super::{denoise, lincomb, notify, Churn};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// DPM-Solver-2 in σ (k-diffusion `sample_dpm_2`; Lu et al. 2022, "DPM-Solver", Algorithm 1
/// with r = ½, written for the probability-flow ODE dx/dσ = (x − D)/σ as in Karras et al.
/// 2022, Algorithm 2 with the midpoint rule).
///
/// A step σ̂ → σ' takes an Euler half-step to the geometric midpoint σ_m = √(σ̂·σ'), then the
/// full step with the slope there: x' = x + (σ' − σ̂)·(x_m − D(x_m; σ_m))/σ_m. Two model
/// evaluations per step, except the last step to σ' = 0 (Euler, returns D). `churn` adds
/// EDM's stochastic churn (pass [`Churn::NONE`] for the ODE solver).
pub fn dpm_2<L: Latent>(
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
            let sigma_mid = (0.5 * (sigma_hat.ln() + sigma_next.ln())).exp();
            let r = sigma_mid / sigma_hat;
            let x_mid = lincomb(&[(r, &xh), (1.0 - r, &denoised)])?;
            let denoised_mid = denoise(model, &x_mid, sigma_mid)?;
            let c = (sigma_next - sigma_hat) / sigma_mid;
            lincomb(&[(1.0, &xh), (c, &x_mid), (-c, &denoised_mid)])?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
