use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ancestral_step, Sigmas};

/// DPM-Solver++ (stochastic), the singlestep SDE variant with an intermediate point at
/// fraction r of the step in λ = −ln σ (k-diffusion `sample_dpmpp_sde`, default r = ½;
/// "DPM++ SDE"; after Lu et al. 2022, "DPM-Solver++", §4 and Algorithm 1, whose
/// second-order singlestep solver takes r₁ = ½).
///
/// Both sub-steps are ancestral: to σ_s = exp(−(λ + r·h)) (noise drawn for (σ, σ_s)) and to
/// σ' with the extrapolated D̂ = (1 − 1/(2r))·D + 1/(2r)·D(x₂; σ_s) (noise for (σ, σ')),
/// each scaled by `s_noise`. r must lie in (0, 1]. Two model evaluations per step; the last
/// step to 0 returns D.
#[allow(clippy::too_many_arguments)]
pub fn dpmpp_sde<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    eta: f64,
    s_noise: f64,
    r: f64,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    check_eta(eta)?;
    if !(r > 0.0 && r <= 1.0) {
        return Err(SampleError::InvalidOption { name: "r", value: r, expected: "a fraction in (0, 1]" });
    }
    let s = sigmas.as_slice();
    let mut x = x;
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        if sigma_next == 0.0 {
            x = denoised.clone();
        } else {
            let (t, t_next) = (-sigma.ln(), -sigma_next.ln());
            let h = t_next - t;
            let sigma_s = (-(t + h * r)).exp();
            let fac = 1.0 / (2.0 * r);
            // Step 1, to σ_s.
            let (sd, su) = ancestral_step(sigma, sigma_s, eta);
            let s_ = -sd.ln();
            let mut x_2 = lincomb(&[(sd / sigma, &x), (-(t - s_).exp_m1(), &denoised)])?;
            if su > 0.0 {
                let z = noise_between(noise, &x, sigma, sigma_s)?;
                x_2 = lincomb(&[(1.0, &x_2), (s_noise * su, &z)])?;
            }
            let denoised_2 = denoise(model, &x_2, sigma_s)?;
            // Step 2, to σ'.
            let (sd, su) = ancestral_step(sigma, sigma_next, eta);
            let t_next_ = -sd.ln();
            let c = -(t - t_next_).exp_m1();
            x = lincomb(&[(sd / sigma, &x), (c * (1.0 - fac), &denoised), (c * fac, &denoised_2)])?;
            if su > 0.0 {
                let z = noise_between(noise, &x, sigma, sigma_next)?;
                x = lincomb(&[(1.0, &x), (s_noise * su, &z)])?;
            }
        }
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
