//! What steers a generation besides the seed: class or prompt and classifier-free guidance, an init
//! image (img2img) and a mask (inpainting). Stored in every recipe so `rerun` redoes it.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{prepare_image, PipelineError};

/// Longest prompt accepted, in characters (before tokenizing; a guard against pasting a whole
/// document — the token limit of the model is the real rule).
pub const MAX_PROMPT_CHARS: usize = 1000;

/// Most RePaint takes per step.
pub const MAX_RESAMPLE: usize = 100;

/// Guidance and image inputs of a request (all optional; the default is plain sampling).
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
    /// Image to start from (img2img / inpainting).
    pub init_image: Option<PathBuf>,
    /// Fraction of the σ schedule walked from the init image: 0 returns it, 1 starts from noise.
    pub strength: f64,
    /// Inpainting mask, the size of the init image: white = repaint, black = keep.
    pub mask: Option<PathBuf>,
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
            guidance_scale: 1.0,
            guidance_rescale: 0.0,
            guidance_interval: None,
            init_image: None,
            strength: 1.0,
            mask: None,
            resample: 1,
        }
    }
}

impl Conditioning {
    /// Range checks; each message names the setting and its range.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: String| Err(PipelineError::Invalid(m));
        let s = self.guidance_scale;
        if !(s.is_finite() && (0.0..=100.0).contains(&s)) {
            return bad(format!("guidance scale must lie in [0, 100], got {s}"));
        }
        if !(0.0..=1.0).contains(&self.guidance_rescale) {
            return bad(format!("guidance rescale must lie in [0, 1], got {}", self.guidance_rescale));
        }
        if let Some((lo, hi)) = self.guidance_interval {
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                return bad(format!("guidance interval must be LO,HI with 0 ≤ LO ≤ HI (σ values), got {lo},{hi}"));
            }
        }
        if !(0.0..=1.0).contains(&self.strength) {
            return bad(format!("strength must lie in [0, 1] (0 returns the init image, 1 starts from noise), got {}", self.strength));
        }
        if self.init_image.is_none() && self.strength != 1.0 {
            return bad(format!("strength {} needs an init image (--init-image) to start from", self.strength));
        }
        if !(1..=MAX_RESAMPLE).contains(&self.resample) {
            return bad(format!("resample must be between 1 (off) and {MAX_RESAMPLE}, got {}", self.resample));
        }
        if self.resample > 1 && self.mask.is_none() {
            return bad("resampling (RePaint) is for inpainting: it needs a mask (--mask) and an init image".into());
        }
        if self.mask.is_some() && self.init_image.is_none() {
            return bad("a mask needs an init image (--init-image): the mask says which of its pixels to repaint".into());
        }
        let prompts = self.prompts.iter().map(|p| ("prompt", p));
        for (what, p) in prompts.chain(self.negative_prompt.iter().map(|p| ("negative prompt", p))) {
            {
                if p.trim().is_empty() {
                    return bad(format!("the {what} is empty; leave it out to sample without one"));
                }
                if p.chars().count() > MAX_PROMPT_CHARS {
                    return bad(format!("a {what} may have at most {MAX_PROMPT_CHARS} characters, this one has {}", p.chars().count()));
                }
            }
        }
        if self.class.is_some() && !self.prompts.is_empty() {
            return bad("give a class or a prompt, not both".into());
        }
        if self.class.is_none() && self.negative_class.is_some() {
            return bad("a negative class needs a class (--class NAME) to guide towards".into());
        }
        if self.class.is_none() && self.prompts.is_empty() && self.guidance_scale != 1.0 {
            return bad("guidance needs a class (--class NAME) or a prompt (--prompt TEXT) to guide towards".into());
        }
        Ok(())
    }

    /// The conditioning of image `i` alone (its own prompt), for a one-image recipe.
    pub fn for_image(&self, i: usize) -> Conditioning {
        let mut c = self.clone();
        if !c.prompts.is_empty() {
            c.prompts = vec![c.prompts[i % c.prompts.len()].clone()];
        }
        c
    }

    /// Index of the first σ walked: the first `(1 − strength)` part of the `steps`-step
    /// schedule is skipped, as diffusers' img2img does (`init_timestep = int(steps·strength)`).
    pub fn start_index(&self, steps: usize) -> usize {
        if self.init_image.is_none() {
            return 0;
        }
        let init = ((steps as f64 * self.strength) as usize).min(steps);
        steps - init
    }
}

fn open_image(path: &Path, what: &str) -> Result<image::DynamicImage, PipelineError> {
    image::ImageReader::open(path)
        .map_err(|e| e.to_string())
        .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
        .and_then(|r| r.decode().map_err(|e| e.to_string()))
        .map_err(|e| PipelineError::Invalid(format!("cannot read {what} {}: {e}", path.display())))
}

/// The init image as `(1, C, size, size)` in [−1, 1] (the training transform), and its
/// original `(width, height)`.
pub fn load_init_image(path: &Path, size: usize, channels: usize, device: &Device) -> Result<(Tensor, (u32, u32)), PipelineError> {
    let img = open_image(path, "init image")?;
    let data = prepare_image(&img, size, channels == 1);
    Ok((Tensor::from_vec(data, (1, channels, size, size), device)?, (img.width(), img.height())))
}

/// The mask as `(1, C, size, size)` u8 with 1 = keep (black) and 0 = repaint (white); it
/// must have the init image's size.
pub fn load_keep_mask(path: &Path, image_dims: (u32, u32), size: usize, channels: usize, device: &Device) -> Result<Tensor, PipelineError> {
    let img = open_image(path, "mask")?;
    if (img.width(), img.height()) != image_dims {
        return Err(PipelineError::Invalid(format!(
            "mask {} is {}×{} but the init image is {}×{}; they must have the same size",
            path.display(),
            img.width(),
            img.height(),
            image_dims.0,
            image_dims.1
        )));
    }
    let grey = Tensor::from_vec(prepare_image(&img, size, true), (1, 1, size, size), device)?;
    // Below mid-grey = keep.
    Ok(grey.lt(0f32)?.to_dtype(DType::U8)?.repeat((1, channels, 1, 1))?)
}
