//! Per-run sampler options, by k-diffusion's keyword-argument names, and which one is which.

use crate::samplers::Churn;
use crate::X0Clamp;

/// A per-sampler option of [`SamplerOptions`], by its field name (k-diffusion's keyword
/// argument). [`crate::SamplerKind::accepts`] tells which samplers take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerOption {
    Eta,
    SNoise,
    SChurn,
    STmin,
    STmax,
    Order,
    R,
}

impl SamplerOption {
    /// Every option, in [`SamplerOptions`] field order.
    pub const ALL: [SamplerOption; 7] = [
        SamplerOption::Eta,
        SamplerOption::SNoise,
        SamplerOption::SChurn,
        SamplerOption::STmin,
        SamplerOption::STmax,
        SamplerOption::Order,
        SamplerOption::R,
    ];
    const NAMES: &'static [&'static str] = &["eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "order", "r"];

    /// The field name in [`SamplerOptions`] ("eta", "s_noise", …).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for SamplerOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-run sampler options, with k-diffusion's names. Every field is optional; `None`
/// takes the sampler's default; samplers ignore the options they do not have
/// ([`crate::SamplerKind::accepts`], [`crate::SamplerKind::ignored`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerOptions {
    /// Stochasticity for DDIM and the ancestral/SDE samplers ([`crate::SamplerKind::uses_eta`]);
    /// `None` takes [`crate::SamplerKind::default_eta`] (DDPM is η = 1 by definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// Multiplier of the fresh noise of DDIM, the ancestral/SDE samplers, LCM and EDM's
    /// churn (`euler`, `heun`, `dpm_2`, `edm`) (default 1; `edm`: 1.003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_noise: Option<f64>,
    /// EDM's churn S_churn for `euler`, `heun`, `dpm_2` (default 0: no churn) and `edm`
    /// (default 40, Karras et al. 2022, Table 5); see [`Churn`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_churn: Option<f64>,
    /// Churn applies for σ ≥ s_tmin (default 0; `edm`: 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_tmin: Option<f64>,
    /// Churn applies for σ ≤ s_tmax (default ∞; `edm`: 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_tmax: Option<f64>,
    /// Order of the multistep solvers `lms` (default 4), `deis` (3) and `unipc` (3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// Where `dpmpp_sde` puts its intermediate point, as a fraction of the step in −ln σ,
    /// in (0, 1] (default ½, k-diffusion's `r`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<f64>,
    /// Clipping or dynamic thresholding of the denoised estimate (default off). Not a
    /// sampler option: [`crate::sample`] does not apply it; the caller wraps its model in
    /// [`crate::ClampedX0`] with it, so that it acts with every sampler.
    #[serde(default, skip_serializing_if = "X0Clamp::is_default")]
    pub x0_clamp: X0Clamp,
}

impl SamplerOptions {
    /// The per-sampler options that are set (not `None`), in [`SamplerOption::ALL`] order.
    pub fn given(&self) -> Vec<SamplerOption> {
        use SamplerOption as O;
        let set = [
            (O::Eta, self.eta.is_some()),
            (O::SNoise, self.s_noise.is_some()),
            (O::SChurn, self.s_churn.is_some()),
            (O::STmin, self.s_tmin.is_some()),
            (O::STmax, self.s_tmax.is_some()),
            (O::Order, self.order.is_some()),
            (O::R, self.r.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(o, _)| o).collect()
    }

    /// EDM's churn from `s_churn`, `s_tmin`, `s_tmax`, `s_noise`, each unset one taken from
    /// `default`.
    pub(crate) fn churn(&self, default: Churn) -> Churn {
        Churn {
            s_churn: self.s_churn.unwrap_or(default.s_churn),
            s_tmin: self.s_tmin.unwrap_or(default.s_tmin),
            s_tmax: self.s_tmax.unwrap_or(default.s_tmax),
            s_noise: self.s_noise.unwrap_or(default.s_noise),
        }
    }
}
