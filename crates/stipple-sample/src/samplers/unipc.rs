use super::{denoise, lincomb, notify};
use crate::{Denoiser, Latent, Observer, SampleError};
use stipple_math::Sigmas;

/// The B(h) of UniPC (Zhao et al. 2023, §3.2 and Appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UniPcVariant {
    /// B(h) = h (A1111's and ComfyUI's default `uni_pc`).
    #[default]
    Bh1,
    /// B(h) = e^h − 1 (diffusers' default).
    Bh2,
}

/// UniPC: unified predictor–corrector in data prediction (Zhao et al. 2023, "UniPC: A
/// Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models",
/// Algorithms 2–3; diffusers `UniPCMultistepScheduler` with `predict_x0`, `lower_order_final`).
///
/// In λ = −ln σ with h = λ' − λ: the predictor UniP-k is x' = (σ'/σ)·x + (1 − e^{−h})·D
/// − B(h)·Σ_m a_m·D1_m, with D1_m = (D_{i−m} − D)/r_m, r_m = (λ_{i−m} − λ)/h, and the
/// weights from the order conditions Σ_m a_m·r_m^{p−1} = φ_{p+1}(−h)·p!/B(h). After the
/// next model evaluation D(x'; σ'), the corrector UniC recomputes x' from the same start
/// with the new value as one more node (r = 1), at no extra evaluation. `order` (≤ 3) is
/// lowered on the first steps (warm-up) and the last ones (`lower_order_final`); the last
/// step to σ' = 0 returns D, the limit of the order-1 step (diffusers' bh1 evaluates
/// B(h)·0 = −∞·0 there and returns NaN).
pub fn unipc<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    order: usize,
    variant: UniPcVariant,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let s = sigmas.as_slice();
    let n = sigmas.steps();
    let max_order = order.clamp(1, 3);
    let mut x = x;
    // History, newest first: (D, σ) at the points visited. `prev` holds the start of the
    // last step (x, its order) for the corrector.
    let mut hist: Vec<(L, f64)> = Vec::with_capacity(max_order);
    let mut prev: Option<(L, usize)> = None;
    for i in 0..n {
        let (sigma, sigma_next) = (s[i], s[i + 1]);
        let denoised = denoise(model, &x, sigma)?;
        if let Some((x_prev, k)) = prev.take() {
            // UniC: correct x (at σ) using D(x; σ) as the newest node.
            x = uni_step(&x_prev, &hist, Some(&denoised), sigma, k, variant)?;
        }
        hist.insert(0, (denoised.clone(), sigma));
        hist.truncate(max_order);
        if sigma_next == 0.0 {
            x = denoised.clone();
        } else {
            let k = max_order.min(n - i).min(hist.len());
            let x_new = uni_step(&x, &hist, None, sigma_next, k, variant)?;
            prev = Some((x, k));
            x = x_new;
        }
        notify(observer, s, i, &x, &denoised)?;
    }
    Ok(x)
}

/// One UniP (model_t = None) or UniC (model_t = Some(D at σ_t)) update of order k from
/// x at σ₀ = hist[0].1 to σ_t, with the multistep history `hist` (newest first).
fn uni_step<L: Latent>(
    x: &L,
    hist: &[(L, f64)],
    model_t: Option<&L>,
    sigma_t: f64,
    k: usize,
    variant: UniPcVariant,
) -> Result<L, SampleError> {
    let (m0, sigma_0) = (&hist[0].0, hist[0].1);
    let (lambda_0, lambda_t) = (-sigma_0.ln(), -sigma_t.ln());
    let h = lambda_t - lambda_0;
    let hh = -h;
    let h_phi_1 = hh.exp_m1();
    let b_h = match variant {
        UniPcVariant::Bh1 => hh,
        UniPcVariant::Bh2 => h_phi_1,
    };
    // r_m for the older points m = 1 … k−1, then 1 (the new point).
    let mut rks: Vec<f64> = (1..k).map(|m| (-hist[m].1.ln() - lambda_0) / h).collect();
    rks.push(1.0);
    // Order conditions: rows rks^(p−1), right-hand side φ-terms.
    let mut r_mat = vec![vec![0.0; k]; k];
    let mut b = vec![0.0; k];
    let mut h_phi_k = h_phi_1 / hh - 1.0;
    let mut factorial = 1.0;
    for p in 1..=k {
        for (c, rk) in rks.iter().enumerate() {
            r_mat[p - 1][c] = rk.powi(p as i32 - 1);
        }
        b[p - 1] = h_phi_k * factorial / b_h;
        factorial *= (p + 1) as f64;
        h_phi_k = h_phi_k / hh - 1.0 / factorial;
    }
    // x_t_ = (σ_t/σ₀)·x − h_phi_1·m0, then − B(h)·Σ ρ_m·D1_m.
    let mut terms: Vec<(f64, &L)> = vec![(sigma_t / sigma_0, x), (-h_phi_1, m0)];
    let mut m0_weight = -h_phi_1;
    let rhos: Vec<f64> = match model_t {
        None if k == 1 => vec![],
        None if k == 2 => vec![0.5],
        None => solve(&r_mat[..k - 1].iter().map(|r| r[..k - 1].to_vec()).collect::<Vec<_>>(), &b[..k - 1]),
        Some(_) if k == 1 => vec![0.5],
        Some(_) => solve(&r_mat, &b),
    };
    // D1_m = (D_m − m0)/r_m for m = 1 … k−1; D1_t = D_t − m0 (r = 1).
    for m in 1..k.min(rhos.len() + 1) {
        let w = -b_h * rhos[m - 1] / rks[m - 1];
        terms.push((w, &hist[m].0));
        m0_weight -= w;
    }
    if let Some(mt) = model_t {
        let w = -b_h * rhos[k - 1];
        terms.push((w, mt));
        m0_weight -= w;
    }
    terms[1].0 = m0_weight;
    lincomb(&terms)
}

/// Solves the small dense system A·x = b by Gaussian elimination with partial pivoting.
fn solve(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = a.iter().zip(b).map(|(r, &v)| {
        let mut row = r.clone();
        row.push(v);
        row
    }).collect();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs())).unwrap();
        m.swap(c, p);
        let pivot = m[c].clone();
        for row in m.iter_mut().skip(c + 1) {
            let f = row[c] / pivot[c];
            for (v, p) in row.iter_mut().zip(&pivot).skip(c) {
                *v -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| m[r][k] * x[k]).sum();
        x[r] = (m[r][n] - s) / m[r][r];
    }
    x
}
