//! The one table of generation defaults. A setting a request leaves unset takes its value
//! from here when the request is validated ([`crate::GenerateRequest::validate`]); the CLI,
//! the trainer's sample grids and the server all resolve through it, so none of them keeps a
//! default of its own.

/// Sampler: DPM++ 2M (Lu et al. 2022), second order with one model call per step; the
/// web UIs' usual choice.
pub const SAMPLER: &str = "dpmpp_2m";
/// Sampling steps: DPM++ 2M over the Karras schedule is converged to the eye by 20.
pub const STEPS: usize = 20;
/// Seed of the first image.
pub const SEED: u64 = 0;
/// Random number source of the seeds: the web UI's "NV" Philox numbers, the same on every
/// machine and equal to its default "GPU" source on NVIDIA cards.
pub const RNG: &str = "nv";
/// The web UI's "eta noise seed delta" (ENSD): 0, the samplers' noise continues each image's
/// own generator.
pub const ETA_NOISE_SEED_DELTA: u64 = 0;
/// Images per request (a 4×4 grid).
pub const COUNT: usize = 16;
/// Images denoised together (memory against speed; the images do not depend on it).
pub const BATCH_SIZE: usize = 16;
/// Classifier-free guidance with a prompt: the shipped emoji model follows its prompts
/// clearly from about 3 (seen on its grids at scales 1, 3 and 5), so 4.
pub const PROMPT_GUIDANCE: f64 = 4.0;
/// Classifier-free guidance otherwise: 1 is the conditional model itself (no guidance).
pub const GUIDANCE: f64 = 1.0;
/// Guidance rescale φ (Lin et al. 2023): off.
pub const GUIDANCE_RESCALE: f64 = 0.0;
/// img2img strength: walk the last 80% of the schedule from the init image (diffusers'
/// `StableDiffusionImg2ImgPipeline` default).
pub const IMG2IMG_STRENGTH: f64 = 0.8;
/// Inpainting strength: the masked part starts from pure noise (diffusers' inpainting
/// pipeline default, 1.0), while the kept part is imposed at every step.
pub const INPAINT_STRENGTH: f64 = 1.0;
/// Blur of the inpainting mask, σ in pixels: off, a hard edge (diffusers' inpainting
/// pipeline's default; the web UI's is 4, which a request asks for with `mask_blur`).
pub const MASK_BLUR: f64 = 0.0;
/// RePaint resampling (Lugmayr et al. 2022): each step taken once, i.e. off.
pub const RESAMPLE: usize = 1;
/// Sample paths of a forecast: enough for the 5% and 95% quantiles to rest on five paths
/// each, and for the ensemble CRPS to be within a few percent of its limit.
pub const FORECAST_SAMPLES: usize = 100;

/// Whether a Stable Diffusion checkpoint's VAE decodes in tiles: off (a whole decode is exact;
/// the memory check says when tiles are needed).
pub const VAE_TILING: bool = false;

/// Guidance scale of a request that sets none: [`PROMPT_GUIDANCE`] when it has a prompt, else
/// [`GUIDANCE`].
pub fn guidance_scale(has_prompt: bool) -> f64 {
    if has_prompt {
        PROMPT_GUIDANCE
    } else {
        GUIDANCE
    }
}

/// Strength of a request that sets none: [`INPAINT_STRENGTH`] with a mask,
/// [`IMG2IMG_STRENGTH`] with an init image alone, 1 (start from noise) without an image.
pub fn strength(has_init_image: bool, has_mask: bool) -> f64 {
    match (has_init_image, has_mask) {
        (_, true) => INPAINT_STRENGTH,
        (true, false) => IMG2IMG_STRENGTH,
        (false, false) => 1.0,
    }
}
