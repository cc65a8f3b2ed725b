use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ancestral_step, Sigmas};

/// Ancestral DPM-Solver++(2S) (Lu et al. 2022, "DPM-Solver++", Algorithm 1 (singlestep,
/// r = ½); k-diffusion `sample_dpmpp_2s_ancestral`; "DPM++ 2S a").
///
/// With λ = −ln σ, a step goes to σ_down of [`ancestral_step`]: h = λ_down − λ, an
/// intermediate point at λ + h/2, x₂ = (σ_s/σ)·x − expm1(−h/2)·D, then
/// x' = (σ_down/σ)·x − expm1(−h)·D(x₂; σ_s), plus s_noise·σ_up·z whenever σ' > 0.
/// If σ_down = 0 the step is Euler to 0 (it returns D, plus noise if σ' > 0).
pub fn dpmpp_2s_ancestral<L: Latent>(
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
            let (t, t_next) = (-sigma.ln(), -sigma_down.ln());
            let h = t_next - t;
            let sigma_s = (-(t + 0.5 * h)).exp();
            let x_2 = lincomb(&[(sigma_s / sigma, &x), (-(-0.5 * h).exp_m1(), &denoised)])?;
            let denoised_2 = denoise(model, &x_2, sigma_s)?;
            lincomb(&[(sigma_down / sigma, &x), (-(-h).exp_m1(), &denoised_2)])?
        };
        if sigma_next > 0.0 && sigma_up > 0.0 {
            let z = noise_between(noise, &x, sigma, sigma_next)?;
            x = lincomb(&[(1.0, &x), (s_noise * sigma_up, &z)])?;
        }
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
