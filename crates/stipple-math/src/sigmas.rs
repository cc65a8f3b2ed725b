//! Sampler noise-level schedules: the validated [`Sigmas`] list and its builders.

use crate::betas::linspace;
use crate::discrete::DiscreteSchedule;
use crate::error::{parse_name, ParseNameError, SigmasError};
use crate::spacing::{timesteps, TimestepSpacing};
use std::str::FromStr;

/// A validated noise-level schedule for a sampler: finite, ≥ 0, strictly decreasing, at
/// least two values (one step). It normally ends in exactly 0 (the last step returns the
/// denoised estimate); a positive last value stops sampling at that noise level (see
/// [`crate::FinalSigma::SigmaMin`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sigmas(Vec<f64>);

impl Sigmas {
    /// Validates `v` (see the type's documentation).
    pub fn new(v: Vec<f64>) -> Result<Sigmas, SigmasError> {
        if v.len() < 2 {
            return Err(SigmasError::TooShort { len: v.len() });
        }
        for (index, &value) in v.iter().enumerate() {
            if !value.is_finite() {
                return Err(SigmasError::NotFinite { index, value });
            }
            if value < 0.0 {
                return Err(SigmasError::Negative { index, value });
            }
        }
        for (index, w) in v.windows(2).enumerate() {
            if w[0] <= w[1] {
                return Err(SigmasError::NotDecreasing {
                    index,
                    value: w[0],
                    next: w[1],
                });
            }
        }
        Ok(Sigmas(v))
    }

    /// The noise levels, the last one 0 unless sampling stops at a positive level.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// The number of steps, `len − 1`.
    pub fn steps(&self) -> usize {
        self.0.len() - 1
    }

    /// The starting noise level σ₀ (the initial latent is `σ₀·noise`).
    pub fn first(&self) -> f64 {
        self.0[0]
    }

    /// The values as an owned vector.
    pub fn into_vec(self) -> Vec<f64> {
        self.0
    }

    /// σ of a discrete schedule at the given (possibly fractional) training timesteps,
    /// by linear interpolation in t, followed by 0.
    ///
    /// Mirrors diffusers `EulerDiscreteScheduler.set_timesteps`
    /// (`np.interp(timesteps, np.arange(T), sigmas)` then `concatenate([sigmas, [0]])`).
    /// Use it with [`crate::timesteps_rounded`] for DDIM-exact sigmas.
    pub fn from_timesteps(
        schedule: &DiscreteSchedule,
        timesteps: &[f64],
    ) -> Result<Sigmas, SigmasError> {
        if timesteps.is_empty() {
            return Err(SigmasError::ZeroSteps);
        }
        let last = (schedule.num_train_timesteps() - 1) as f64;
        let s = schedule.sigmas();
        let mut v = Vec::with_capacity(timesteps.len() + 1);
        for &t in timesteps {
            if !(0.0..=last).contains(&t) {
                return Err(SigmasError::InvalidArgument(format!(
                    "timestep {t} lies outside the training range [0, {last}] \
                     (with leading spacing, lower steps_offset or the number of steps)"
                )));
            }
            let lo = t.floor() as usize;
            let w = t - lo as f64;
            let hi = (lo + 1).min(s.len() - 1);
            v.push((1.0 - w) * s[lo] + w * s[hi]);
        }
        v.push(0.0);
        Sigmas::new(v)
    }
}

impl AsRef<[f64]> for Sigmas {
    fn as_ref(&self) -> &[f64] {
        &self.0
    }
}

/// The schedule of Karras et al. 2022 (EDM, eq. 5):
/// σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i = 0 … n−1,
/// descending from σ_max to σ_min, **without** the trailing 0.
///
/// Mirrors k-diffusion `sampling.get_sigmas_karras` (minus `append_zero`); n = 1 gives
/// `[σ_max]`.
pub fn karras(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f64> {
    let min_inv_rho = sigma_min.powf(1.0 / rho);
    let max_inv_rho = sigma_max.powf(1.0 / rho);
    linspace(0.0, 1.0, n)
        .into_iter()
        .map(|r| (max_inv_rho + r * (min_inv_rho - max_inv_rho)).powf(rho))
        .collect()
}

/// n noise levels evenly spaced in ln σ from σ_max down to σ_min, **without** the trailing 0.
///
/// Mirrors k-diffusion `sampling.get_sigmas_exponential` (minus `append_zero`).
pub fn exponential(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f64> {
    linspace(sigma_max.ln(), sigma_min.ln(), n)
        .into_iter()
        .map(f64::exp)
        .collect()
}

/// n noise levels with ln σ a power ρ of a ramp from σ_max down to σ_min, **without** the
/// trailing 0: σ_i = exp(r_i^ρ·(ln σ_max − ln σ_min) + ln σ_min), r = linspace(1, 0, n).
/// ρ = 1 is [`exponential`].
///
/// Mirrors k-diffusion `sampling.get_sigmas_polyexponential` (minus `append_zero`).
pub fn polyexponential(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f64> {
    let (lmin, lmax) = (sigma_min.ln(), sigma_max.ln());
    linspace(1.0, 0.0, n)
        .into_iter()
        .map(|r| (r.powf(rho) * (lmax - lmin) + lmin).exp())
        .collect()
}

/// n noise levels of the continuous variance-preserving (VP) SDE of Song et al. 2021
/// ("Score-Based Generative Modeling through Stochastic Differential Equations", eq. 11 and
/// Appendix B: β(t) = β_min + t·β_d, so ᾱ(t) = exp(−β_d·t²/2 − β_min·t)), seen in VE
/// coordinates σ(t) = √(1/ᾱ(t) − 1) = √(exp(β_d·t²/2 + β_min·t) − 1), at t evenly spaced
/// from 1 down to `eps_s`, **without** the trailing 0.
///
/// Mirrors k-diffusion `sampling.get_sigmas_vp` (minus `append_zero`; its defaults are
/// β_d = 19.9, β_min = 0.1, ε_s = 10⁻³, the paper's VP values); `exp − 1` is evaluated with
/// `exp_m1`. The levels do not depend on a model's training range: with the defaults they
/// run from σ(1) ≈ 152.2 down to σ(10⁻³) ≈ 0.0105. n = 1 gives `[σ(1)]`.
pub fn vp(n: usize, beta_d: f64, beta_min: f64, eps_s: f64) -> Vec<f64> {
    linspace(1.0, eps_s, n)
        .into_iter()
        .map(|t| (beta_d * t * t / 2.0 + beta_min * t).exp_m1().sqrt())
        .collect()
}

/// The linear-then-quadratic schedule of Mochi (Genmo 2024; ComfyUI
/// `linear_quadratic_schedule`), as fractions of σ_max, **with** the trailing 0: the first
/// ⌊n/2⌋ steps fall linearly from 1 to 1 − `threshold_noise`, the rest follow a quadratic
/// down to 0. n = 1 gives `[1, 0]`.
pub fn linear_quadratic(n: usize, threshold_noise: f64) -> Vec<f64> {
    if n <= 1 {
        return vec![1.0, 0.0];
    }
    let lin_steps = n / 2;
    let (ls, nf) = (lin_steps as f64, n as f64);
    let quad_steps = nf - ls;
    let diff = ls - threshold_noise * nf;
    let quad_coef = diff / (ls * quad_steps * quad_steps);
    let lin_coef = threshold_noise / ls - 2.0 * diff / (quad_steps * quad_steps);
    let konst = quad_coef * ls * ls;
    let mut v: Vec<f64> = (0..lin_steps).map(|i| i as f64 * threshold_noise / ls).collect();
    v.extend((lin_steps..n).map(|i| {
        let i = i as f64;
        quad_coef * i * i + lin_coef * i + konst
    }));
    v.push(1.0);
    v.into_iter().map(|x| 1.0 - x).collect()
}

/// Training timesteps chosen by the quantiles of Beta(α, β) (Lee et al. 2024, "Beta
/// Sampling is All You Need", arXiv:2407.12173; ComfyUI `beta_scheduler`): for
/// p_i = 1 − i/n, t_i = round(ppf(p_i; α, β)·(T − 1)), descending, repeats dropped (so
/// fewer than n steps may result). Returns the integer timesteps.
pub fn beta_timesteps(num_train_timesteps: usize, n: usize, alpha: f64, beta: f64) -> Vec<usize> {
    let total = (num_train_timesteps - 1) as f64;
    let mut out: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let p = 1.0 - i as f64 / n as f64;
        let t = (crate::special::beta_ppf(p, alpha, beta) * total).round_ties_even() as usize;
        if out.last() != Some(&t) {
            out.push(t);
        }
    }
    out
}

/// A named way to build [`Sigmas`] for a discrete (VP-trained) model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SigmaSchedule {
    /// σ at diffusers' "leading" timesteps (see [`TimestepSpacing::Leading`]).
    Leading,
    /// σ at diffusers' "trailing" timesteps.
    Trailing,
    /// σ at diffusers' "linspace" timesteps (fractional, interpolated in t).
    Linspace,
    /// Karras et al. 2022 with ρ = 7 over [σ_min, σ_max] of the training schedule.
    Karras,
    /// Evenly spaced in ln σ over [σ_min, σ_max] of the training schedule.
    Exponential,
    /// k-diffusion `get_sigmas_polyexponential` with ρ = [`SigmaSchedule::POLYEXPONENTIAL_RHO`]
    /// over [σ_min, σ_max] (A1111 "Polyexponential").
    Polyexponential,
    /// `steps` timesteps evenly spaced from T−1 towards 0, the endpoint 0 left out, σ by
    /// log-σ interpolation (ComfyUI `sgm_uniform`, as SGM/SDXL-Turbo sample).
    SgmUniform,
    /// `steps` timesteps evenly spaced from T−1 to 0 inclusive, σ by log-σ interpolation
    /// (ComfyUI `normal`).
    Normal,
    /// Every (T/steps)-th training σ from the top (ComfyUI `simple`).
    Simple,
    /// Training σ at 1, 1 + ⌊T/steps⌋, 1 + 2⌊T/steps⌋, … < T, reversed (ComfyUI
    /// `ddim_uniform`; may give one step more than asked).
    DdimUniform,
    /// Timesteps at the quantiles of Beta(0.6, 0.6) (ComfyUI `beta`; see [`beta_timesteps`]).
    Beta,
    /// Mochi's linear-then-quadratic schedule scaled by σ_max (ComfyUI `linear_quadratic`;
    /// see [`linear_quadratic`]).
    LinearQuadratic,
    /// The continuous VP SDE's levels with k-diffusion's defaults ([`vp`] with
    /// [`SigmaSchedule::VP_BETA_D`], [`SigmaSchedule::VP_BETA_MIN`], [`SigmaSchedule::VP_EPS_S`];
    /// ComfyUI's `VPScheduler` node). Independent of the training schedule: it starts at
    /// σ ≈ 152, above a discrete model's σ_max (≈ 14.6 for SD 1.x), whose noise conditioning
    /// then saturates at the largest training timestep.
    Vp,
}

impl SigmaSchedule {
    /// Every schedule, in declaration order.
    pub const ALL: [SigmaSchedule; 13] = [
        SigmaSchedule::Leading,
        SigmaSchedule::Trailing,
        SigmaSchedule::Linspace,
        SigmaSchedule::Karras,
        SigmaSchedule::Exponential,
        SigmaSchedule::Polyexponential,
        SigmaSchedule::SgmUniform,
        SigmaSchedule::Normal,
        SigmaSchedule::Simple,
        SigmaSchedule::DdimUniform,
        SigmaSchedule::Beta,
        SigmaSchedule::LinearQuadratic,
        SigmaSchedule::Vp,
    ];
    const NAMES: &'static [&'static str] = &[
        "leading",
        "trailing",
        "linspace",
        "karras",
        "exponential",
        "polyexponential",
        "sgm_uniform",
        "normal",
        "simple",
        "ddim_uniform",
        "beta",
        "linear_quadratic",
        "vp",
    ];

    /// ρ of the polyexponential schedule (k-diffusion's and A1111's default, 1).
    pub const POLYEXPONENTIAL_RHO: f64 = 1.0;
    /// (α, β) of the beta schedule (ComfyUI's default, after Lee et al. 2024).
    pub const BETA_ALPHA_BETA: (f64, f64) = (0.6, 0.6);
    /// `threshold_noise` of the linear-quadratic schedule (ComfyUI's default).
    pub const LINEAR_QUADRATIC_THRESHOLD: f64 = 0.025;
    /// β_d = β_max − β_min of the VP schedule (Song et al. 2021, Appendix C: β_max = 20,
    /// β_min = 0.1; k-diffusion's default 19.9).
    pub const VP_BETA_D: f64 = 19.9;
    /// β_min of the VP schedule (Song et al. 2021; k-diffusion's default 0.1).
    pub const VP_BETA_MIN: f64 = 0.1;
    /// The smallest time ε_s of the VP schedule (Song et al. 2021, Appendix C: 10⁻³;
    /// k-diffusion's default).
    pub const VP_EPS_S: f64 = 1e-3;

    /// The name artists see in the A1111/ComfyUI "schedule type" menu.
    pub fn display_name(self) -> &'static str {
        match self {
            SigmaSchedule::Leading => "Leading",
            SigmaSchedule::Trailing => "Trailing",
            SigmaSchedule::Linspace => "Linspace",
            SigmaSchedule::Karras => "Karras",
            SigmaSchedule::Exponential => "Exponential",
            SigmaSchedule::Polyexponential => "Polyexponential",
            SigmaSchedule::SgmUniform => "SGM Uniform",
            SigmaSchedule::Normal => "Normal",
            SigmaSchedule::Simple => "Simple",
            SigmaSchedule::DdimUniform => "DDIM Uniform",
            SigmaSchedule::Beta => "Beta",
            SigmaSchedule::LinearQuadratic => "Linear Quadratic",
            SigmaSchedule::Vp => "VP",
        }
    }

    /// ρ of the Karras schedule (Karras et al. 2022, §3: ρ = 7 "for all experiments").
    pub const KARRAS_RHO: f64 = 7.0;

    /// The schedule's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `steps` noise levels followed by 0.
    ///
    /// The discrete spacings mirror diffusers `EulerDiscreteScheduler.set_timesteps` (σ at
    /// the spaced timesteps by linear interpolation in t; `steps_offset` is used by leading
    /// only). Karras (ρ = 7) and exponential mirror k-diffusion `get_sigmas_karras` /
    /// `get_sigmas_exponential` with the training schedule's σ_min and σ_max; VP
    /// (`get_sigmas_vp`) does not use the training schedule.
    /// `steps == 0` is an error, and so is a leading spacing whose timesteps leave the
    /// training range or repeat (steps > T, or steps_offset pushing past T−1).
    pub fn build(
        self,
        schedule: &DiscreteSchedule,
        steps: usize,
        steps_offset: usize,
    ) -> Result<Sigmas, SigmasError> {
        if steps == 0 {
            return Err(SigmasError::ZeroSteps);
        }
        let t = schedule.num_train_timesteps();
        let spaced = |spacing| Sigmas::from_timesteps(schedule, &timesteps(spacing, t, steps, steps_offset));
        let with_zero = |mut v: Vec<f64>| {
            v.push(0.0);
            Sigmas::new(v)
        };
        let (lo, hi) = (schedule.sigma_min(), schedule.sigma_max());
        match self {
            SigmaSchedule::Leading => spaced(TimestepSpacing::Leading),
            SigmaSchedule::Trailing => spaced(TimestepSpacing::Trailing),
            SigmaSchedule::Linspace => spaced(TimestepSpacing::Linspace),
            SigmaSchedule::Karras => with_zero(karras(steps, lo, hi, Self::KARRAS_RHO)),
            SigmaSchedule::Exponential => with_zero(exponential(steps, lo, hi)),
            SigmaSchedule::Polyexponential => {
                with_zero(polyexponential(steps, lo, hi, Self::POLYEXPONENTIAL_RHO))
            }
            SigmaSchedule::SgmUniform => {
                let top = (t - 1) as f64;
                let ts = linspace(top, 0.0, steps + 1);
                with_zero(ts[..steps].iter().map(|&x| schedule.sigma_at(x)).collect())
            }
            SigmaSchedule::Normal => {
                let ts = linspace((t - 1) as f64, 0.0, steps);
                with_zero(ts.iter().map(|&x| schedule.sigma_at(x)).collect())
            }
            SigmaSchedule::Simple => {
                let s = schedule.sigmas();
                let ss = t as f64 / steps as f64;
                let idx = |x: usize| (x as f64 * ss) as usize;
                if steps > t {
                    return Err(SigmasError::InvalidArgument(format!(
                        "the simple schedule has at most {t} steps, got {steps}"
                    )));
                }
                with_zero((0..steps).map(|x| s[t - 1 - idx(x)]).collect())
            }
            SigmaSchedule::DdimUniform => {
                let s = schedule.sigmas();
                let ss = (t / steps).max(1);
                let mut v: Vec<f64> = (1..t).step_by(ss).map(|i| s[i]).collect();
                v.reverse();
                with_zero(v)
            }
            SigmaSchedule::Beta => {
                let (a, b) = Self::BETA_ALPHA_BETA;
                let s = schedule.sigmas();
                with_zero(beta_timesteps(t, steps, a, b).into_iter().map(|i| s[i]).collect())
            }
            SigmaSchedule::LinearQuadratic => Sigmas::new(
                linear_quadratic(steps, Self::LINEAR_QUADRATIC_THRESHOLD)
                    .into_iter()
                    .map(|f| f * hi)
                    .collect(),
            ),
            SigmaSchedule::Vp => {
                with_zero(vp(steps, Self::VP_BETA_D, Self::VP_BETA_MIN, Self::VP_EPS_S))
            }
        }
    }
}

impl FromStr for SigmaSchedule {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("sigma schedule", s, Self::NAMES).map(|i| Self::ALL[i])
    }
}

impl std::fmt::Display for SigmaSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
