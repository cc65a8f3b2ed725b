//! Sampler noise-level schedules: the validated [`Sigmas`] list and its builders.

use crate::betas::linspace;
use crate::discrete::DiscreteSchedule;
use crate::error::{parse_name, ParseNameError, SigmasError};
use crate::spacing::{timesteps, TimestepSpacing};
use std::str::FromStr;

/// A validated noise-level schedule for a sampler: finite, ≥ 0, strictly decreasing,
/// ending in exactly 0, at least two values (one step).
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
        let last = v[v.len() - 1];
        if last != 0.0 {
            return Err(SigmasError::LastNotZero { value: last });
        }
        Ok(Sigmas(v))
    }

    /// The noise levels, the last one 0.
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
}

impl SigmaSchedule {
    /// Every schedule, in declaration order.
    pub const ALL: [SigmaSchedule; 5] = [
        SigmaSchedule::Leading,
        SigmaSchedule::Trailing,
        SigmaSchedule::Linspace,
        SigmaSchedule::Karras,
        SigmaSchedule::Exponential,
    ];
    const NAMES: &'static [&'static str] =
        &["leading", "trailing", "linspace", "karras", "exponential"];

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
    /// `get_sigmas_exponential` with the training schedule's σ_min and σ_max.
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
