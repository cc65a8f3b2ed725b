use super::{check_eta, denoise, lincomb, noise_between, notify};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// DPM-Solver++(3M) SDE (third-order multistep in data prediction with the SDE noise of
/// [`crate::dpmpp_2m_sde`]; k-diffusion `sample_dpmpp_3m_sde`; "DPM++ 3M SDE"; after Lu et
/// al. 2022, "DPM-Solver++", §3.3 and Appendix B).
///
/// With h_η = (1+η)·h, the base step is e^{−h_η}·x + (1 − e^{−h_η})·D (note e^{−h_η} =
/// (σ'/σ)·e^{−ηh}); the first and second divided differences of D over the last three
/// steps enter with φ₂ = (e^{−h_η} − 1)/h_η + 1 and φ₃ = φ₂/h_η − ½ (second order on the
/// second step, third from the third on). Noise σ'·√(1 − e^{−2ηh})·s_noise·z for (σ, σ')
/// if η > 0. The last step to σ' = 0 returns D.
pub fn dpmpp_3m_sde<L: Latent>(
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
    // History: (D, h) of the previous two steps, newest first.
    let mut hist: Vec<(L, f64)> = Vec::with_capacity(2);
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        if sigma_next == 0.0 {
            x = denoised.clone();
            notify(observer, s, i, &x, &denoised)?;
            continue;
        }
        let h = sigma.ln() - sigma_next.ln();
        let h_eta = h * (eta + 1.0);
        let e = (-h_eta).exp();
        let phi_2 = (-h_eta).exp_m1() / h_eta + 1.0;
        x = match hist.as_slice() {
            [] => lincomb(&[(e, &x), (1.0 - e, &denoised)])?,
            [(d_1, h_1)] => {
                // φ₂·(D − D₁)/r, r = h₁/h.
                let k = phi_2 * h / h_1;
                lincomb(&[(e, &x), (1.0 - e + k, &denoised), (-k, d_1)])?
            }
            [(d_1, h_1), (d_2, h_2), ..] => {
                let (r0, r1) = (h_1 / h, h_2 / h);
                let phi_3 = phi_2 / h_eta - 0.5;
                // d1_0 = (D − D₁)/r0, d1_1 = (D₁ − D₂)/r1,
                // d1 = d1_0 + (d1_0 − d1_1)·r0/(r0+r1), d2 = (d1_0 − d1_1)/(r0+r1),
                // x += φ₂·d1 − φ₃·d2; expanded into weights of D, D₁, D₂.
                let w = r0 / (r0 + r1);
                let q = 1.0 / (r0 + r1);
                let (a0, a1) = ((1.0 + w) * phi_2 - phi_3 * q, -(w * phi_2) + phi_3 * q);
                // coefficient of d1_0: a0; of d1_1: a1.
                let c_d = a0 / r0;
                let c_d1 = -a0 / r0 + a1 / r1;
                let c_d2 = -a1 / r1;
                lincomb(&[(e, &x), (1.0 - e + c_d, &denoised), (c_d1, d_1), (c_d2, d_2)])?
            }
        };
        if eta > 0.0 {
            let z = noise_between(noise, &x, sigma, sigma_next)?;
            let std = sigma_next * (-(-2.0 * h * eta).exp_m1()).sqrt() * s_noise;
            x = lincomb(&[(1.0, &x), (std, &z)])?;
        }
        notify(observer, s, i, &x, &denoised)?;
        hist.insert(0, (denoised, h));
        hist.truncate(2);
    }
    Ok(x)
}
