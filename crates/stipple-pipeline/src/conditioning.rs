//! What steers a generation besides the seed: class or prompt and classifier-free guidance, and
//! the strength of img2img / inpainting. Stored in every recipe so `rerun` redoes it (the init
//! image and mask themselves are inputs of the request, [`crate::ImageInput`]).

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::transform::prepare_image_sized;
use crate::{defaults, ImageInput, PipelineError};

/// Longest prompt accepted, in characters (before tokenizing; a guard against pasting a whole
/// document — the token limit of the model is the real rule).
pub const MAX_PROMPT_CHARS: usize = 1000;

/// Most RePaint takes per step.
pub const MAX_RESAMPLE: usize = 100;

/// Guidance settings of a generation, resolved (every default applied).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditioning {
    /// Class to generate (a name from the model's class list).
    pub class: Option<String>,
    /// Class whose prediction replaces the unconditional one in the guidance.
    pub negative_class: Option<String>,
    /// Text prompts of a text-conditioned model: image i gets prompt `i mod len` (one prompt
    /// for all, or a grid whose columns are the prompts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Prompt whose prediction replaces the unconditional (empty-prompt) one in the guidance.
    pub negative_prompt: Option<String>,
    /// Classifier-free guidance scale s (1 = the conditional model, 0 = unconditional).
    pub guidance_scale: f64,
    /// Guidance rescale φ in [0, 1] (Lin et al. 2023; 0 = off).
    pub guidance_rescale: f64,
    /// Guide only for σ in [lo, hi].
    pub guidance_interval: Option<(f64, f64)>,
    /// Fraction of the σ schedule walked from the init image: 0 returns it, 1 starts from noise.
    pub strength: f64,
    /// RePaint resampling of inpainting: each step taken this many times (1 = off).
    pub resample: usize,
}

impl Default for Conditioning {
    fn default() -> Self {
        Self {
            class: None,
            negative_class: None,
            prompts: Vec::new(),
            negative_prompt: None,
            guidance_scale: defaults::GUIDANCE,
            guidance_rescale: defaults::GUIDANCE_RESCALE,
            guidance_interval: None,
            strength: 1.0,
            resample: defaults::RESAMPLE,
        }
    }
}

impl Conditioning {
    /// The conditioning of image `i` alone (its own prompt), for a one-image recipe.
    pub fn for_image(&self, i: usize) -> Conditioning {
        let mut c = self.clone();
        if !c.prompts.is_empty() {
            c.prompts = vec![c.prompts[i % c.prompts.len()].clone()];
        }
        c
    }
}

/// The init image as `(1, C, height, width)` in [−1, 1] (the training transform, covering
/// `size = (width, height)`), and its original `(width, height)`.
pub fn load_init_image(input: &ImageInput, size: (usize, usize), channels: usize, device: &Device) -> Result<(Tensor, (u32, u32)), PipelineError> {
    let img = input.decode("init_image")?;
    let data = prepare_image_sized(&img, size, channels == 1);
    Ok((Tensor::from_vec(data, (1, channels, size.1, size.0), device)?, (img.width(), img.height())))
}

/// The mask as `(1, C, height, width)` u8 with 1 = keep (black) and 0 = repaint (white), at
/// `size = (width, height)` (resized as the init image is); it must have the init image's size.
pub fn load_keep_mask(input: &ImageInput, image_dims: (u32, u32), size: (usize, usize), channels: usize, device: &Device) -> Result<Tensor, PipelineError> {
    let img = input.decode("mask")?;
    if (img.width(), img.height()) != image_dims {
        return Err(PipelineError::bad(
            "mask",
            format!(
                "the mask must have the same size as the init image, {}×{}; it is {}×{}",
                image_dims.0,
                image_dims.1,
                img.width(),
                img.height()
            ),
        ));
    }
    let grey = Tensor::from_vec(prepare_image_sized(&img, size, true), (1, 1, size.1, size.0), device)?;
    // Below mid-grey = keep.
    Ok(grey.lt(0f32)?.to_dtype(DType::U8)?.repeat((1, channels, 1, 1))?)
}
