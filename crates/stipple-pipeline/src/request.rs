//! A generation request as the front ends give it (names as strings), and its validated
//! form.

use serde::{Deserialize, Serialize};
use stipple_math::{FinalSigma, SigmaSchedule};
use stipple_sample::{NoiseKind, SamplerKind, SamplerOptions};

use crate::{Conditioning, PipelineError};

/// Most images one request may ask for.
pub const MAX_COUNT: usize = 4096;
/// Most steps one request may ask for.
pub const MAX_STEPS: usize = 10_000;

/// What a user asks for, before validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Sampler name (`stipple_sample::SamplerKind` names).
    pub sampler: String,
    /// σ schedule name; `None` takes the sampler's usual one.
    pub schedule: Option<String>,
    /// Number of sampling steps.
    pub steps: usize,
    /// Where the last step ends: "zero" (the denoised image) or "sigma_min" (the smallest
    /// training σ, diffusers' `final_sigmas_type`); `None` is "zero".
    #[serde(default)]
    pub final_sigma: Option<String>,
    /// Noise of the stochastic samplers: "brownian" (one Brownian path per image) or
    /// "independent"; `None` takes the sampler's default ([`SamplerKind::default_noise`]).
    #[serde(default)]
    pub noise: Option<String>,
    /// Seed of the first image; image i uses `seed + i`.
    pub seed: u64,
    /// Number of images.
    pub count: usize,
    /// Images denoised together (memory versus speed; results do not depend on it).
    pub batch_size: usize,
    /// Sampler options (η, s_noise, EDM churn, multistep order); unset ones take the
    /// sampler's defaults.
    #[serde(default)]
    pub options: SamplerOptions,
    /// Class guidance, init image and mask.
    #[serde(default)]
    pub conditioning: Conditioning,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        Self {
            sampler: "dpmpp_2m".into(),
            schedule: None,
            steps: 20,
            final_sigma: None,
            noise: None,
            seed: 0,
            count: 16,
            batch_size: 16,
            options: SamplerOptions::default(),
            conditioning: Conditioning::default(),
        }
    }
}

/// A request whose names are resolved and whose numbers are in range.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    pub sampler: SamplerKind,
    pub schedule: SigmaSchedule,
    pub steps: usize,
    pub final_sigma: FinalSigma,
    pub noise: NoiseKind,
    pub seed: u64,
    pub count: usize,
    pub batch_size: usize,
    pub options: SamplerOptions,
    pub conditioning: Conditioning,
}

impl GenerateRequest {
    /// Resolves names and checks ranges; every error says what is accepted.
    pub fn validate(&self) -> Result<GenerateSpec, PipelineError> {
        let sampler: SamplerKind = self.sampler.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?;
        let schedule = match &self.schedule {
            Some(s) => s.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?,
            None => sampler.default_schedule(),
        };
        let final_sigma = match &self.final_sigma {
            Some(s) => s.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?,
            None => FinalSigma::Zero,
        };
        let noise = match &self.noise {
            Some(s) => s.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?,
            None => sampler.default_noise(),
        };
        if self.steps == 0 || self.steps > MAX_STEPS {
            return Err(PipelineError::Invalid(format!("steps must be between 1 and {MAX_STEPS}, got {}", self.steps)));
        }
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(PipelineError::Invalid(format!("count must be between 1 and {MAX_COUNT}, got {}", self.count)));
        }
        if self.batch_size == 0 {
            return Err(PipelineError::Invalid("batch size must be at least 1".into()));
        }
        validate_options(&self.options)?;
        self.conditioning.validate()?;
        self.seed.checked_add(self.count as u64 - 1).ok_or_else(|| {
            PipelineError::Invalid(format!("seed {} + count {} overflows a 64-bit seed", self.seed, self.count))
        })?;
        Ok(GenerateSpec {
            sampler,
            schedule,
            steps: self.steps,
            final_sigma,
            noise,
            seed: self.seed,
            count: self.count,
            batch_size: self.batch_size.min(self.count),
            options: self.options,
            conditioning: self.conditioning.clone(),
        })
    }
}

/// Range checks of the sampler options; each message names the option and its range.
fn validate_options(o: &SamplerOptions) -> Result<(), PipelineError> {
    let check = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
        Some(v) if !(v.is_finite() && (lo..=hi).contains(&v)) => {
            Err(PipelineError::Invalid(format!("{name} must lie in [{lo}, {hi}], got {v}")))
        }
        _ => Ok(()),
    };
    check("eta", o.eta, 0.0, 1.0)?;
    check("s_noise", o.s_noise, 0.0, 10.0)?;
    check("s_churn", o.s_churn, 0.0, 1000.0)?;
    check("s_tmin", o.s_tmin, 0.0, f64::MAX)?;
    check("s_tmax", o.s_tmax, 0.0, f64::MAX)?;
    check("r", o.r, f64::MIN_POSITIVE, 1.0)?;
    o.x0_clamp.validate().map_err(|e| PipelineError::Invalid(e.to_string()))?;
    if let Some(order) = o.order {
        if !(1..=4).contains(&order) {
            return Err(PipelineError::Invalid(format!("order must be 1, 2, 3 or 4, got {order}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sampler_lists_the_accepted_names() {
        let r = GenerateRequest { sampler: "eular".into(), ..Default::default() };
        let msg = r.validate().unwrap_err().to_string();
        for name in ["ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m"] {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn unknown_schedule_lists_the_accepted_names() {
        let r = GenerateRequest { schedule: Some("karas".into()), ..Default::default() };
        let msg = r.validate().unwrap_err().to_string();
        for name in ["karras", "exponential", "leading", "trailing", "linspace"] {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn final_sigma_and_noise_default_and_parse() {
        let spec = GenerateRequest::default().validate().unwrap();
        assert_eq!((spec.final_sigma, spec.noise), (FinalSigma::Zero, NoiseKind::Independent));
        let sde = GenerateRequest { sampler: "dpmpp_2m_sde".into(), ..Default::default() }.validate().unwrap();
        assert_eq!(sde.noise, NoiseKind::Brownian, "k-diffusion's default for the SDE samplers");
        let r = GenerateRequest {
            sampler: "dpmpp_2m_sde".into(),
            final_sigma: Some("sigma_min".into()),
            noise: Some("independent".into()),
            ..Default::default()
        };
        let spec = r.validate().unwrap();
        assert_eq!((spec.final_sigma, spec.noise), (FinalSigma::SigmaMin, NoiseKind::Independent));
        let json: GenerateRequest = serde_json::from_str(r#"{"sampler":"euler","schedule":null,"steps":4,"seed":1,"count":1,"batch_size":1}"#).unwrap();
        assert_eq!((json.final_sigma, json.noise), (None, None));
        for (bad, names) in [
            (GenerateRequest { final_sigma: Some("min".into()), ..Default::default() }, ["zero", "sigma_min"]),
            (GenerateRequest { noise: Some("brown".into()), ..Default::default() }, ["brownian", "independent"]),
        ] {
            let msg = bad.validate().unwrap_err().to_string();
            assert!(names.iter().all(|n| msg.contains(n)), "{msg}");
        }
    }

    #[test]
    fn ranges_are_checked() {
        for bad in [
            GenerateRequest { steps: 0, ..Default::default() },
            GenerateRequest { count: 0, ..Default::default() },
            GenerateRequest { batch_size: 0, ..Default::default() },
            GenerateRequest { options: SamplerOptions { eta: Some(f64::NAN), ..Default::default() }, ..Default::default() },
            GenerateRequest { options: SamplerOptions { order: Some(7), ..Default::default() }, ..Default::default() },
            GenerateRequest { seed: u64::MAX, count: 2, ..Default::default() },
        ] {
            assert!(matches!(bad.validate(), Err(PipelineError::Invalid(_))), "{bad:?}");
        }
        assert!(GenerateRequest::default().validate().is_ok());
    }
}
