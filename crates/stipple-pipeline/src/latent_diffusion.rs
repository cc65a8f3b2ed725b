//! Text-to-image, img2img and inpainting with a Stable Diffusion checkpoint (`stipple_sd`):
//! Stipple's seeded noise in the latent space, any of its samplers and schedules over the model's own discrete training
//! schedule, classifier-free guidance with the negative prompt, the web UI's prompt syntax,
//! then the VAE's decode (Rombach et al. 2022, latent diffusion).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use stipple_nn::TensorLatent;
use stipple_sample::{sample, Observer, Sigmas, X0Clamp};
use stipple_sd::{Architecture, SdPipeline};

use crate::generate::{in_batches, inpaint_sample, Init};
use crate::{file_sha256, load_init_image, load_keep_mask, GenerateSpec, ModelRef, PipelineError, SeededNoise};

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

/// The file whose SHA-256 names a model in recipes: the file itself, or for a diffusers folder
/// its U-Net weights (the part that makes the picture).
pub fn hashed_file(path: &Path) -> Result<PathBuf, PipelineError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"]
        .iter()
        .map(|f| path.join("unet").join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| PipelineError::bad("model", format!("{} has no unet/diffusion_pytorch_model.safetensors", path.display())))
}

/// The recipe reference of a checkpoint: its path and the SHA-256 of its [`hashed_file`].
pub fn sd_model_ref(path: &Path) -> Result<ModelRef, PipelineError> {
    Ok(ModelRef { path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()), sha256: file_sha256(&hashed_file(path)?)?, step: None })
}

/// Generates `spec.count` images of `width × height` pixels with `sd` over `sigmas`; returns
/// them as `(count, 3, height, width)` in [−1, 1]. Image i starts from the latent noise of
/// seed `spec.seed + i` scaled to the first σ, as k-diffusion and the web UI do.
///
/// img2img: the init image (scaled to cover `width × height`, centre-cropped) is encoded by
/// the VAE (the mean of its latent distribution, so the start does not depend on the seed)
/// and noised to the σ where the walk starts (diffusers' `StableDiffusionImg2ImgPipeline`,
/// `scheduler.add_noise` at `init_timestep`). Inpainting with a 4-channel U-Net uses the
/// masked-latent method: the mask, resized to the latents, keeps the init's latents re-noised
/// to every σ walked ([`stipple_nn::Inpaint`], the web UI's latent mask blending); a 9-channel
/// inpainting U-Net gets the mask and the masked image's latents as extra input channels
/// (diffusers' `StableDiffusionInpaintPipeline`). Either way the kept pixels of the output
/// are the init image's, as the web UI's overlay of the original makes them.
pub(crate) fn generate_sd(
    sd: &SdPipeline,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    (width, height): (usize, usize),
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Tensor, PipelineError> {
    let (channels, f) = sd.latent_shape();
    for (setting, v) in [("width", width), ("height", height)] {
        if v == 0 || v % f != 0 {
            return Err(PipelineError::bad(setting, format!("must be a positive multiple of {f} (the VAE's scale), got {v}")));
        }
    }
    let c = &spec.conditioning;
    if c.class.is_some() || c.negative_class.is_some() {
        return Err(PipelineError::bad("class", "Stable Diffusion models take prompts, not classes"));
    }
    if c.prompts.len() > 1 {
        return Err(PipelineError::bad("prompt", "a Stable Diffusion request takes one prompt"));
    }
    if c.guidance_rescale != 0.0 || c.guidance_interval.is_some() {
        return Err(PipelineError::bad("guidance_rescale", "guidance rescale and guidance intervals are for Stipple models; a Stable Diffusion checkpoint takes plain guidance"));
    }
    if spec.options.x0_clamp != X0Clamp::OFF {
        return Err(PipelineError::bad("clip_sample", "clipping or thresholding x̂₀ is for pixel-space models, not the latents of a Stable Diffusion checkpoint"));
    }
    let inpainting_unet = sd.unet.config().in_channels > channels;
    if inpainting_unet && c.resample > 1 {
        return Err(PipelineError::bad("resample", "RePaint resampling needs the masked-latent method; this checkpoint has an inpainting U-Net"));
    }
    let guided = c.guidance_scale != 1.0;
    check_memory(sd, (width, height), spec.batch_size, guided, device)?;
    let (w, h) = (width / f, height / f);
    let prompt = c.prompts.first().map_or("", String::as_str);
    let (cond, uncond) = sd.encode_weighted_pair(prompt, c.negative_prompt.as_deref().unwrap_or(""), 1)?;
    let init = match &spec.init_image {
        Some(input) => {
            let (pixels, dims) = load_init_image(input, (width, height), 3, device)?;
            let known = sd.encode_images(&((&pixels + 1.0)? / 2.0)?)?;
            let mask = |size, channels| spec.mask.as_ref().map(|m| load_keep_mask(m, dims, size, channels, device)).transpose();
            let keep = if inpainting_unet { None } else { mask((w, h), channels)? };
            Some(Init { keep_pixels: mask((width, height), 3)?, pixels, known, keep })
        }
        None => None,
    };
    // An inpainting U-Net's extra channels; without a mask all is painted (the web UI's
    // txt2img conditioning of such a model: a grey image, wholly masked).
    let extra = if inpainting_unet {
        let images = match &init {
            Some(i) => ((&i.pixels + 1.0)? / 2.0)?,
            None => Tensor::full(0.5f32, (1, 3, height, width), device)?,
        };
        let paint = match init.as_ref().and_then(|i| i.keep_pixels.as_ref()) {
            Some(keep) => (1.0 - keep.narrow(1, 0, 1)?.to_dtype(DType::F32)?)?,
            None => Tensor::ones((1, 1, height, width), DType::F32, device)?,
        };
        Some(sd.inpainting_inputs(&images, &paint)?)
    } else {
        None
    };
    let mut batch = |_: usize, _: usize, x: Tensor, walked: &Sigmas, inpaint: Option<(&Tensor, &Tensor)>, noise: &mut SeededNoise| -> Result<Tensor, PipelineError> {
        let mut d = sd.denoiser_with(cond.clone(), guided.then(|| uncond.clone()), c.guidance_scale);
        if let Some((mask, latents)) = &extra {
            d = d.with_inpainting(mask, latents)?;
        }
        let x = TensorLatent(x);
        Ok(match inpaint {
            Some((known, keep)) => inpaint_sample(spec, &mut d, known, keep, x, walked, noise, &mut *observer)?,
            None => sample(spec.sampler, &mut d, x, walked, &spec.options, noise, &mut *observer)?,
        }
        .0)
    };
    let mut to_pixels = |z: Tensor| -> Result<Tensor, PipelineError> { Ok(((sd.decode_latents(&z)? * 2.0)? - 1.0)?.clamp(-1f32, 1f32)?) };
    in_batches(spec, sigmas, &[channels, h, w], init.as_ref(), device, &mut batch, &mut to_pixels)
}

/// Refuses a size and batch whose estimated activations
/// ([`SdPipeline::activation_estimate`]) exceed the memory the system has available (Linux's
/// `MemAvailable`; the loaded weights are already outside it). On the CPU only: a GPU's
/// memory is its own.
fn check_memory(sd: &SdPipeline, (width, height): (usize, usize), batch: usize, guided: bool, device: &Device) -> Result<(), PipelineError> {
    if !device.is_cpu() {
        return Ok(());
    }
    let Some(available) = mem_available() else { return Ok(()) };
    let need = sd.activation_estimate(width, height, batch, guided);
    if need.peak() <= available as f64 {
        return Ok(());
    }
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let one_fits = sd.activation_estimate(width, height, 1, guided).peak() <= available as f64;
    Err(PipelineError::bad(
        if one_fits { "batch_size" } else { "width" },
        format!(
            "{width}×{height} pixels with batch_size {batch} needs an estimated {:.1} GiB beyond the loaded weights \
             (U-Net attention {:.1} GiB + feature maps {:.1} GiB, VAE decode {:.1} GiB), but {:.1} GiB is available; \
             ask for a smaller size{}",
            gib(need.peak()),
            gib(need.unet_attention),
            gib(need.unet_features),
            gib(need.vae_decode),
            gib(available as f64),
            if one_fits { " or batch" } else { "" }
        ),
    ))
}

/// `MemAvailable` of `/proc/meminfo` in bytes; `None` where there is none.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
