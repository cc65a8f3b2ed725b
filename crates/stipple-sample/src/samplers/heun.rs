use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// Heun's second-order method on the probability-flow ODE (Karras et al. 2022,
/// Algorithm 1 with S_churn = 0; k-diffusion `sample_heun`): an Euler predictor to σ',
/// then the average of the slopes d = (x − D(x;σ))/σ at both ends. Two model
/// evaluations per step, except the last step to σ' = 0, which is an Euler step
/// (it returns D).
pub fn heun<L: Latent>(
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
        if sigma_next == 0.0 {
            x = denoised.clone();
        } else {
            let r = sigma_next / sigma;
            let x_euler = lincomb(&[(r, &x), (1.0 - r, &denoised)])?;
            let denoised_2 = denoise(model, &x_euler, sigma_next)?;
            // x + dt·(d + d₂)/2 with d = (x − D)/σ, d₂ = (x₂ − D₂)/σ', dt = σ' − σ.
            let dt = sigma_next - sigma;
            let (a, b) = (dt / (2.0 * sigma), dt / (2.0 * sigma_next));
            x = lincomb(&[(1.0 + a, &x), (-a, &denoised), (b, &x_euler), (-b, &denoised_2)])?;
        }
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
