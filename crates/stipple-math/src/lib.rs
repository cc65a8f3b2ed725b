//! Pure f64 diffusion mathematics: β schedules, the discrete (VP) training schedule seen in
//! variance-exploding coordinates, timestep spacings, σ schedules for samplers, the
//! preconditioning scalings of each prediction type, the ancestral step split and the
//! dynamic threshold of a predicted clean sample.
//!
//! Conventions (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
//! Generative Models", EDM): a noisy sample is `x = x₀ + σ·ε`. A VP-trained model with
//! cumulative product ᾱ sees `√ᾱ·x` and `σ = √((1−ᾱ)/ᾱ)`.
//!
//! No dependencies, no randomness, no I/O. Every function cites its source.

mod ancestral;
mod betas;
mod discrete;
mod error;
mod final_sigma;
mod prediction;
mod sigmas;
mod spacing;
mod special;
mod threshold;

pub use ancestral::ancestral_step;
pub use betas::{
    alpha_bar_from_sigma, alphas_cumprod, rescale_zero_terminal_snr, sigma_from_alpha_bar,
    BetaSchedule,
};
pub use discrete::{edm_c_noise, DiscreteSchedule};
pub use error::{ParseNameError, SigmasError};
pub use final_sigma::FinalSigma;
pub use prediction::{Prediction, Scalings};
pub use sigmas::{
    beta_timesteps, exponential, karras, linear_quadratic, polyexponential, vp, SigmaSchedule, Sigmas,
};
pub use special::{beta_cdf, beta_ppf};
pub use spacing::{timesteps, timesteps_rounded, TimestepSpacing};
pub use threshold::{dynamic_threshold, quantile};
