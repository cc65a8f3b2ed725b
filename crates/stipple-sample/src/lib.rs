//! Samplers over the denoiser contract `D(x; σ) ≈ E[x₀ | x]` with `x = x₀ + σ·ε`
//! (Karras et al. 2022; k-diffusion's design), generic over the latent type.
//!
//! Seams: [`Latent`] (linear combinations), [`Denoiser`] (what the model says),
//! [`Noise`] (randomness is an argument), [`Observer`] (progress and cancellation).
//! Wrappers that change what the model says ([`ClampedX0`]) are denoisers themselves.
//! Each sampler is a short function that loops over a [`Sigmas`] list ending in 0 (or at a
//! positive final level, where it stops without the final denoising).
//! No backend, no I/O, prints nothing.

mod brownian;
mod denoiser;
mod error;
mod image_rng;
mod latent;
mod noise;
mod observer;
mod options;
mod philox;
mod registry;
mod repaint;
pub mod samplers;
mod torch_cpu;
mod webui;
mod x0_clamp;

pub use brownian::BrownianTree;
pub use denoiser::{Denoiser, Network, Preconditioned};
pub use error::{BoxError, SampleError};
pub use image_rng::{ImageRng, RngSource};
pub use latent::Latent;
pub use noise::{Noise, NoiseKind};
pub use observer::{Observer, StepInfo};
pub use philox::{philox4x32_10, Philox4x32};
pub use options::{SamplerOption, SamplerOptions};
pub use registry::{sample, SamplerKind, SamplerRow};
pub use repaint::sample_resampled;
pub use torch_cpu::TorchCpuGenerator;
pub use webui::{parse_webui_sampler, parse_webui_schedule, webui_alias};
pub use x0_clamp::{ClampLatent, ClampedX0, X0Clamp};
pub use samplers::{
    ddim, ddpm, deis, dpm_2, dpm_2_ancestral, dpmpp_2m, dpmpp_2m_sde, dpmpp_2s_ancestral,
    dpmpp_3m_sde, dpmpp_sde, edm, euler, euler_ancestral, heun, ipndm, lcm, lms, unipc, Churn,
    SdeSolver, UniPcVariant,
};

// What front ends need to build a schedule without naming stipple-math themselves.
pub use stipple_math::{
    BetaSchedule, DiscreteSchedule, FinalSigma, ParseNameError, Prediction, Scalings, SigmaSchedule, Sigmas,
    SigmasError, TimestepSpacing,
};
