use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// Linear multistep (variable-step Adams–Bashforth) on dx/dσ = d(x, σ) = (x − D)/σ
/// (k-diffusion `sample_lms`, order 4; "LMS"; Crowson's adaptation of the classical
/// method, Hairer, Nørsett & Wanner, "Solving ODEs I", §III.5).
///
/// With the last k ≤ `order` slopes d_{i−j} at σ_{i−j}, x' = x + Σ_j c_j·d_{i−j}, where
/// c_j = ∫_{σ_i}^{σ_{i+1}} ℓ_j(τ) dτ integrates the Lagrange basis polynomial of node j
/// ([`adams_coefficients`]). As in k-diffusion, the last step to σ' = 0 extrapolates too
/// (it does not return D exactly).
pub fn lms<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    order: usize,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let order = order.max(1);
    let mut x = x;
    let mut ds: Vec<L> = Vec::with_capacity(order); // newest first
    for i in 0..sigmas.steps() {
        let sigma = s[i];
        let denoised = denoise(model, &x, sigma)?;
        let d = lincomb(&[(1.0 / sigma, &x), (-1.0 / sigma, &denoised)])?;
        ds.insert(0, d);
        ds.truncate(order);
        let nodes: Vec<f64> = (0..ds.len()).map(|j| s[i - j]).collect();
        let coeffs = adams_coefficients(&nodes, s[i], s[i + 1], |t| t, |_| 1.0, 16);
        let mut terms: Vec<(f64, &L)> = vec![(1.0, &x)];
        terms.extend(coeffs.iter().copied().zip(ds.iter()));
        x = lincomb(&terms)?;
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}

/// c_j = ∫_a^b ℓ_j(τ(u)) w(u) du … in general: the weights of an Adams–Bashforth step.
///
/// `nodes` are the abscissae (in the interpolation variable τ) of the history, newest
/// first; `tau(u)` maps the integration variable u ∈ [a, b] to τ and `w(u)` is the weight
/// (dρ/du). Computed with composite 4-point Gauss–Legendre on `panels` equal panels: exact
/// for polynomial integrands up to degree 7 (LMS), and for a smooth weight such as DEIS's
/// e^u the error of a panel of width h is ~3e-9·h⁸ relative (Abramowitz & Stegun 25.4.30).
pub(crate) fn adams_coefficients(
    nodes: &[f64],
    a: f64,
    b: f64,
    tau: impl Fn(f64) -> f64,
    w: impl Fn(f64) -> f64,
    panels: usize,
) -> Vec<f64> {
    // 4-point Gauss–Legendre nodes and weights on [−1, 1].
    const X: [f64; 4] = [-0.861_136_311_594_052_6, -0.339_981_043_584_856_3, 0.339_981_043_584_856_3, 0.861_136_311_594_052_6];
    const W: [f64; 4] = [0.347_854_845_137_453_9, 0.652_145_154_862_546_1, 0.652_145_154_862_546_1, 0.347_854_845_137_453_9];
    let k = nodes.len();
    let panel = (b - a) / panels as f64;
    let mut c = vec![0.0; k];
    for p in 0..panels {
        let (lo, hi) = (a + p as f64 * panel, a + (p + 1) as f64 * panel);
        let (mid, half) = ((lo + hi) / 2.0, (hi - lo) / 2.0);
        for (xq, wq) in X.iter().zip(W) {
            let u = mid + half * xq;
            let t = tau(u);
            let weight = wq * half * w(u);
            for (j, cj) in c.iter_mut().enumerate() {
                let mut l = 1.0;
                for (m, &nm) in nodes.iter().enumerate() {
                    if m != j {
                        l *= (t - nm) / (nodes[j] - nm);
                    }
                }
                *cj += weight * l;
            }
        }
    }
    c
}
