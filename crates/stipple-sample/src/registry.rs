//! The typed sampler registry for front ends: names, properties, defaults and dispatch.

use crate::samplers::{
    ddim, ddpm, deis, dpm_2, dpm_2_ancestral, dpmpp_2m, dpmpp_2m_sde, dpmpp_2s_ancestral,
    dpmpp_3m_sde, dpmpp_sde, edm, euler, euler_ancestral, heun, ipndm, lcm, lms, unipc, Churn,
    SdeSolver, UniPcVariant,
};
use crate::{Denoiser, Latent, Noise, NoiseKind, Observer, SampleError, SamplerOption, SamplerOptions};
use stipple_math::{ParseNameError, SigmaSchedule, Sigmas};
use std::str::FromStr;

/// Every sampler, by the name used in configs, flags and HTTP requests (k-diffusion's
/// function names without `sample_`, ComfyUI's where k-diffusion has none).
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
    #[serde(rename = "dpmpp_2m_sde")]
    Dpmpp2mSde,
    #[serde(rename = "dpmpp_2m_sde_heun")]
    Dpmpp2mSdeHeun,
    #[serde(rename = "dpmpp_3m_sde")]
    Dpmpp3mSde,
    #[serde(rename = "dpmpp_2s_ancestral")]
    Dpmpp2sAncestral,
    DpmppSde,
    #[serde(rename = "dpm_2")]
    Dpm2,
    #[serde(rename = "dpm_2_ancestral")]
    Dpm2Ancestral,
    Lms,
    Ipndm,
    Deis,
    #[serde(rename = "unipc")]
    UniPc,
    #[serde(rename = "unipc_bh2")]
    UniPcBh2,
    Lcm,
    Edm,
}

/// One row of the sampler table (for `stipple samplers` and the docs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SamplerRow {
    pub name: &'static str,
    pub display_name: &'static str,
    pub diffusers_class: Option<&'static str>,
    pub k_diffusion_function: Option<&'static str>,
    pub evals_per_step: usize,
    pub stochastic: bool,
    pub uses_eta: bool,
    /// The [`SamplerOptions`] fields this sampler takes ([`SamplerKind::accepts`]).
    pub options: Vec<SamplerOption>,
    pub default_schedule: &'static str,
    pub default_noise: NoiseKind,
}

impl SamplerKind {
    /// Every sampler, in declaration order.
    pub const ALL: [SamplerKind; 20] = [
        SamplerKind::Ddpm,
        SamplerKind::Ddim,
        SamplerKind::Euler,
        SamplerKind::EulerAncestral,
        SamplerKind::Heun,
        SamplerKind::Dpmpp2m,
        SamplerKind::Dpmpp2mSde,
        SamplerKind::Dpmpp2mSdeHeun,
        SamplerKind::Dpmpp3mSde,
        SamplerKind::Dpmpp2sAncestral,
        SamplerKind::DpmppSde,
        SamplerKind::Dpm2,
        SamplerKind::Dpm2Ancestral,
        SamplerKind::Lms,
        SamplerKind::Ipndm,
        SamplerKind::Deis,
        SamplerKind::UniPc,
        SamplerKind::UniPcBh2,
        SamplerKind::Lcm,
        SamplerKind::Edm,
    ];
    const NAMES: &'static [&'static str] = &[
        "ddpm",
        "ddim",
        "euler",
        "euler_ancestral",
        "heun",
        "dpmpp_2m",
        "dpmpp_2m_sde",
        "dpmpp_2m_sde_heun",
        "dpmpp_3m_sde",
        "dpmpp_2s_ancestral",
        "dpmpp_sde",
        "dpm_2",
        "dpm_2_ancestral",
        "lms",
        "ipndm",
        "deis",
        "unipc",
        "unipc_bh2",
        "lcm",
        "edm",
    ];

    /// The config/flag name, snake_case as k-diffusion names its functions
    /// ("euler_ancestral", "dpmpp_2m", "dpm_2_ancestral", …).
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
            SamplerKind::Dpmpp2mSde => "DPM++ 2M SDE",
            SamplerKind::Dpmpp2mSdeHeun => "DPM++ 2M SDE Heun",
            SamplerKind::Dpmpp3mSde => "DPM++ 3M SDE",
            SamplerKind::Dpmpp2sAncestral => "DPM++ 2S a",
            SamplerKind::DpmppSde => "DPM++ SDE",
            SamplerKind::Dpm2 => "DPM2",
            SamplerKind::Dpm2Ancestral => "DPM2 a",
            SamplerKind::Lms => "LMS",
            SamplerKind::Ipndm => "iPNDM",
            SamplerKind::Deis => "DEIS",
            SamplerKind::UniPc => "UniPC",
            SamplerKind::UniPcBh2 => "UniPC bh2",
            SamplerKind::Lcm => "LCM",
            SamplerKind::Edm => "EDM stochastic (Heun + churn)",
        }
    }

    /// The diffusers scheduler class that implements the same method (with its non-default
    /// options in parentheses), if there is one.
    pub fn diffusers_class(self) -> Option<&'static str> {
        Some(match self {
            SamplerKind::Ddpm => "DDPMScheduler",
            SamplerKind::Ddim => "DDIMScheduler",
            SamplerKind::Euler => "EulerDiscreteScheduler",
            SamplerKind::EulerAncestral => "EulerAncestralDiscreteScheduler",
            SamplerKind::Heun => "HeunDiscreteScheduler",
            SamplerKind::Dpmpp2m => "DPMSolverMultistepScheduler",
            SamplerKind::Dpmpp2mSde => {
                "DPMSolverMultistepScheduler(algorithm_type=\"sde-dpmsolver++\")"
            }
            SamplerKind::Dpmpp2mSdeHeun => {
                "DPMSolverMultistepScheduler(algorithm_type=\"sde-dpmsolver++\", solver_type=\"heun\")"
            }
            SamplerKind::Dpmpp3mSde => {
                "DPMSolverMultistepScheduler(algorithm_type=\"sde-dpmsolver++\", solver_order=3)"
            }
            SamplerKind::DpmppSde => "DPMSolverSDEScheduler",
            SamplerKind::Dpm2 => "KDPM2DiscreteScheduler",
            SamplerKind::Dpm2Ancestral => "KDPM2AncestralDiscreteScheduler",
            SamplerKind::Lms => "LMSDiscreteScheduler",
            SamplerKind::Deis => "DEISMultistepScheduler",
            SamplerKind::UniPc => "UniPCMultistepScheduler(solver_type=\"bh1\", solver_order=3)",
            SamplerKind::UniPcBh2 => "UniPCMultistepScheduler(solver_order=3)",
            SamplerKind::Lcm => "LCMScheduler",
            SamplerKind::Dpmpp2sAncestral | SamplerKind::Ipndm | SamplerKind::Edm => return None,
        })
    }

    /// The k-diffusion (or, marked "ComfyUI", ComfyUI's k-diffusion fork) sampling
    /// function that is the reference for this sampler, if there is one.
    pub fn k_diffusion_function(self) -> Option<&'static str> {
        Some(match self {
            SamplerKind::Ddpm | SamplerKind::Ddim => return None,
            SamplerKind::Euler => "sample_euler",
            SamplerKind::EulerAncestral => "sample_euler_ancestral",
            SamplerKind::Heun => "sample_heun",
            SamplerKind::Dpmpp2m => "sample_dpmpp_2m",
            SamplerKind::Dpmpp2mSde => "sample_dpmpp_2m_sde",
            SamplerKind::Dpmpp2mSdeHeun => "sample_dpmpp_2m_sde(solver_type=\"heun\")",
            SamplerKind::Dpmpp3mSde => "sample_dpmpp_3m_sde",
            SamplerKind::Dpmpp2sAncestral => "sample_dpmpp_2s_ancestral",
            SamplerKind::DpmppSde => "sample_dpmpp_sde",
            SamplerKind::Dpm2 => "sample_dpm_2",
            SamplerKind::Dpm2Ancestral => "sample_dpm_2_ancestral",
            SamplerKind::Lms => "sample_lms",
            SamplerKind::Ipndm => "sample_ipndm (ComfyUI)",
            SamplerKind::Deis => "sample_deis (ComfyUI; ours is the log-rho form)",
            SamplerKind::UniPc => "sample_unipc (ComfyUI)",
            SamplerKind::UniPcBh2 => "sample_unipc_bh2 (ComfyUI)",
            SamplerKind::Lcm => "sample_lcm (ComfyUI)",
            SamplerKind::Edm => "sample_heun(s_churn, s_tmin, s_tmax, s_noise)",
        })
    }

    /// Model evaluations per step (the two-stage methods: 2, except their last step to
    /// σ = 0, which takes 1).
    pub fn evals_per_step(self) -> usize {
        if self.two_stage() {
            2
        } else {
            1
        }
    }

    fn two_stage(self) -> bool {
        matches!(
            self,
            SamplerKind::Heun
                | SamplerKind::Edm
                | SamplerKind::Dpm2
                | SamplerKind::Dpm2Ancestral
                | SamplerKind::Dpmpp2sAncestral
                | SamplerKind::DpmppSde
        )
    }

    /// Total model evaluations for `steps` steps ending at σ = 0 (ending at a positive σ,
    /// the two-stage methods take 2 on the last step too).
    pub fn evals(self, steps: usize) -> usize {
        if self.two_stage() {
            (2 * steps).saturating_sub(1)
        } else {
            steps
        }
    }

    /// Whether the sampler draws fresh noise during sampling at its default options
    /// (DDIM is deterministic at its default η = 0).
    pub fn stochastic(self) -> bool {
        matches!(
            self,
            SamplerKind::Ddpm
                | SamplerKind::EulerAncestral
                | SamplerKind::Dpmpp2mSde
                | SamplerKind::Dpmpp2mSdeHeun
                | SamplerKind::Dpmpp3mSde
                | SamplerKind::Dpmpp2sAncestral
                | SamplerKind::DpmppSde
                | SamplerKind::Dpm2Ancestral
                | SamplerKind::Lcm
                | SamplerKind::Edm
        )
    }

    /// Whether the sampler uses `option` (the rest it ignores), as the keyword arguments of
    /// k-diffusion's functions say:
    /// - `eta` and `s_noise`: the ancestral and SDE samplers (`sample_euler_ancestral`,
    ///   `_dpm_2_ancestral`, `_dpmpp_2s_ancestral`, `_dpmpp_sde`, `_dpmpp_2m_sde`,
    ///   `_dpmpp_3m_sde`) and DDIM (Euler-ancestral over the training sigmas);
    /// - `s_churn`, `s_tmin`, `s_tmax`, `s_noise`: EDM's churn in `sample_euler`,
    ///   `sample_heun` and `sample_dpm_2` (and `edm`, Heun with EDM's churn by default);
    /// - `s_noise` also for LCM (ComfyUI `sample_lcm`); `r` for DPM++ SDE; `order` for the
    ///   multistep solvers LMS, DEIS and UniPC.
    ///
    /// DDPM has none (it is η = 1 by definition).
    pub fn accepts(self, option: SamplerOption) -> bool {
        use SamplerKind as K;
        use SamplerOption as O;
        let ancestral = matches!(
            self,
            K::Ddim
                | K::EulerAncestral
                | K::Dpmpp2mSde
                | K::Dpmpp2mSdeHeun
                | K::Dpmpp3mSde
                | K::Dpmpp2sAncestral
                | K::DpmppSde
                | K::Dpm2Ancestral
        );
        let churn = matches!(self, K::Euler | K::Heun | K::Dpm2 | K::Edm);
        match option {
            O::Eta => ancestral,
            O::SNoise => ancestral || churn || self == K::Lcm,
            O::SChurn | O::STmin | O::STmax => churn,
            O::Order => matches!(self, K::Lms | K::Deis | K::UniPc | K::UniPcBh2),
            O::R => self == K::DpmppSde,
        }
    }

    /// The options this sampler takes, in [`SamplerOption::ALL`] order.
    pub fn options(self) -> Vec<SamplerOption> {
        SamplerOption::ALL.into_iter().filter(|&o| self.accepts(o)).collect()
    }

    /// The options set in `options` that this sampler ignores (for a front end that
    /// rejects them).
    pub fn ignored(self, options: &SamplerOptions) -> Vec<SamplerOption> {
        options.given().into_iter().filter(|&o| !self.accepts(o)).collect()
    }

    /// Whether the sampler takes an η (stochasticity) option.
    pub fn uses_eta(self) -> bool {
        self.accepts(SamplerOption::Eta)
    }

    /// Whether the sampler takes an `s_noise` (noise multiplier) option.
    pub fn uses_s_noise(self) -> bool {
        self.accepts(SamplerOption::SNoise)
    }

    /// η used when [`SamplerOptions::eta`] is `None`: DDIM 0 (Song et al. 2021), the
    /// ancestral and SDE samplers 1 (k-diffusion's defaults), the ODE solvers 0 (unused).
    pub fn default_eta(self) -> f64 {
        if self == SamplerKind::Ddpm || (self.uses_eta() && self != SamplerKind::Ddim) {
            1.0
        } else {
            0.0
        }
    }

    /// The σ schedule to use when none is asked for: DDPM and DDIM walk the discrete
    /// training timesteps with diffusers' default leading spacing; LCM uses sgm_uniform
    /// (as ComfyUI recommends for it); the other solvers use Karras et al. 2022's ρ = 7
    /// schedule, which works best for them in practice ("… Karras" in the A1111 menu).
    pub fn default_schedule(self) -> SigmaSchedule {
        match self {
            SamplerKind::Ddpm | SamplerKind::Ddim => SigmaSchedule::Leading,
            SamplerKind::Lcm => SigmaSchedule::SgmUniform,
            _ => SigmaSchedule::Karras,
        }
    }

    /// The noise source to use when none is asked for: a Brownian tree for the SDE
    /// samplers (DPM++ SDE, 2M SDE, 2M SDE Heun, 3M SDE), as k-diffusion's
    /// `sample_dpmpp_sde`/`_2m_sde`/`_3m_sde` default to `BrownianTreeNoiseSampler`;
    /// independent draws for the others, as its ancestral samplers default to
    /// `default_noise_sampler` (the deterministic ones draw none).
    pub fn default_noise(self) -> NoiseKind {
        match self {
            SamplerKind::DpmppSde | SamplerKind::Dpmpp2mSde | SamplerKind::Dpmpp2mSdeHeun | SamplerKind::Dpmpp3mSde => {
                NoiseKind::Brownian
            }
            _ => NoiseKind::Independent,
        }
    }

    /// The table row of this sampler.
    pub fn row(self) -> SamplerRow {
        SamplerRow {
            name: self.name(),
            display_name: self.display_name(),
            diffusers_class: self.diffusers_class(),
            k_diffusion_function: self.k_diffusion_function(),
            evals_per_step: self.evals_per_step(),
            stochastic: self.stochastic(),
            uses_eta: self.uses_eta(),
            options: self.options(),
            default_schedule: self.default_schedule().name(),
            default_noise: self.default_noise(),
        }
    }

    /// Every sampler's row, in [`SamplerKind::ALL`] order (what `stipple samplers` prints).
    pub fn table() -> Vec<SamplerRow> {
        Self::ALL.iter().map(|k| k.row()).collect()
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

/// Runs the sampler `kind` (dispatch for front ends) with the options it accepts
/// ([`SamplerKind::accepts`]; the others are ignored, and so is `options.x0_clamp`, which
/// belongs to a [`crate::ClampedX0`] around `model`). `noise` is only used by the
/// stochastic samplers (and DDIM with η > 0, and churn). The observer first sees the
/// starting latent ([`Observer::on_start`]), then every step.
pub fn sample<L: Latent>(
    kind: SamplerKind,
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    options: &SamplerOptions,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    use SamplerKind as K;
    observer.on_start(&x, sigmas.as_slice()[0]);
    let eta = options.eta.unwrap_or(kind.default_eta());
    let s_noise = options.s_noise.unwrap_or(1.0);
    // k-diffusion's defaults: no churn (s_churn 0, s_tmin 0, s_tmax ∞, s_noise 1).
    let churn = options.churn(Churn::NONE);
    match kind {
        K::Ddpm => ddpm(model, x, sigmas, noise, observer),
        K::Ddim => ddim(model, x, sigmas, eta, s_noise, noise, observer),
        K::Euler => euler(model, x, sigmas, &churn, noise, observer),
        K::EulerAncestral => euler_ancestral(model, x, sigmas, eta, s_noise, noise, observer),
        K::Heun => heun(model, x, sigmas, &churn, noise, observer),
        K::Dpmpp2m => dpmpp_2m(model, x, sigmas, observer),
        K::Dpmpp2mSde | K::Dpmpp2mSdeHeun => {
            let solver = if kind == K::Dpmpp2mSde { SdeSolver::Midpoint } else { SdeSolver::Heun };
            dpmpp_2m_sde(model, x, sigmas, eta, s_noise, solver, noise, observer)
        }
        K::Dpmpp3mSde => dpmpp_3m_sde(model, x, sigmas, eta, s_noise, noise, observer),
        K::Dpmpp2sAncestral => dpmpp_2s_ancestral(model, x, sigmas, eta, s_noise, noise, observer),
        K::DpmppSde => {
            dpmpp_sde(model, x, sigmas, eta, s_noise, options.r.unwrap_or(0.5), noise, observer)
        }
        K::Dpm2 => dpm_2(model, x, sigmas, &churn, noise, observer),
        K::Dpm2Ancestral => dpm_2_ancestral(model, x, sigmas, eta, s_noise, noise, observer),
        K::Lms => lms(model, x, sigmas, options.order.unwrap_or(4), observer),
        K::Ipndm => ipndm(model, x, sigmas, observer),
        K::Deis => deis(model, x, sigmas, options.order.unwrap_or(3), observer),
        K::UniPc | K::UniPcBh2 => {
            let variant = if kind == K::UniPc { UniPcVariant::Bh1 } else { UniPcVariant::Bh2 };
            unipc(model, x, sigmas, options.order.unwrap_or(3), variant, observer)
        }
        K::Lcm => lcm(model, x, sigmas, s_noise, noise, observer),
        K::Edm => edm(model, x, sigmas, &options.churn(Churn::EDM_IMAGENET), noise, observer),
    }
}
