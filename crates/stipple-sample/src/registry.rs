//! The typed sampler registry for front ends: names, properties, defaults and dispatch.

use crate::samplers::{ddim, ddpm, dpmpp_2m, euler, euler_ancestral, heun};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::{ParseNameError, SigmaSchedule, Sigmas};
use std::str::FromStr;

/// Every sampler, by the name used in configs, flags and HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    Ddpm,
    Ddim,
    Euler,
    EulerAncestral,
    Heun,
    #[serde(rename = "dpmpp_2m")]
    Dpmpp2m,
}

impl SamplerKind {
    /// Every sampler, in declaration order.
    pub const ALL: [SamplerKind; 6] = [
        SamplerKind::Ddpm,
        SamplerKind::Ddim,
        SamplerKind::Euler,
        SamplerKind::EulerAncestral,
        SamplerKind::Heun,
        SamplerKind::Dpmpp2m,
    ];
    const NAMES: &'static [&'static str] =
        &["ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m"];

    /// The config/flag name ("ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m").
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The name artists know from the A1111/ComfyUI menus ("Euler a", "DPM++ 2M", …).
    /// With `SigmaSchedule::Karras` these read "DPM++ 2M Karras" etc.
    pub fn display_name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "DDPM",
            SamplerKind::Ddim => "DDIM",
            SamplerKind::Euler => "Euler",
            SamplerKind::EulerAncestral => "Euler a",
            SamplerKind::Heun => "Heun",
            SamplerKind::Dpmpp2m => "DPM++ 2M",
        }
    }

    /// Model evaluations per step (Heun: 2, except its last step to σ = 0, which takes 1).
    pub fn evals_per_step(self) -> usize {
        match self {
            SamplerKind::Heun => 2,
            _ => 1,
        }
    }

    /// Total model evaluations for `steps` steps (ending at σ = 0).
    pub fn evals(self, steps: usize) -> usize {
        match self {
            SamplerKind::Heun => (2 * steps).saturating_sub(1),
            _ => steps,
        }
    }

    /// Whether the sampler draws fresh noise during sampling at its default η
    /// (DDIM is deterministic at its default η = 0).
    pub fn stochastic(self) -> bool {
        matches!(self, SamplerKind::Ddpm | SamplerKind::EulerAncestral)
    }

    /// Whether the sampler takes an η (stochasticity) option.
    pub fn uses_eta(self) -> bool {
        matches!(self, SamplerKind::Ddim | SamplerKind::EulerAncestral)
    }

    /// η used when [`SamplerOptions::eta`] is `None`: DDIM 0 (Song et al. 2021), Euler a
    /// and DDPM 1, the deterministic ODE solvers 0 (unused).
    pub fn default_eta(self) -> f64 {
        match self {
            SamplerKind::Ddpm | SamplerKind::EulerAncestral => 1.0,
            _ => 0.0,
        }
    }

    /// The σ schedule to use when none is asked for: DDPM and DDIM walk the discrete
    /// training timesteps with diffusers' default leading spacing; the ODE solvers and
    /// Euler a use Karras et al. 2022's ρ = 7 schedule, which works best for them in
    /// practice ("… Karras" in the A1111 menu).
    pub fn default_schedule(self) -> SigmaSchedule {
        match self {
            SamplerKind::Ddpm | SamplerKind::Ddim => SigmaSchedule::Leading,
            _ => SigmaSchedule::Karras,
        }
    }
}

impl FromStr for SamplerKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        names_index(s).map(|i| Self::ALL[i])
    }
}

fn names_index(s: &str) -> Result<usize, ParseNameError> {
    SamplerKind::NAMES
        .iter()
        .position(|n| *n == s)
        .ok_or_else(|| ParseNameError {
            what: "sampler",
            got: s.to_string(),
            accepted: SamplerKind::NAMES,
        })
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-run sampler options.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerOptions {
    /// Stochasticity for DDIM and Euler a; `None` takes [`SamplerKind::default_eta`].
    /// Ignored by the other samplers (DDPM is η = 1 by definition).
    #[serde(default)]
    pub eta: Option<f64>,
}

/// Runs the sampler `kind` (dispatch for front ends). `noise` is only used by the
/// stochastic samplers (and DDIM with η > 0).
pub fn sample<L: Latent>(
    kind: SamplerKind,
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    options: &SamplerOptions,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    let eta = options.eta.unwrap_or(kind.default_eta());
    match kind {
        SamplerKind::Ddpm => ddpm(model, x, sigmas, noise, observer),
        SamplerKind::Ddim => ddim(model, x, sigmas, eta, noise, observer),
        SamplerKind::Euler => euler(model, x, sigmas, observer),
        SamplerKind::EulerAncestral => euler_ancestral(model, x, sigmas, eta, noise, observer),
        SamplerKind::Heun => heun(model, x, sigmas, observer),
        SamplerKind::Dpmpp2m => dpmpp_2m(model, x, sigmas, observer),
    }
}
