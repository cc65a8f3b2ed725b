//! The model's discrete training schedule, read from a diffusers `scheduler_config.json`.
//!
//! Only the keys that define the trained model are kept (β schedule, prediction type) with
//! the spacing the model's authors chose; the sampler itself is Stipple's (any of its
//! samplers and σ schedules run over [`SchedulerConfig::schedule`]).

use serde::Deserialize;
use stipple_math::{BetaSchedule, DiscreteSchedule, Prediction, TimestepSpacing};

/// diffusers scheduler keys that define the training process (defaults: diffusers'
/// `DDPMScheduler`/`EulerDiscreteScheduler` defaults, except the spacing and offset, whose
/// defaults are those of Stable Diffusion's released configs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SchedulerConfig {
    #[serde(default = "timesteps")]
    pub num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    #[serde(default = "beta_schedule")]
    pub beta_schedule: BetaSchedule,
    #[serde(default = "prediction")]
    pub prediction_type: Prediction,
    #[serde(default = "spacing")]
    pub timestep_spacing: TimestepSpacing,
    #[serde(default = "offset")]
    pub steps_offset: usize,
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
    #[serde(default)]
    trained_betas: Option<serde_json::Value>,
}

fn timesteps() -> usize {
    1000
}
fn beta_start() -> f64 {
    0.0001
}
fn beta_end() -> f64 {
    0.02
}
fn beta_schedule() -> BetaSchedule {
    BetaSchedule::Linear
}
fn prediction() -> Prediction {
    Prediction::Epsilon
}
fn spacing() -> TimestepSpacing {
    TimestepSpacing::Leading
}
fn offset() -> usize {
    1
}

impl SchedulerConfig {
    /// Stable Diffusion 1.x and 2.x (base, 512 px): 1000 steps, √β linear from √0.00085 to
    /// √0.012 (`scaled_linear`), leading spacing with `steps_offset = 1`, with `prediction`
    /// (ε for SD 1.x and 2.x-base, v for SD 2.x 768 px).
    pub fn stable_diffusion(prediction: Prediction) -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: BetaSchedule::ScaledLinear,
            prediction_type: prediction,
            timestep_spacing: TimestepSpacing::Leading,
            steps_offset: 1,
            rescale_betas_zero_snr: false,
            trained_betas: None,
        }
    }

    /// Reads a diffusers `scheduler/scheduler_config.json` (any scheduler class; keys about
    /// how that scheduler samples are ignored).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| format!("not a scheduler config this build reads: {e}"))?;
        if cfg.trained_betas.as_ref().is_some_and(|b| !b.is_null()) {
            return Err("trained_betas is not supported (use beta_schedule)".into());
        }
        let ok = |b: f64| b.is_finite() && b > 0.0 && b < 1.0;
        if cfg.num_train_timesteps < 2 || !ok(cfg.beta_start) || !ok(cfg.beta_end) {
            return Err(format!(
                "num_train_timesteps must be ≥ 2 and beta_start, beta_end in (0, 1); got {}, {}, {}",
                cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end
            ));
        }
        if let Prediction::Edm { .. } = cfg.prediction_type {
            return Err("prediction_type must be epsilon, v_prediction or sample for a discrete model".into());
        }
        Ok(cfg)
    }

    /// The discrete training schedule in σ coordinates.
    pub fn schedule(&self) -> DiscreteSchedule {
        let (b, t, s, e) = (self.beta_schedule, self.num_train_timesteps, self.beta_start, self.beta_end);
        if self.rescale_betas_zero_snr {
            DiscreteSchedule::zero_terminal_snr(b, t, s, e)
        } else {
            DiscreteSchedule::new(b, t, s, e)
        }
    }
}
