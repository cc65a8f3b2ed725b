//! β schedules of the VP training process and the ᾱ ↔ σ change of variables.

use crate::error::{parse_name, ParseNameError};
use std::f64::consts::PI;
use std::str::FromStr;

/// How the per-step noise variances β_t of the VP training process are laid out.
///
/// Names and formulas as diffusers' `beta_schedule` configuration key
/// (`DDPMScheduler.__init__`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BetaSchedule {
    /// β linear from β_start to β_end (Ho et al. 2020, "Denoising Diffusion Probabilistic
    /// Models", §4).
    Linear,
    /// √β linear from √β_start to √β_end (Stable Diffusion / latent diffusion).
    ScaledLinear,
    /// The cosine schedule of Nichol & Dhariwal 2021 ("Improved Denoising Diffusion
    /// Probabilistic Models", eq. 17), β capped at 0.999.
    #[cfg_attr(feature = "serde", serde(rename = "squaredcos_cap_v2"))]
    SquaredcosCapV2,
}

impl BetaSchedule {
    /// Every schedule, in declaration order.
    pub const ALL: [BetaSchedule; 3] = [
        BetaSchedule::Linear,
        BetaSchedule::ScaledLinear,
        BetaSchedule::SquaredcosCapV2,
    ];
    const NAMES: &'static [&'static str] = &["linear", "scaled_linear", "squaredcos_cap_v2"];

    /// The diffusers configuration name ("linear", "scaled_linear", "squaredcos_cap_v2").
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The β_t for t = 0 … num_train_timesteps−1, in f64.
    ///
    /// Mirrors diffusers `DDPMScheduler.__init__` (which computes the linear ones in f32):
    /// - `linear`: `linspace(beta_start, beta_end, T)`;
    /// - `scaled_linear`: `linspace(√beta_start, √beta_end, T)²`;
    /// - `squaredcos_cap_v2`: diffusers `betas_for_alpha_bar(T, max_beta=0.999)` with the
    ///   cosine ᾱ(t) = cos²((t + 0.008)/1.008 · π/2) (Nichol & Dhariwal 2021, eq. 17), i.e.
    ///   β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999); `beta_start`/`beta_end` are ignored.
    ///   The ratios i/T are real divisions (an integer division gives β = 0 for all but
    ///   the last step).
    pub fn betas(self, num_train_timesteps: usize, beta_start: f64, beta_end: f64) -> Vec<f64> {
        let n = num_train_timesteps;
        match self {
            BetaSchedule::Linear => linspace(beta_start, beta_end, n),
            BetaSchedule::ScaledLinear => linspace(beta_start.sqrt(), beta_end.sqrt(), n)
                .into_iter()
                .map(|b| b * b)
                .collect(),
            BetaSchedule::SquaredcosCapV2 => {
                let alpha_bar = |t: f64| ((t + 0.008) / 1.008 * PI / 2.0).cos().powi(2);
                (0..n)
                    .map(|i| {
                        let t1 = i as f64 / n as f64;
                        let t2 = (i + 1) as f64 / n as f64;
                        (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999)
                    })
                    .collect()
            }
        }
    }
}

impl FromStr for BetaSchedule {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("beta schedule", s, Self::NAMES).map(|i| Self::ALL[i])
    }
}

impl std::fmt::Display for BetaSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `n` evenly spaced values from `start` to `end` inclusive, as `numpy.linspace`
/// (`start + i·step`, the last value exactly `end`).
pub(crate) fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (n - 1) as f64;
            let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
            v[n - 1] = end;
            v
        }
    }
}

/// ᾱ_t = ∏_{s≤t} (1 − β_s) (Ho et al. 2020, eq. 4 notation; diffusers
/// `alphas_cumprod = torch.cumprod(1 - betas, 0)`).
pub fn alphas_cumprod(betas: &[f64]) -> Vec<f64> {
    let mut acc = 1.0;
    betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect()
}

/// σ = √((1 − ᾱ)/ᾱ): the VE noise level of a VP state with signal level ᾱ (Karras et al.
/// 2022, Table 1, VP column; k-diffusion `DiscreteSchedule.__init__` with
/// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5`).
pub fn sigma_from_alpha_bar(a: f64) -> f64 {
    ((1.0 - a) / a).sqrt()
}

/// ᾱ = 1/(1 + σ²), the inverse of [`sigma_from_alpha_bar`] (Karras et al. 2022, Table 1).
pub fn alpha_bar_from_sigma(s: f64) -> f64 {
    1.0 / (1.0 + s * s)
}

/// Rescales β so that the terminal SNR is exactly zero, keeping ᾱ_0 (Lin et al. 2024,
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1; diffusers
/// `rescale_zero_terminal_snr`): √ᾱ is shifted so its last value is 0 and scaled so its
/// first value is unchanged, then β_t = 1 − ᾱ_t/ᾱ_{t−1}. The last β is 1 (ᾱ_{T−1} = 0,
/// σ = ∞): see [`crate::DiscreteSchedule::zero_terminal_snr`] for the usable schedule.
pub fn rescale_zero_terminal_snr(betas: &[f64]) -> Vec<f64> {
    let sqrt_ab: Vec<f64> = alphas_cumprod(betas).iter().map(|a| a.sqrt()).collect();
    let (first, last) = (sqrt_ab[0], sqrt_ab[sqrt_ab.len() - 1]);
    let ab: Vec<f64> = sqrt_ab
        .iter()
        .map(|s| {
            let v = (s - last) * first / (first - last);
            v * v
        })
        .collect();
    let mut out = Vec::with_capacity(ab.len());
    out.push(1.0 - ab[0]);
    for w in ab.windows(2) {
        out.push(1.0 - w[1] / w[0]);
    }
    out
}
