use super::{denoise, lincomb, notify, Churn};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// Euler's method on the probability-flow ODE dx/dσ = (x − D(x;σ))/σ, with EDM's optional
/// stochastic churn (Karras et al. 2022, Algorithm 2 with Euler steps, i.e. without the
/// second-order correction; k-diffusion `sample_euler` with `s_churn`, `s_tmin`, `s_tmax`,
/// `s_noise`).
///
/// Each step first raises σ to σ̂ by adding noise ([`Churn`]; [`Churn::NONE`] adds none and
/// draws nothing), then steps from σ̂ to σ'. The step x̂ + (σ' − σ̂)·(x̂ − D)/σ̂ is written as
/// (σ'/σ̂)·x̂ + (1 − σ'/σ̂)·D, which without churn is also DDIM with η = 0 in VE coordinates
/// (Song et al. 2021, eq. 12); the step to σ' = 0 returns D.
pub fn euler<L: Latent>(
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
            lincomb(&[(r, &xh), (1.0 - r, &denoised)])?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
