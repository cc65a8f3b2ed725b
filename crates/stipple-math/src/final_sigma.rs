//! Where the last sampling step ends: at σ = 0 or at the smallest training noise level.

use crate::error::{parse_name, ParseNameError, SigmasError};
use crate::sigmas::Sigmas;
use std::str::FromStr;

/// The last noise level of a schedule (diffusers' `final_sigmas_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FinalSigma {
    /// σ_N = 0: the last step returns the denoised estimate D(x; σ_{N−1}) (k-diffusion's
    /// `append_zero`; diffusers' default `final_sigmas_type="zero"`).
    #[default]
    Zero,
    /// σ_N = σ_min, the smallest training noise level σ(t = 0) = √((1 − ᾱ₀)/ᾱ₀): the last
    /// step is an ordinary solver step to σ_min and its result, still carrying noise of
    /// that level, is the output (diffusers' `final_sigmas_type="sigma_min"`, the only
    /// behaviour of `DEISMultistepScheduler`).
    SigmaMin,
}

impl FinalSigma {
    /// Both choices, in declaration order.
    pub const ALL: [FinalSigma; 2] = [FinalSigma::Zero, FinalSigma::SigmaMin];
    const NAMES: &'static [&'static str] = &["zero", "sigma_min"];

    /// The name in configs and flags (diffusers' spelling).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Ends `sigmas` (a schedule ending in 0) as this choice says; `sigma_min` is the
    /// training schedule's smallest σ ([`crate::DiscreteSchedule::sigma_min`]).
    ///
    /// `SigmaMin` replaces the final 0 by σ_min, as diffusers' `set_timesteps` does for its
    /// timestep spacings. Levels at or below σ_min before it (within 1e-9 relative, so that
    /// rounding in a schedule's formula leaves no vanishing step) are dropped: schedules that
    /// already end at σ_min (karras, exponential, polyexponential, normal, linspace) make one
    /// step fewer, where diffusers appends σ_min a second time and spends its last step on a
    /// zero-length move. Fails if nothing above σ_min is left (e.g. one step of the linspace
    /// spacing, whose only timestep is 0).
    pub fn apply(self, sigmas: Sigmas, sigma_min: f64) -> Result<Sigmas, SigmasError> {
        match self {
            FinalSigma::Zero => Ok(sigmas),
            FinalSigma::SigmaMin => {
                if !(sigma_min.is_finite() && sigma_min > 0.0) {
                    return Err(SigmasError::InvalidArgument(format!(
                        "the final σ_min must be positive and finite, got {sigma_min}"
                    )));
                }
                let above = sigma_min * (1.0 + 1e-9);
                let mut v: Vec<f64> = sigmas.into_vec().into_iter().filter(|&s| s > above).collect();
                if v.is_empty() {
                    return Err(SigmasError::InvalidArgument(format!(
                        "no noise level of the schedule lies above σ_min = {sigma_min}"
                    )));
                }
                v.push(sigma_min);
                Sigmas::new(v)
            }
        }
    }
}

impl FromStr for FinalSigma {
    type Err = ParseNameError;
    /// The names of [`FinalSigma::name`]; "sigma-min" is accepted for "sigma_min".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = if s == "sigma-min" { "sigma_min" } else { s };
        parse_name("final sigma", s, Self::NAMES).map(|i| Self::ALL[i])
    }
}

impl std::fmt::Display for FinalSigma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
