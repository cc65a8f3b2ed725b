//! The discrete VP training schedule in VE (σ) coordinates, and noise conditioning.

use crate::betas::{alphas_cumprod, sigma_from_alpha_bar, BetaSchedule};

/// The discrete training schedule of a VP model (DDPM) seen in variance-exploding
/// coordinates: σ_t = √((1−ᾱ_t)/ᾱ_t) for t = 0 … T−1, ascending in t.
///
/// Mirrors k-diffusion `external.DiscreteSchedule` (the base of `DiscreteEpsDDPMDenoiser`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscreteSchedule {
    alphas_cumprod: Vec<f64>,
    sigmas: Vec<f64>,
    log_sigmas: Vec<f64>,
}

impl DiscreteSchedule {
    /// Builds the schedule from a β schedule (diffusers `DDPMScheduler` config keys
    /// `beta_schedule`, `num_train_timesteps`, `beta_start`, `beta_end`), in f64.
    ///
    /// Panics if `num_train_timesteps < 2` (a programming error; validate configs first).
    pub fn new(
        beta_schedule: BetaSchedule,
        num_train_timesteps: usize,
        beta_start: f64,
        beta_end: f64,
    ) -> Self {
        assert!(
            num_train_timesteps >= 2,
            "a discrete schedule needs at least 2 timesteps"
        );
        let betas = beta_schedule.betas(num_train_timesteps, beta_start, beta_end);
        Self::from_alphas_cumprod(alphas_cumprod(&betas))
    }

    /// Like [`DiscreteSchedule::new`] with β rescaled to zero terminal SNR
    /// ([`crate::rescale_zero_terminal_snr`], Lin et al. 2024). The last ᾱ, exactly 0, is
    /// replaced by 2⁻²⁴ as diffusers does (`EulerDiscreteScheduler` with
    /// `rescale_betas_zero_snr=True`), so σ_max = √(2²⁴ − 1) ≈ 4096 stays finite.
    pub fn zero_terminal_snr(
        beta_schedule: BetaSchedule,
        num_train_timesteps: usize,
        beta_start: f64,
        beta_end: f64,
    ) -> Self {
        assert!(num_train_timesteps >= 2, "a discrete schedule needs at least 2 timesteps");
        let betas = crate::betas::rescale_zero_terminal_snr(&beta_schedule.betas(
            num_train_timesteps,
            beta_start,
            beta_end,
        ));
        let mut ab = alphas_cumprod(&betas);
        let last = ab.len() - 1;
        ab[last] = Self::ZERO_SNR_LAST_ALPHA_BAR;
        Self::from_alphas_cumprod(ab)
    }

    /// ᾱ used for the last timestep of a zero-terminal-SNR schedule (diffusers: 2⁻²⁴).
    pub const ZERO_SNR_LAST_ALPHA_BAR: f64 = 1.0 / 16_777_216.0;

    /// Builds the schedule from a given ᾱ (must be decreasing in t, in (0, 1), len ≥ 2).
    pub fn from_alphas_cumprod(alphas_cumprod: Vec<f64>) -> Self {
        assert!(alphas_cumprod.len() >= 2);
        let sigmas: Vec<f64> = alphas_cumprod.iter().map(|&a| sigma_from_alpha_bar(a)).collect();
        let log_sigmas = sigmas.iter().map(|s| s.ln()).collect();
        Self {
            alphas_cumprod,
            sigmas,
            log_sigmas,
        }
    }

    /// ᾱ_t for t = 0 … T−1.
    pub fn alphas_cumprod(&self) -> &[f64] {
        &self.alphas_cumprod
    }

    /// σ_t for t = 0 … T−1 (ascending in t).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// σ_0, the smallest training noise level (k-diffusion `DiscreteSchedule.sigma_min`).
    pub fn sigma_min(&self) -> f64 {
        self.sigmas[0]
    }

    /// σ_{T−1}, the largest training noise level (k-diffusion `DiscreteSchedule.sigma_max`).
    pub fn sigma_max(&self) -> f64 {
        self.sigmas[self.sigmas.len() - 1]
    }

    /// T, the number of training timesteps.
    pub fn num_train_timesteps(&self) -> usize {
        self.sigmas.len()
    }

    /// σ at a (possibly fractional) timestep t by linear interpolation of ln σ between the
    /// neighbouring integer timesteps; t is clamped to [0, T−1].
    ///
    /// Mirrors k-diffusion `DiscreteSchedule.t_to_sigma`.
    pub fn sigma_at(&self, t: f64) -> f64 {
        let last = (self.sigmas.len() - 1) as f64;
        let t = if t.is_nan() { t } else { t.clamp(0.0, last) };
        let lo = t.floor();
        let w = t - lo;
        let lo_i = lo as usize;
        let hi_i = t.ceil() as usize;
        ((1.0 - w) * self.log_sigmas[lo_i] + w * self.log_sigmas[hi_i]).exp()
    }

    /// The fractional training timestep whose σ (interpolated in ln σ) equals `sigma`:
    /// the discrete network's noise conditioning. Values outside [σ_min, σ_max] clamp to
    /// 0 and T−1.
    ///
    /// Mirrors k-diffusion `DiscreteSchedule.sigma_to_t` (non-quantized).
    pub fn timestep_for(&self, sigma: f64) -> f64 {
        let ls = sigma.ln();
        let n = self.log_sigmas.len();
        // Index of the last log σ that is ≤ ln σ, clamped to [0, n−2].
        let count = self.log_sigmas.partition_point(|&l| l <= ls);
        let lo = count.saturating_sub(1).min(n - 2);
        let (l_lo, l_hi) = (self.log_sigmas[lo], self.log_sigmas[lo + 1]);
        let w = ((l_lo - ls) / (l_lo - l_hi)).clamp(0.0, 1.0);
        (1.0 - w) * lo as f64 + w * (lo + 1) as f64
    }
}

/// EDM noise conditioning c_noise(σ) = ln(σ)/4 (Karras et al. 2022, Table 1, "Ours";
/// k-diffusion `layers.Denoiser.forward` with `sigma.log() / 4`).
pub fn edm_c_noise(sigma: f64) -> f64 {
    sigma.ln() / 4.0
}
