//! Text-to-image with a Stable Diffusion checkpoint (`stipple_sd`): Stipple's seeded noise in
//! the latent space, any of its samplers and schedules over the model's own discrete training
//! schedule, classifier-free guidance with the negative prompt, the web UI's prompt syntax,
//! then the VAE's decode (Rombach et al. 2022, latent diffusion).

use std::path::Path;

use candle_core::{Device, Tensor};
use stipple_nn::TensorLatent;
use stipple_sample::{sample, Observer, Sigmas};
use stipple_sd::{Architecture, SdPipeline};

use crate::{file_sha256, GenerateSpec, ModelRef, PipelineError, SeededNoise};

/// Whether `path` is a Stable Diffusion checkpoint rather than a Stipple model file: a
/// diffusers folder (`model_index.json`), or a `.safetensors` file without Stipple's
/// `format` metadata.
pub fn is_sd_checkpoint(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("model_index.json").is_file();
    }
    path.is_file() && stipple_nn::read_metadata(path).is_ok_and(|m| m.get("format").map(String::as_str) != Some(stipple_nn::MODEL_FORMAT))
}

/// The size a checkpoint generates when none is asked: its training resolution (SD 1.x 512,
/// SD 2.x 768, SDXL 1024 pixels square).
pub fn sd_default_size(architecture: Architecture) -> usize {
    match architecture {
        Architecture::Sd1 => 512,
        Architecture::Sd2 => 768,
        Architecture::SdxlBase | Architecture::SdxlRefiner => 1024,
    }
}

/// The recipe reference of a checkpoint: a single file by its SHA-256, a diffusers folder by
/// its U-Net weights' (the part that makes the picture).
pub fn sd_model_ref(path: &Path) -> Result<ModelRef, PipelineError> {
    let hashed = if path.is_dir() {
        ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"]
            .iter()
            .map(|f| path.join("unet").join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| PipelineError::bad("model", format!("{} has no unet/diffusion_pytorch_model.safetensors", path.display())))?
    } else {
        path.to_path_buf()
    };
    Ok(ModelRef { path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()), sha256: file_sha256(&hashed)?, step: None })
}

/// Generates `spec.count` images of `width × height` pixels with `sd`; returns them as
/// `(count, 3, height, width)` in [−1, 1] and the σ's walked. Image i starts from the latent
/// noise of seed `spec.seed + i` scaled to the first σ, as k-diffusion and the web UI do.
pub fn generate_sd(
    sd: &SdPipeline,
    spec: &GenerateSpec,
    width: usize,
    height: usize,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<(Tensor, Sigmas), PipelineError> {
    let (channels, f) = sd.latent_shape();
    for (setting, v) in [("width", width), ("height", height)] {
        if v == 0 || v % f != 0 {
            return Err(PipelineError::bad(setting, format!("must be a positive multiple of {f} (the VAE's scale), got {v}")));
        }
    }
    let c = &spec.conditioning;
    if spec.init_image.is_some() || spec.mask.is_some() {
        return Err(PipelineError::bad("init_image", "img2img and inpainting with Stable Diffusion checkpoints are in the library (stipple-sd) but not yet in sample"));
    }
    if c.class.is_some() || c.negative_class.is_some() {
        return Err(PipelineError::bad("class", "Stable Diffusion models take prompts, not classes"));
    }
    if c.prompts.len() > 1 {
        return Err(PipelineError::bad("prompt", "a Stable Diffusion request takes one prompt"));
    }
    let prompt = c.prompts.first().map_or("", String::as_str);
    let (cond, uncond) = sd.encode_weighted_pair(prompt, c.negative_prompt.as_deref().unwrap_or(""), 1)?;
    let schedule = sd.schedule();
    let sigmas = spec
        .schedule
        .build(&schedule, spec.steps, 0)
        .and_then(|s| spec.final_sigma.apply(s, schedule.sigma_min()))
        .map_err(|e| PipelineError::bad("schedule", e.to_string()))?;
    let guided = c.guidance_scale != 1.0;
    let mut out = Vec::new();
    let mut start = 0;
    while start < spec.count {
        let n = spec.batch_size.min(spec.count - start);
        let mut noise = SeededNoise::with_rng((start..start + n).map(|i| spec.seed + i as u64), spec.noise, spec.rng, device);
        let x = (noise.draw(&[channels, height / f, width / f])? * sigmas.as_slice()[0])?;
        let mut d = sd.denoiser_with(cond.clone(), guided.then(|| uncond.clone()), c.guidance_scale);
        let latents = sample(spec.sampler, &mut d, TensorLatent(x), &sigmas, &spec.options, &mut noise, observer)?.0;
        let images = sd.decode_latents(&latents)?;
        out.push(((images * 2.0)? - 1.0)?);
        start += n;
    }
    Ok((Tensor::cat(&out, 0)?, sigmas))
}
