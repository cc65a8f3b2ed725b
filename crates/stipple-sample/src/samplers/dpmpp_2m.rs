use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// DPM-Solver++(2M), the second-order multistep solver in data-prediction form (Lu et al.
/// 2022, "DPM-Solver++", Algorithm 2; k-diffusion `sample_dpmpp_2m`).
///
/// With λ = −ln σ and h = λ' − λ, a step is x' = (σ'/σ)·x − expm1(−h)·D̂, where D̂ = D on
/// the first step, and otherwise the extrapolation D̂ = (1 + 1/(2r))·D − 1/(2r)·D_prev with
/// r = h_prev/h. The last step to σ' = 0 returns D.
pub fn dpmpp_2m<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let mut x = x;
    let mut old_denoised: Option<L> = None;
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        if sigma_next == 0.0 {
            x = denoised.clone();
        } else {
            let h = sigma.ln() - sigma_next.ln();
            let (ratio, c) = (sigma_next / sigma, -(-h).exp_m1());
            x = match &old_denoised {
                None => lincomb(&[(ratio, &x), (c, &denoised)])?,
                Some(old) => {
                    let h_last = s[i - 1].ln() - sigma.ln();
                    let k = 1.0 / (2.0 * (h_last / h));
                    lincomb(&[(ratio, &x), (c * (1.0 + k), &denoised), (-c * k, old)])?
                }
            };
        }
        notify(observer, s, i, &x, &denoised)?;
        old_denoised = Some(denoised);
    }
    Ok(x)
}
