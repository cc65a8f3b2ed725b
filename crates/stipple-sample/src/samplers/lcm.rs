use super::{denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// Latent consistency model sampling (Luo et al. 2023, "Latent Consistency Models",
/// Algorithm 1 (multistep consistency sampling); diffusers `LCMScheduler`, ComfyUI
/// `sample_lcm`).
///
/// Each step jumps to the model's clean estimate D(x; σ) and, unless σ' = 0, re-noises it
/// to σ': x' = D + s_noise·σ'·z. Meant for few-step (consistency-distilled) models, whose
/// denoiser includes the consistency boundary condition c_skip(t)·x + c_out(t)·x̂₀ that
/// diffusers' `LCMScheduler.step` applies itself (Song et al. 2023, §3; timestep_scaling 10).
pub fn lcm<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    s_noise: f64,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let mut x = x;
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        x = if sigma_next > 0.0 {
            let z = noise_between(noise, &denoised, sigma, sigma_next)?;
            lincomb(&[(1.0, &denoised), (s_noise * sigma_next, &z)])?
        } else {
            denoised.clone()
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
