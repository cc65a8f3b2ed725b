//! A model the pipeline generates with: a Stipple model file (pixel space) or a Stable
//! Diffusion checkpoint (latent space). Every front end generates through [`Model`], so the
//! choice between the two is made here once.

use candle_core::{Device, Tensor};
use stipple_nn::{LoadedModel, TensorLatent};
use stipple_sample::{Observer, Sigmas};
use stipple_sd::SdPipeline;

use crate::latent_diffusion::generate_sd;
use crate::{generate, generate_with_attention, sd_default_size, trajectory_stats, GenerateSpec, PipelineError, StepStats, TokenMaps, TrajectoryFrame};

/// A loaded model of either kind.
pub enum Model {
    /// A Stipple model file: a pixel-space U-Net making square images of its own size, or a
    /// 1-D network making sequences of its own length.
    Stipple(Box<LoadedModel>),
    /// A Stable Diffusion checkpoint (SD 1.x, 2.x, SDXL): any multiple of 8 pixels.
    Sd(Box<SdPipeline>),
}

impl Model {
    /// The size made when a request sets none, `(width, height)`: a Stipple model's own (a
    /// model of sequences: `(length, 1)`), a checkpoint's training resolution
    /// ([`sd_default_size`]).
    pub fn default_size(&self) -> (usize, usize) {
        match self {
            Model::Stipple(m) => match m.config.sample_shape().spatial.as_slice() {
                [h, w] => (*w, *h),
                spatial => (spatial.iter().product(), 1),
            },
            Model::Sd(sd) => (sd_default_size(sd.architecture), sd_default_size(sd.architecture)),
        }
    }

    /// The `(width, height)` of `spec`'s images: its own or the model's default. A Stipple
    /// model makes its own size only (resizing would change the result); other sizes are bad
    /// input in `width`/`height`.
    pub fn size(&self, spec: &GenerateSpec) -> Result<(usize, usize), PipelineError> {
        self.size_for(spec.width, spec.height)
    }

    /// [`Model::size`] of a width and height asked for (`None`: the model's; a height left
    /// out is the width).
    pub fn size_for(&self, width: Option<usize>, height: Option<usize>) -> Result<(usize, usize), PipelineError> {
        let (dw, dh) = self.default_size();
        let size = (width.unwrap_or(dw), height.or(width).unwrap_or(dh));
        if let Model::Stipple(m) = self {
            if m.config.image_size().is_none() {
                return Err(PipelineError::bad(
                    "model",
                    format!("this model is {} making sequences of {dw} values, not images (a forecasting model)", m.config.network.describe()),
                ));
            }
            for (setting, v, own) in [("width", size.0, dw), ("height", size.1, dh)] {
                if v != own {
                    return Err(PipelineError::bad(setting, format!("this model makes {dw}×{dh} images; got {v}")));
                }
            }
        }
        Ok(size)
    }

    /// What the model is, in words (`stipple inspect`'s architecture names).
    pub fn kind(&self) -> String {
        match self {
            Model::Stipple(_) => "a Stipple model".to_string(),
            Model::Sd(sd) => sd.architecture.to_string(),
        }
    }

    /// The σ's `spec` walks over the model's discrete training schedule.
    pub fn sigmas(&self, spec: &GenerateSpec) -> Result<Sigmas, PipelineError> {
        match self {
            Model::Stipple(m) => spec.sigmas(&m.config.diffusion),
            Model::Sd(sd) => spec.sigmas_for(&sd.schedule()),
        }
    }

    /// The sampler's state `(B, c, h, w)` (x_t or x̂₀) as RGB in [−1, 1], cheap enough for
    /// every step: a Stipple model's pixels themselves, a checkpoint's latents through the
    /// published linear latent-to-RGB fit of its VAE, at latent resolution
    /// ([`stipple_sd::latent_preview`]).
    pub fn preview(&self, x: &Tensor) -> Result<Tensor, PipelineError> {
        match self {
            Model::Stipple(_) => Ok(x.clone()),
            Model::Sd(sd) => Ok(sd.preview(x)?),
        }
    }

    /// Recorded trajectory frames as RGB previews in [−1, 1] ([`Model::preview`] of x_t and
    /// of x̂₀), ready to draw; a Stipple model's frames are pixels already.
    pub fn preview_frames(&self, frames: Vec<TrajectoryFrame>) -> Result<Vec<TrajectoryFrame>, PipelineError> {
        if let Model::Stipple(_) = self {
            return Ok(frames);
        }
        frames
            .into_iter()
            .map(|f| Ok(TrajectoryFrame { x: self.preview(&f.x)?, denoised: self.preview(&f.denoised)?, ..f }))
            .collect()
    }

    /// Whether [`Model::trajectory_stats`] applies: for a checkpoint, whose steps are latents
    /// and whose images are pixels, bad input in `trajectory_json` (checked before sampling).
    pub fn check_trajectory_stats(&self) -> Result<(), PipelineError> {
        match self {
            Model::Stipple(_) => Ok(()),
            Model::Sd(_) => Err(PipelineError::bad(
                "trajectory_json",
                "trajectory statistics compare x̂₀ with the final pixels; a Stable Diffusion checkpoint samples latents (its --trajectory shows previews)",
            )),
        }
    }

    /// Per-step statistics of a trajectory against the final images ([`trajectory_stats`]),
    /// where [`Model::check_trajectory_stats`] allows them.
    pub fn trajectory_stats(&self, frames: &[TrajectoryFrame], final_images: &Tensor) -> Result<Vec<StepStats>, PipelineError> {
        self.check_trajectory_stats()?;
        trajectory_stats(frames, final_images)
    }

    /// The Stipple model, for what only one makes (clips, forecasts); a checkpoint is bad input
    /// in `model`, the message ending with `needed` (what the output needs instead).
    pub fn stipple(&self, needed: &str) -> Result<&LoadedModel, PipelineError> {
        match self {
            Model::Stipple(m) => Ok(m),
            Model::Sd(_) => Err(PipelineError::bad("model", format!("a Stable Diffusion checkpoint makes images; {needed}"))),
        }
    }

    /// `spec` with its classes named as this model names them ([`GenerateSpec::with_class_names`]),
    /// so that every front end records names; a checkpoint has no classes.
    pub fn with_class_names(&self, spec: GenerateSpec) -> Result<GenerateSpec, PipelineError> {
        match self {
            Model::Stipple(m) => spec.with_class_names(m),
            Model::Sd(_) => Ok(spec),
        }
    }

    /// Generates `spec`'s images over `sigmas`: `(count, C, H, W)` in [−1, 1]. The observer
    /// sees the sampler's steps in the model's own space (pixels, or latents for a
    /// checkpoint; [`Model::preview`] turns those into pixels).
    pub fn generate(
        &self,
        spec: &GenerateSpec,
        sigmas: &Sigmas,
        device: &Device,
        observer: &mut impl Observer<TensorLatent>,
    ) -> Result<Tensor, PipelineError> {
        let size = self.size(spec)?;
        match self {
            Model::Stipple(_) if spec.vae_tiling => Err(vae_tiling_refused()),
            Model::Stipple(m) => generate(m, spec, sigmas, device, observer),
            Model::Sd(sd) => Ok(generate_sd(sd, spec, sigmas, size, device, observer, false)?.0),
        }
    }

    /// [`Model::generate`] with the per-token cross-attention maps of each image
    /// ([`crate::generate_with_attention`] for a Stipple prompt model).
    pub fn generate_with_attention(
        &self,
        spec: &GenerateSpec,
        sigmas: &Sigmas,
        device: &Device,
        observer: &mut impl Observer<TensorLatent>,
    ) -> Result<(Tensor, Vec<TokenMaps>), PipelineError> {
        match self {
            Model::Stipple(_) if spec.vae_tiling => Err(vae_tiling_refused()),
            Model::Stipple(m) => generate_with_attention(m, spec, sigmas, device, observer),
            Model::Sd(sd) => generate_sd(sd, spec, sigmas, self.size(spec)?, device, observer, true),
        }
    }
}

/// The error of `vae_tiling` for a Stipple model, which makes pixels without a VAE.
fn vae_tiling_refused() -> PipelineError {
    PipelineError::bad("vae_tiling", "is for Stable Diffusion checkpoints (latents decoded by a VAE); this Stipple model makes pixels directly")
}
