use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// Euler's method on the probability-flow ODE dx/dσ = (x − D(x;σ))/σ (Karras et al. 2022,
/// Algorithm 1 without the second-order correction; k-diffusion `sample_euler` with
/// s_churn = 0).
///
/// The step x + (σ' − σ)·(x − D)/σ is written as (σ'/σ)·x + (1 − σ'/σ)·D, which is also
/// DDIM with η = 0 in VE coordinates (Song et al. 2021, eq. 12); the step to σ' = 0
/// returns D.
pub fn euler<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let mut x = x;
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        x = if sigma_next == 0.0 {
            denoised.clone()
        } else {
            let r = sigma_next / sigma;
            lincomb(&[(r, &x), (1.0 - r, &denoised)])?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
