//! Which training timesteps a sampler with fewer steps visits.

use crate::betas::linspace;
use crate::error::{parse_name, ParseNameError};
use std::str::FromStr;

/// How `steps` inference timesteps are chosen among `T` training timesteps.
///
/// Names as diffusers' `timestep_spacing` configuration key; see Lin et al. 2024,
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TimestepSpacing {
    /// `k·(T div steps) + steps_offset` for k = steps−1 … 0.
    Leading,
    /// `round(T − k·T/steps) − 1` for k = 0 … steps−1 (always includes T−1).
    Trailing,
    /// `steps` evenly spaced values from T−1 down to 0.
    Linspace,
}

impl TimestepSpacing {
    /// Every spacing, in declaration order.
    pub const ALL: [TimestepSpacing; 3] = [
        TimestepSpacing::Leading,
        TimestepSpacing::Trailing,
        TimestepSpacing::Linspace,
    ];
    const NAMES: &'static [&'static str] = &["leading", "trailing", "linspace"];

    /// The diffusers configuration name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl FromStr for TimestepSpacing {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("timestep spacing", s, Self::NAMES).map(|i| Self::ALL[i])
    }
}

impl std::fmt::Display for TimestepSpacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The inference timesteps, descending, exactly as diffusers
/// `EulerDiscreteScheduler.set_timesteps` computes them (rounding half to even, as numpy):
/// - leading: `(arange(steps) · (T // steps)).round()[::-1] + steps_offset`;
/// - trailing: `arange(T, 0, −T/steps).round() − 1`;
/// - linspace: `linspace(0, T−1, steps)[::-1]`, **not rounded** (fractional timesteps).
///
/// `steps_offset` only applies to leading spacing (as in diffusers). DDIM, DDPM and the
/// other discrete diffusers schedulers round the linspace timesteps to integers: use
/// [`timesteps_rounded`] for those. `steps == 0` gives an empty vector.
pub fn timesteps(
    spacing: TimestepSpacing,
    num_train_timesteps: usize,
    steps: usize,
    steps_offset: usize,
) -> Vec<f64> {
    if steps == 0 {
        return Vec::new();
    }
    let t = num_train_timesteps as f64;
    match spacing {
        TimestepSpacing::Leading => {
            let ratio = (num_train_timesteps / steps) as f64;
            (0..steps)
                .rev()
                .map(|k| (k as f64 * ratio).round_ties_even() + steps_offset as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = t / steps as f64;
            (0..steps)
                .map(|k| (t - k as f64 * ratio).round_ties_even() - 1.0)
                .collect()
        }
        TimestepSpacing::Linspace => {
            let mut v = linspace(0.0, t - 1.0, steps);
            v.reverse();
            v
        }
    }
}

/// Like [`timesteps`], but linspace timesteps are rounded (half to even) to integers, as
/// diffusers `DDIMScheduler.set_timesteps` / `DDPMScheduler.set_timesteps` do
/// (`np.linspace(0, T − 1, steps).round()[::-1]`). Leading and trailing are unchanged.
pub fn timesteps_rounded(
    spacing: TimestepSpacing,
    num_train_timesteps: usize,
    steps: usize,
    steps_offset: usize,
) -> Vec<f64> {
    let mut v = timesteps(spacing, num_train_timesteps, steps, steps_offset);
    if spacing == TimestepSpacing::Linspace {
        v.iter_mut().for_each(|t| *t = t.round_ties_even());
    }
    v
}
