//! Spec → images: seeded starting noise and the sampler over given σ's, in batches.

use candle_core::{Device, Tensor};
use stipple_nn::{denoiser, DiffusionConfig, LoadedModel, TensorLatent};
use stipple_sample::{sample, Observer, Sigmas};

use crate::{GenerateSpec, PipelineError, SeededNoise};

impl GenerateSpec {
    /// The σ's this spec walks for a model trained with `diffusion`.
    pub fn sigmas(&self, diffusion: &DiffusionConfig) -> Result<Sigmas, PipelineError> {
        self.schedule.build(&diffusion.schedule(), self.steps, 0).map_err(|e| PipelineError::Invalid(e.to_string()))
    }
}

/// Generates `spec.count` images with `model` over `sigmas`; returns `(count, C, H, W)` in
/// [−1, 1]. Image i starts from the noise of seed `spec.seed + i` and draws its ancestral
/// noise from the same stream, so it does not depend on the batch size.
pub fn generate(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Tensor, PipelineError> {
    let size = model.config.image_size();
    let per_image = [model.config.unet.in_channels, size, size];
    let mut out = Vec::new();
    let mut start = 0;
    while start < spec.count {
        let n = spec.batch_size.min(spec.count - start);
        let seeds = (start..start + n).map(|i| spec.seed + i as u64);
        let mut noise = SeededNoise::new(seeds, device);
        let x = TensorLatent((noise.draw(&per_image)? * sigmas.as_slice()[0])?);
        let mut d = denoiser(&model.unet, &model.config.diffusion, None);
        let x0 = sample(spec.sampler, &mut d, x, sigmas, &spec.options, &mut noise, observer)?;
        out.push(x0.0.clamp(-1f32, 1f32)?);
        start += n;
    }
    Ok(Tensor::cat(&out, 0)?)
}
