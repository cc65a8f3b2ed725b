//! A generation request as the front ends give it (names as strings), and its validated
//! form.

use serde::{Deserialize, Serialize};
use stipple_math::SigmaSchedule;
use stipple_sample::{SamplerKind, SamplerOptions};

use crate::PipelineError;

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
    /// Seed of the first image; image i uses `seed + i`.
    pub seed: u64,
    /// Number of images.
    pub count: usize,
    /// Images denoised together (memory versus speed; results do not depend on it).
    pub batch_size: usize,
    /// Ancestral noise scale η for the samplers that have one.
    pub eta: Option<f64>,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        Self { sampler: "dpmpp_2m".into(), schedule: None, steps: 20, seed: 0, count: 16, batch_size: 16, eta: None }
    }
}

/// A request whose names are resolved and whose numbers are in range.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    pub sampler: SamplerKind,
    pub schedule: SigmaSchedule,
    pub steps: usize,
    pub seed: u64,
    pub count: usize,
    pub batch_size: usize,
    pub options: SamplerOptions,
}

impl GenerateRequest {
    /// Resolves names and checks ranges; every error says what is accepted.
    pub fn validate(&self) -> Result<GenerateSpec, PipelineError> {
        let sampler: SamplerKind = self.sampler.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?;
        let schedule = match &self.schedule {
            Some(s) => s.parse().map_err(|e| PipelineError::Invalid(format!("{e}")))?,
            None => sampler.default_schedule(),
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
        if let Some(eta) = self.eta {
            if !(eta.is_finite() && (0.0..=1.0).contains(&eta)) {
                return Err(PipelineError::Invalid(format!("eta must lie in [0, 1], got {eta}")));
            }
        }
        self.seed.checked_add(self.count as u64 - 1).ok_or_else(|| {
            PipelineError::Invalid(format!("seed {} + count {} overflows a 64-bit seed", self.seed, self.count))
        })?;
        Ok(GenerateSpec {
            sampler,
            schedule,
            steps: self.steps,
            seed: self.seed,
            count: self.count,
            batch_size: self.batch_size.min(self.count),
            options: SamplerOptions { eta: self.eta },
        })
    }
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
    fn ranges_are_checked() {
        for bad in [
            GenerateRequest { steps: 0, ..Default::default() },
            GenerateRequest { count: 0, ..Default::default() },
            GenerateRequest { batch_size: 0, ..Default::default() },
            GenerateRequest { eta: Some(f64::NAN), ..Default::default() },
            GenerateRequest { seed: u64::MAX, count: 2, ..Default::default() },
        ] {
            assert!(matches!(bad.validate(), Err(PipelineError::Invalid(_))), "{bad:?}");
        }
        assert!(GenerateRequest::default().validate().is_ok());
    }
}
