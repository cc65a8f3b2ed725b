//! Stable Diffusion checkpoints on Stipple (SD 1.x, SD 2.x, SDXL base): load a diffusers
//! folder or an original-layout single file, and sample with any of Stipple's samplers and σ
//! schedules through the model's own discrete training schedule. See docs/MODELS.md.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use candle_core::{Device, Tensor};
//! use stipple_nn::TensorLatent;
//! use stipple_sample::{euler, samplers::Churn, SigmaSchedule};
//! use stipple_sd::SdPipeline;
//!
//! let device = Device::Cpu;
//! let sd = SdPipeline::load("models/sd15".as_ref(), &device)?;
//! let cond = sd.encode_prompt(&["a watercolor lighthouse"], 1)?;
//! let uncond = sd.encode_prompt(&["blurry"], 1)?;
//! let sigmas = SigmaSchedule::Karras.build(&sd.schedule(), 20, 1)?;
//! let noise = (Tensor::randn(0f32, 1f32, (1, 4, 64, 64), &device)? * sigmas.first())?;
//! let mut d = sd.denoiser(cond, Some(uncond), 7.5);
//! let latents = euler(&mut d, TensorLatent(noise), &sigmas, &Churn::NONE, &mut (), &mut ())?;
//! let images = sd.decode_latents(&latents.0)?; // (1, 3, 512, 512) in [0, 1]
//! # Ok(()) }
//! ```
//!
//! For SDXL use [`SdPipeline::encode`] and [`SdPipeline::denoiser_with`], whose
//! [`Conditioning`] carries the pooled text embedding too.
//!
//! Components are named as diffusers names them: [`UNet2DConditionModel`],
//! [`AutoencoderKL`], the CLIP text encoder (`stipple_nn::text::TextEncoder`) and
//! [`ClipTokenizer`]; their configs read diffusers' `config.json` keys.

mod architecture;
mod configs;
mod denoiser;
mod error;
mod extra_networks;
mod inspect;
pub mod ldm;
mod load;
mod lora;
mod memory;
mod pipeline;
mod preview;
pub mod prompt;
mod scheduler;
mod sdxl;
mod tokenizer;
mod unet;
mod unet_config;
mod vae;

pub use architecture::Architecture;
pub use configs::SdConfigs;
pub use denoiser::{GuidedUNet, SdDenoiser};
pub use error::SdError;
pub use extra_networks::{extract_loras, PromptLora};
pub use inspect::{inspect, Format, Inspection};
pub use load::LoadOptions;
pub use lora::Lora;
pub use memory::MemoryEstimate;
pub use pipeline::SdPipeline;
pub use preview::{latent_preview, preview_factors};
pub use scheduler::SchedulerConfig;
pub use sdxl::{default_time_ids, Conditioning, SecondTextEncoder};
pub use tokenizer::{ClipTokenizer, BOS, EOS};
pub use unet::{AddedCond, UNet2DConditionModel};
pub use unet_config::{PerBlock, UNet2DConditionConfig};
pub use vae::{AutoencoderKL, AutoencoderKLConfig};
