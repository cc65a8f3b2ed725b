use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// How [`dpmpp_2m_sde`] uses the previous denoised estimate (k-diffusion `solver_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SdeSolver {
    /// The first-order correction ½·(1 − e^{−h(1+η)})·(D − D_prev)/r (the default).
    #[default]
    Midpoint,
    /// The exponential-integrator (φ₂) correction, second order in h.
    Heun,
}

/// DPM-Solver++(2M) SDE (Lu et al. 2022, "DPM-Solver++", §4, eq. 9 with the SDE
/// discretisation of Gonzalez et al.; k-diffusion `sample_dpmpp_2m_sde`; "DPM++ 2M SDE").
///
/// With λ = −ln σ, h = λ' − λ and ηh = η·h, a step is
/// x' = (σ'/σ)·e^{−ηh}·x + (1 − e^{−h−ηh})·D + correction + σ'·√(1 − e^{−2ηh})·s_noise·z,
/// where the correction uses D − D_prev scaled by 1/r, r = h_prev/h ([`SdeSolver`]);
/// η = 0 with `Midpoint` is [`crate::dpmpp_2m`]. Noise is drawn for (σ, σ') only if η > 0.
/// The last step to σ' = 0 returns D.
#[allow(clippy::too_many_arguments)]
pub fn dpmpp_2m_sde<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    eta: f64,
    s_noise: f64,
    solver: SdeSolver,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    check_eta(eta)?;
    let s = sigmas.as_slice();
    let mut x = x;
    let mut old: Option<(L, f64)> = None; // (D_prev, h_prev)
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        if sigma_next == 0.0 {
            x = denoised.clone();
            notify(observer, s, i, &x, &denoised)?;
            continue;
        }
        let h = sigma.ln() - sigma_next.ln();
        let eta_h = eta * h;
        let a = sigma_next / sigma * (-eta_h).exp();
        let b = -(-h - eta_h).exp_m1();
        x = match &old {
            None => lincomb(&[(a, &x), (b, &denoised)])?,
            Some((old_denoised, h_last)) => {
                let r = h_last / h;
                let k = match solver {
                    SdeSolver::Heun => (b / (-h - eta_h) + 1.0) / r,
                    SdeSolver::Midpoint => 0.5 * b / r,
                };
                lincomb(&[(a, &x), (b + k, &denoised), (-k, old_denoised)])?
            }
        };
        if eta > 0.0 {
            let z = noise_between(noise, &x, sigma, sigma_next)?;
            let std = sigma_next * (-(-2.0 * eta_h).exp_m1()).sqrt() * s_noise;
            x = lincomb(&[(1.0, &x), (std, &z)])?;
        }
        notify(observer, s, i, &x, &denoised)?;
        old = Some((denoised, h));
    }
    Ok(x)
}
