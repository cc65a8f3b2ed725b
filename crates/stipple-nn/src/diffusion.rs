//! The diffusion process a model was trained with, stored beside its weights so that
//! sampling uses the same schedule, parameterisation and noise conditioning.

use serde::{Deserialize, Serialize};
use stipple_math::{BetaSchedule, DiscreteSchedule, Prediction};

/// The training noise process. Keys follow diffusers' scheduler configs
/// (`num_train_timesteps`, `beta_schedule`, `beta_start`, `beta_end`, `prediction_type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusionConfig {
    /// Number of discrete noise levels T (DDPM: 1,000).
    #[serde(default = "default_timesteps")]
    pub num_train_timesteps: usize,
    /// How β grows over t (DDPM's `linear` by default).
    #[serde(default = "default_beta_schedule")]
    pub beta_schedule: BetaSchedule,
    /// β₁ (DDPM: 1e-4).
    #[serde(default = "default_beta_start")]
    pub beta_start: f64,
    /// β_T (DDPM: 0.02).
    #[serde(default = "default_beta_end")]
    pub beta_end: f64,
    /// What the network predicts (ε, v or x₀).
    #[serde(default = "default_prediction")]
    pub prediction_type: Prediction,
}

fn default_timesteps() -> usize {
    1000
}
fn default_beta_schedule() -> BetaSchedule {
    BetaSchedule::Linear
}
fn default_beta_start() -> f64 {
    1e-4
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_prediction() -> Prediction {
    Prediction::Epsilon
}

impl Default for DiffusionConfig {
    /// DDPM's process (Ho et al. 2020, §4): T = 1000, linear β from 1e-4 to 0.02, ε-prediction.
    fn default() -> Self {
        Self {
            num_train_timesteps: default_timesteps(),
            beta_schedule: default_beta_schedule(),
            beta_start: default_beta_start(),
            beta_end: default_beta_end(),
            prediction_type: default_prediction(),
        }
    }
}

impl DiffusionConfig {
    /// Checks the values once, at load.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_train_timesteps < 2 {
            return Err(format!("num_train_timesteps must be at least 2, got {}", self.num_train_timesteps));
        }
        let ok = |b: f64| b.is_finite() && b > 0.0 && b < 1.0;
        if !ok(self.beta_start) || !ok(self.beta_end) {
            return Err(format!(
                "beta_start and beta_end must lie in (0, 1), got {} and {}",
                self.beta_start, self.beta_end
            ));
        }
        if let Prediction::Edm { .. } = self.prediction_type {
            return Err("prediction_type edm needs a continuous σ process; discrete VP models predict \
                        epsilon, v_prediction or sample"
                .into());
        }
        Ok(())
    }

    /// The discrete training schedule in σ coordinates.
    pub fn schedule(&self) -> DiscreteSchedule {
        DiscreteSchedule::new(self.beta_schedule, self.num_train_timesteps, self.beta_start, self.beta_end)
    }
}
