use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ancestral_step, Sigmas};

/// DPM-Solver++ (stochastic), the singlestep SDE variant with an intermediate point at
/// fraction r = ½ of the step in λ = −ln σ (k-diffusion `sample_dpmpp_sde`; "DPM++ SDE";
/// after Lu et al. 2022, "DPM-Solver++", §4 and Algorithm 1).
///
/// Both sub-steps are ancestral: to the midpoint σ_s (noise drawn for (σ, σ_s)) and to σ'
/// with the extrapolated D̂ = (1 − 1/(2r))·D + 1/(2r)·D(x₂; σ_s) (noise for (σ, σ')). Two
/// model evaluations per step; the last step to 0 returns D.
pub fn dpmpp_sde<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    eta: f64,
    s_noise: f64,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    check_eta(eta)?;
    const R: f64 = 0.5;
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
            let sigma_s = (-(t + h * R)).exp();
            let fac = 1.0 / (2.0 * R);
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
