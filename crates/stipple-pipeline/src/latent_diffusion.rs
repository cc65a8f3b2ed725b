//! Text-to-image, img2img and inpainting with a Stable Diffusion checkpoint (`stipple_sd`):
//! Stipple's seeded noise in the latent space, any of its samplers and schedules over the model's own discrete training
//! schedule, classifier-free guidance with the negative prompt, the web UI's prompt syntax,
//! then the VAE's decode (Rombach et al. 2022, latent diffusion).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use stipple_nn::{CrossAttentionRecorder, TensorLatent};
use stipple_sample::{sample, Observer, Sigmas, X0Clamp};
use stipple_sd::{Architecture, SdPipeline};

use crate::generate::{in_batches, inpaint_sample, walked_sigmas, Init};
use crate::{load_init_image, GenerateSpec, PipelineError, RepaintMask, SeededNoise, TokenMaps};

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
/// are the init image's, as the web UI's overlay of the original makes them. With
/// `spec.vae_tiling` the init image is encoded and the latents are decoded in overlapping
/// tiles ([`SdPipeline::encode_images_tiled`], [`SdPipeline::decode_latents_tiled`]).
///
/// With `attention`, each image's per-token cross-attention maps of its prompt (DAAM, see
/// [`TokenMaps`]) at pixel resolution, averaged over every cross-attention layer and U-Net
/// call of the prompt's branch; the images are the same as without.
pub(crate) fn generate_sd(
    sd: &SdPipeline,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    (width, height): (usize, usize),
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
    attention: bool,
) -> Result<(Tensor, Vec<TokenMaps>), PipelineError> {
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
    if spec.vae_tiling && sd.vae.config().sample_size.is_none() {
        return Err(PipelineError::bad("vae_tiling", "this checkpoint's VAE config names no tile size (sample_size), so it cannot decode in tiles"));
    }
    check_memory(sd, (width, height), spec.batch_size, guided, spec.vae_tiling, device)?;
    let (w, h) = (width / f, height / f);
    let prompt = c.prompts.first().map_or("", String::as_str);
    if attention && walked_sigmas(spec, sigmas)?.is_none() {
        return Err(PipelineError::bad("attention", "strength 0 returns the init image without running the network, so there is no attention to show"));
    }
    let tokens = if attention { Some(sd.prompt_tokens(prompt)?) } else { None };
    let (cond, uncond) = sd.encode_weighted_pair(prompt, c.negative_prompt.as_deref().unwrap_or(""), 1)?;
    let init = match &spec.init_image {
        Some(input) => {
            let (pixels, dims) = load_init_image(input, (width, height), 3, device)?;
            let unit = ((&pixels + 1.0)? / 2.0)?;
            let known = if spec.vae_tiling { sd.encode_images_tiled(&unit)? } else { sd.encode_images(&unit)? };
            let mask = spec.mask.as_ref().map(|m| RepaintMask::load(m, dims, c.mask_blur)).transpose()?;
            let keep = if inpainting_unet { None } else { mask.as_ref().map(|m| m.keep((w, h), channels, device)).transpose()? };
            let keep_pixels = mask.as_ref().map(|m| m.keep((width, height), 3, device)).transpose()?;
            let blend = mask.as_ref().map(|m| m.keep_weights((width, height), 3, device)).transpose()?.flatten();
            Some(Init { keep_pixels, blend, pixels, known, keep })
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
    let mut maps = Vec::new();
    let mut batch = |_: usize, n: usize, x: Tensor, walked: &Sigmas, inpaint: Option<(&Tensor, &Tensor)>, noise: &mut SeededNoise| -> Result<Tensor, PipelineError> {
        let recorder = tokens.as_ref().map(|_| CrossAttentionRecorder::new(n, height, width));
        let mut d = sd.denoiser_with(cond.clone(), guided.then(|| uncond.clone()), c.guidance_scale);
        if let Some((mask, latents)) = &extra {
            d = d.with_inpainting(mask, latents)?;
        }
        if let Some(r) = &recorder {
            d = d.with_recorder(r);
        }
        let x = TensorLatent(x);
        let z = match inpaint {
            Some((known, keep)) => inpaint_sample(spec, &mut d, known, keep, x, walked, noise, &mut *observer)?,
            None => sample(spec.sampler, &mut d, x, walked, &spec.options, noise, &mut *observer)?,
        };
        if let (Some(tokens), Some(recorder)) = (&tokens, &recorder) {
            let recorded = recorder.maps()?.ok_or_else(|| PipelineError::bad("attention", "the U-Net never ran, so there is no attention to show"))?;
            for i in 0..n {
                maps.push(TokenMaps::from_positions(tokens.clone(), &recorded.get(i)?)?);
            }
        }
        Ok(z.0)
    };
    let mut to_pixels = |z: Tensor| -> Result<Tensor, PipelineError> {
        let unit = if spec.vae_tiling { sd.decode_latents_tiled(&z)? } else { sd.decode_latents(&z)? };
        Ok(((unit * 2.0)? - 1.0)?.clamp(-1f32, 1f32)?)
    };
    let images = in_batches(spec, sigmas, &[channels, h, w], init.as_ref(), device, &mut batch, &mut to_pixels)?;
    Ok((images, maps))
}

/// Refuses a size and batch whose estimated activations
/// ([`SdPipeline::activation_estimate`], or [`SdPipeline::activation_estimate_tiled`] when the
/// VAE decodes in tiles) exceed the memory the system has available (Linux's `MemAvailable`;
/// the loaded weights are already outside it). On the CPU only: a GPU's memory is its own.
fn check_memory(sd: &SdPipeline, size: (usize, usize), batch: usize, guided: bool, tiled: bool, device: &Device) -> Result<(), PipelineError> {
    if !device.is_cpu() {
        return Ok(());
    }
    let Some(available) = mem_available() else { return Ok(()) };
    memory_fits(sd, size, batch, guided, tiled, available as f64)
}

/// [`check_memory`] against `available` bytes. The refusal names what would fit: one image at
/// a time, or decoding in tiles.
fn memory_fits(sd: &SdPipeline, (width, height): (usize, usize), batch: usize, guided: bool, tiled: bool, available: f64) -> Result<(), PipelineError> {
    let whole = |b| sd.activation_estimate(width, height, b, guided);
    let estimate = |b| if tiled { sd.activation_estimate_tiled(width, height, b, guided).unwrap_or_else(|| whole(b)) } else { whole(b) };
    let need = estimate(batch);
    if need.peak() <= available {
        return Ok(());
    }
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let one_fits = estimate(1).peak() <= available;
    let tiles_fit = !tiled && sd.activation_estimate_tiled(width, height, batch, guided).is_some_and(|t| t.peak() <= available);
    Err(PipelineError::bad(
        if one_fits { "batch_size" } else { "width" },
        format!(
            "{width}×{height} pixels with batch_size {batch} needs an estimated {:.1} GiB beyond the loaded weights \
             (U-Net attention {:.1} GiB + feature maps {:.1} GiB, VAE decode{} {:.1} GiB), but {:.1} GiB is available; \
             ask for a smaller size{}{}",
            gib(need.peak()),
            gib(need.unet_attention),
            gib(need.unet_features),
            if tiled { " in tiles" } else { "" },
            gib(need.vae_decode),
            gib(available),
            if one_fits { " or batch" } else { "" },
            if tiles_fit { ", or decode in tiles (the vae_tiling setting; --vae-tiling on the command line)" } else { "" },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_too_large_to_fit_whole_is_refused_with_tiles_offered_and_fits_in_tiles() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd/tiny-sd15");
        let sd = SdPipeline::load(&fixture, &Device::Cpu).unwrap();
        let size = (512, 512);
        let whole = sd.activation_estimate(size.0, size.1, 1, true);
        let tiled = sd.activation_estimate_tiled(size.0, size.1, 1, true).unwrap();
        assert_eq!((tiled.unet_attention, tiled.unet_features), (whole.unet_attention, whole.unet_features));
        assert!(tiled.vae_decode < whole.vae_decode / 100.0, "{tiled:?} against {whole:?}");
        // Memory between the two: whole refused (naming tiles), tiled accepted.
        let available = (tiled.peak() + whole.peak()) / 2.0;
        let e = memory_fits(&sd, size, 1, true, false, available).unwrap_err();
        let (setting, message) = e.bad_input().unwrap();
        assert_eq!(setting, "width");
        assert!(message.contains("decode in tiles (the vae_tiling setting"), "{message}");
        memory_fits(&sd, size, 1, true, true, available).unwrap();
        // Too little even for tiles: refused without offering them.
        let e = memory_fits(&sd, size, 1, true, true, tiled.peak() / 2.0).unwrap_err();
        let message = e.bad_input().unwrap().1;
        assert!(!message.contains("(the vae_tiling setting") && message.contains("VAE decode in tiles"), "{message}");
        // An image no larger than a tile decodes alike either way.
        let small = sd.activation_estimate_tiled(32, 32, 2, false).unwrap();
        assert_eq!(small, sd.activation_estimate(32, 32, 2, false));
    }
}
