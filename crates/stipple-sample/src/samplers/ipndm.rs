use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// Improved pseudo numerical method (iPNDM; Zhang & Chen 2023, "Fast Sampling of Diffusion
/// Models with Exponential Integrator", §5 / Appendix; the fixed-coefficient form of
/// zju-pi diff-solvers and ComfyUI's k-diffusion fork `sample_ipndm`).
///
/// Adams–Bashforth in σ with the constant-step coefficients of orders 1–4 on the slopes
/// d = (x − D)/σ, warming up from Euler: x' = x + (σ' − σ)·Σ_j b_j·d_{i−j} with
/// b = (1), (3, −1)/2, (23, −16, 5)/12, (55, −59, 37, −9)/24. The last step to σ' = 0
/// returns D.
pub fn ipndm<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    const MAX_ORDER: usize = 4;
    const B: [&[f64]; 4] = [
        &[1.0],
        &[1.5, -0.5],
        &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
        &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
    ];
    let s = sigmas.as_slice();
    let mut x = x;
    let mut ds: Vec<L> = Vec::with_capacity(MAX_ORDER); // newest first
    for i in 0..sigmas.steps() {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        ds.insert(0, lincomb(&[(1.0 / sigma, &x), (-1.0 / sigma, &denoised)])?);
        ds.truncate(MAX_ORDER);
        x = if sigma_next == 0.0 {
            denoised.clone()
        } else {
            let dt = sigma_next - sigma;
            let mut terms: Vec<(f64, &L)> = vec![(1.0, &x)];
            terms.extend(B[ds.len() - 1].iter().map(|b| b * dt).zip(ds.iter()));
            lincomb(&terms)?
        };
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}
