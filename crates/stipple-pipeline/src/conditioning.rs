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
    /// Blur of the inpainting mask, σ in pixels of the mask (0 = a hard edge; see
    /// [`crate::blur_mask`]). Left out of a recipe when 0, so recipes from before it read as 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub mask_blur: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
            mask_blur: defaults::MASK_BLUR,
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

/// An inpainting mask, decoded, checked against the init image's size and (with a blur) made
/// binary and blurred once, for the keep masks and blend weights at every size a generation
/// needs.
pub struct RepaintMask {
    /// White = repaint; blurred when `blur` > 0.
    image: image::DynamicImage,
    blur: f64,
}

impl RepaintMask {
    /// The mask `input`, which must have the init image's size `image_dims`; with `blur` > 0,
    /// made binary (white from mid-grey up) and blurred by σ = `blur` pixels
    /// ([`crate::blur_mask`]), as the web UI does.
    pub fn load(input: &ImageInput, image_dims: (u32, u32), blur: f64) -> Result<Self, PipelineError> {
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
        if blur <= 0.0 {
            return Ok(Self { image: img, blur });
        }
        let mut binary = img.to_luma8();
        binary.pixels_mut().for_each(|p| p.0[0] = if p.0[0] >= 128 { 255 } else { 0 });
        Ok(Self { image: image::DynamicImage::ImageLuma8(crate::blur_mask(&binary, blur)), blur })
    }

    /// `(1, 1, height, width)` in [−1, 1] at `size = (width, height)`, resized as the init image
    /// is (−1 = black).
    fn grey(&self, size: (usize, usize), device: &Device) -> Result<Tensor, PipelineError> {
        Ok(Tensor::from_vec(prepare_image_sized(&self.image, size, true), (1, 1, size.1, size.0), device)?)
    }

    /// `(1, C, height, width)` u8 with 1 = keep (black) and 0 = repaint (white) at `size`: kept
    /// below mid-grey (with a blur, where the web UI's rounding keeps its latents).
    pub fn keep(&self, size: (usize, usize), channels: usize, device: &Device) -> Result<Tensor, PipelineError> {
        Ok(self.grey(size, device)?.lt(0f32)?.to_dtype(DType::U8)?.repeat((1, channels, 1, 1))?)
    }

    /// How much of the original picture is laid back over the generated one, `(1, C, height,
    /// width)` f32 in [0, 1], for a blurred mask (`None` for a hard one, which [`Self::keep`]
    /// alone describes): `1 − clip(2·m, 0, 1)` with `m` the blurred mask resized to `size`
    /// (white = 1), as the web UI's overlay does. Inside the mask and on its edge (m ≥ ½) the
    /// generated picture alone; outside, the original fading in over the blur's width.
    pub fn keep_weights(&self, size: (usize, usize), channels: usize, device: &Device) -> Result<Option<Tensor>, PipelineError> {
        if self.blur <= 0.0 {
            return Ok(None);
        }
        // grey = 2m − 1, so 2m = grey + 1.
        let weights = (1.0 - (self.grey(size, device)? + 1.0)?.clamp(0f32, 1f32)?)?;
        Ok(Some(weights.repeat((1, channels, 1, 1))?))
    }
}
