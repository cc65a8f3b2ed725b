//! A generation request as the front ends give it (names as strings, unset settings as
//! `None`), and its validated form with every default applied from [`crate::defaults`].

use stipple_math::{FinalSigma, SigmaSchedule};
use stipple_sample::{NoiseKind, RngSource, SamplerKind, SamplerOptions};

use crate::conditioning::{MAX_PROMPT_CHARS, MAX_RESAMPLE};
use crate::{defaults, Conditioning, ImageInput, PipelineError, MAX_MASK_BLUR};

/// Most images one request may ask for.
pub const MAX_COUNT: usize = 4096;
/// Most steps one request may ask for.
pub const MAX_STEPS: usize = 10_000;
/// Widest or tallest image one request may ask for, in pixels (whether it fits in memory is
/// checked against the model before sampling).
pub const MAX_SIDE: usize = 16_384;

/// What a user asks for, before validation. Every setting is optional; the field names are the
/// setting names that [`PipelineError::BadInput`] reports. Images are bytes
/// ([`ImageInput`]): the request never names a file for the library to open.
#[derive(Clone, Debug, Default)]
pub struct GenerateRequest {
    /// Sampler name (`stipple_sample::SamplerKind` names) [default: [`defaults::SAMPLER`]].
    pub sampler: Option<String>,
    /// σ schedule name [default: the sampler's usual one].
    pub schedule: Option<String>,
    /// Number of sampling steps [default: [`defaults::STEPS`]].
    pub steps: Option<usize>,
    /// Where the last step ends: "zero" (the denoised image) or "sigma_min" (the smallest
    /// training σ, diffusers' `final_sigmas_type`) [default: zero].
    pub final_sigma: Option<String>,
    /// Noise of the stochastic samplers: "brownian" or "independent" [default: the sampler's,
    /// [`SamplerKind::default_noise`]].
    pub noise: Option<String>,
    /// Seed of the first image; image i uses `seed + i` [default: [`defaults::SEED`]].
    pub seed: Option<u64>,
    /// Random number source of the seeds: "nv" (the web UI's NV/GPU numbers) or "cpu"
    /// (PyTorch's CPU generator, as diffusers and the web UI's CPU source)
    /// [default: [`defaults::RNG`]].
    pub rng: Option<String>,
    /// The web UI's "eta noise seed delta": the samplers' noise of image i comes from seed
    /// `seed + i + delta` after its starting noise [default: [`defaults::ETA_NOISE_SEED_DELTA`]].
    pub eta_noise_seed_delta: Option<u64>,
    /// Number of images [default: [`defaults::COUNT`]].
    pub count: Option<usize>,
    /// Images denoised together (memory versus speed; results do not depend on it)
    /// [default: [`defaults::BATCH_SIZE`], at most `count`].
    pub batch_size: Option<usize>,
    /// Sampler options (η, s_noise, EDM churn, multistep order); unset ones take the
    /// sampler's defaults.
    pub options: SamplerOptions,
    /// Class to generate, for a class-conditional model.
    pub class: Option<String>,
    /// Class to steer away from.
    pub negative_class: Option<String>,
    /// Prompts of a text-conditioned model (image i gets prompt `i mod len`). Reported as
    /// the setting `prompt`.
    pub prompts: Vec<String>,
    /// Prompt to steer away from.
    pub negative_prompt: Option<String>,
    /// Classifier-free guidance scale [default: [`defaults::guidance_scale`]].
    pub guidance_scale: Option<f64>,
    /// Guidance rescale φ [default: [`defaults::GUIDANCE_RESCALE`]].
    pub guidance_rescale: Option<f64>,
    /// Guide only for σ in [lo, hi].
    pub guidance_interval: Option<(f64, f64)>,
    /// Image to start from (img2img / inpainting).
    pub init_image: Option<ImageInput>,
    /// Fraction of the schedule walked from the init image [default: [`defaults::strength`]].
    pub strength: Option<f64>,
    /// Inpainting mask, the size of the init image: white = repaint, black = keep.
    pub mask: Option<ImageInput>,
    /// RePaint resampling of inpainting [default: [`defaults::RESAMPLE`], off].
    pub resample: Option<usize>,
    /// Blur of the inpainting mask, σ in pixels of the mask, as the web UI's "mask blur"
    /// (needs a mask) [default: [`defaults::MASK_BLUR`], off].
    pub mask_blur: Option<f64>,
    /// Image width in pixels [default: the model's size]. A Stipple model makes images of its
    /// own size only; a Stable Diffusion checkpoint any multiple of 8.
    pub width: Option<usize>,
    /// Image height in pixels [default: the width if given, else the model's size].
    pub height: Option<usize>,
    /// Decode a Stable Diffusion checkpoint's latents in overlapping tiles, for sizes whose
    /// whole decode does not fit in memory [default: [`defaults::VAE_TILING`]].
    pub vae_tiling: Option<bool>,
}

/// A request whose names are resolved, whose numbers are in range and whose defaults are
/// applied.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    pub sampler: SamplerKind,
    pub schedule: SigmaSchedule,
    pub steps: usize,
    pub final_sigma: FinalSigma,
    pub noise: NoiseKind,
    pub seed: u64,
    pub rng: RngSource,
    pub eta_noise_seed_delta: u64,
    pub count: usize,
    pub batch_size: usize,
    pub options: SamplerOptions,
    pub conditioning: Conditioning,
    pub init_image: Option<ImageInput>,
    pub mask: Option<ImageInput>,
    /// Width and height asked for (`None`: the model's own size).
    pub width: Option<usize>,
    pub height: Option<usize>,
    /// Decode latents in tiles (Stable Diffusion checkpoints).
    pub vae_tiling: bool,
}

impl GenerateSpec {
    /// Index of the first σ walked of a `steps`-step schedule: with an init image, the first
    /// `(1 − strength)` part is skipped, as diffusers' img2img does
    /// (`init_timestep = int(steps·strength)`).
    pub fn start_index(&self, steps: usize) -> usize {
        if self.init_image.is_none() {
            return 0;
        }
        let init = ((steps as f64 * self.conditioning.strength) as usize).min(steps);
        steps - init
    }
}

fn parse<T: std::str::FromStr>(setting: &'static str, name: &str) -> Result<T, PipelineError>
where
    T::Err: std::fmt::Display,
{
    name.parse().map_err(|e: T::Err| PipelineError::bad(setting, e.to_string()))
}

/// `value` must be finite and in `[lo, hi]`.
fn in_range(setting: &'static str, value: f64, lo: f64, hi: f64, meaning: &str) -> Result<f64, PipelineError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(PipelineError::bad(setting, format!("must lie in [{lo}, {hi}]{meaning}, got {value}")))
    }
}

impl GenerateRequest {
    /// Resolves names, applies the defaults and checks ranges; every error names its setting
    /// and says what is accepted.
    pub fn validate(&self) -> Result<GenerateSpec, PipelineError> {
        self.check(false)
    }

    /// [`GenerateRequest::validate`] for a generation whose known values come from elsewhere
    /// than an image mask (a forecast's observed history): RePaint resampling needs no mask.
    pub fn validate_with_known(&self) -> Result<GenerateSpec, PipelineError> {
        self.check(true)
    }

    fn check(&self, known_values: bool) -> Result<GenerateSpec, PipelineError> {
        let sampler: SamplerKind = parse("sampler", self.sampler.as_deref().unwrap_or(defaults::SAMPLER))?;
        let schedule = match &self.schedule {
            Some(s) => parse("schedule", s)?,
            None => sampler.default_schedule(),
        };
        let final_sigma = match &self.final_sigma {
            Some(s) => parse("final_sigma", s)?,
            None => FinalSigma::Zero,
        };
        let noise = match &self.noise {
            Some(s) => parse("noise", s)?,
            None => sampler.default_noise(),
        };
        let rng = parse("rng", self.rng.as_deref().unwrap_or(defaults::RNG))?;
        let steps = self.steps.unwrap_or(defaults::STEPS);
        if steps == 0 || steps > MAX_STEPS {
            return Err(PipelineError::bad("steps", format!("must be between 1 and {MAX_STEPS}, got {steps}")));
        }
        let count = self.count.unwrap_or(defaults::COUNT);
        if count == 0 || count > MAX_COUNT {
            return Err(PipelineError::bad("count", format!("must be between 1 and {MAX_COUNT}, got {count}")));
        }
        let batch_size = self.batch_size.unwrap_or(defaults::BATCH_SIZE);
        if batch_size == 0 {
            return Err(PipelineError::bad("batch_size", "must be at least 1"));
        }
        let seed = self.seed.unwrap_or(defaults::SEED);
        seed.checked_add(count as u64 - 1)
            .ok_or_else(|| PipelineError::bad("seed", format!("seed {seed} + count {count} overflows a 64-bit seed")))?;
        validate_options(&self.options)?;
        for (setting, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v.filter(|v| !(1..=MAX_SIDE).contains(v)) {
                return Err(PipelineError::bad(setting, format!("must be between 1 and {MAX_SIDE} pixels, got {v}")));
            }
        }
        let conditioning = self.conditioning(known_values)?;
        Ok(GenerateSpec {
            sampler,
            schedule,
            steps,
            final_sigma,
            noise,
            seed,
            rng,
            eta_noise_seed_delta: self.eta_noise_seed_delta.unwrap_or(defaults::ETA_NOISE_SEED_DELTA),
            count,
            batch_size: batch_size.min(count),
            options: self.options,
            conditioning,
            init_image: self.init_image.clone(),
            mask: self.mask.clone(),
            width: self.width,
            height: self.height.or(self.width),
            vae_tiling: self.vae_tiling.unwrap_or(defaults::VAE_TILING),
        })
    }

    /// The guidance and image settings, checked and with their defaults; `known_values`: see
    /// [`GenerateRequest::validate_with_known`].
    fn conditioning(&self, known_values: bool) -> Result<Conditioning, PipelineError> {
        let has_prompt = !self.prompts.is_empty();
        let has_init = self.init_image.is_some();
        let guidance_scale = in_range("guidance_scale", self.guidance_scale.unwrap_or(defaults::guidance_scale(has_prompt)), 0.0, 100.0, "")?;
        let guidance_rescale = in_range("guidance_rescale", self.guidance_rescale.unwrap_or(defaults::GUIDANCE_RESCALE), 0.0, 1.0, "")?;
        if let Some((lo, hi)) = self.guidance_interval {
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                return Err(PipelineError::bad("guidance_interval", format!("must be two σ values LO,HI with 0 ≤ LO ≤ HI, got {lo},{hi}")));
            }
        }
        let strength = self.strength.unwrap_or(defaults::strength(has_init, self.mask.is_some()));
        let strength = in_range("strength", strength, 0.0, 1.0, " (0 returns the init image, 1 starts from noise)")?;
        if !has_init && strength != 1.0 {
            return Err(PipelineError::bad("strength", format!("strength {strength} needs an init image to start from")));
        }
        if self.mask.is_some() && !has_init {
            return Err(PipelineError::bad("mask", "a mask needs an init image: the mask says which of its pixels to repaint"));
        }
        let resample = self.resample.unwrap_or(defaults::RESAMPLE);
        if !(1..=MAX_RESAMPLE).contains(&resample) {
            return Err(PipelineError::bad("resample", format!("must be between 1 (off) and {MAX_RESAMPLE}, got {resample}")));
        }
        if resample > 1 && self.mask.is_none() && !known_values {
            return Err(PipelineError::bad("resample", "resampling (RePaint) is for inpainting: it needs a mask and an init image"));
        }
        let mask_blur = in_range("mask_blur", self.mask_blur.unwrap_or(defaults::MASK_BLUR), 0.0, MAX_MASK_BLUR, " pixels")?;
        if mask_blur > 0.0 && self.mask.is_none() {
            return Err(PipelineError::bad("mask_blur", "blurs the inpainting mask: it needs a mask"));
        }
        let prompts = self.prompts.iter().map(|p| ("prompt", p));
        for (setting, p) in prompts.chain(self.negative_prompt.iter().map(|p| ("negative_prompt", p))) {
            if p.trim().is_empty() {
                return Err(PipelineError::bad(setting, "is empty; leave it out to sample without one"));
            }
            let n = p.chars().count();
            if n > MAX_PROMPT_CHARS {
                return Err(PipelineError::bad(setting, format!("may have at most {MAX_PROMPT_CHARS} characters, this one has {n}")));
            }
        }
        if self.class.is_some() && has_prompt {
            return Err(PipelineError::bad("class", "give a class or a prompt, not both"));
        }
        if self.class.is_none() && self.negative_class.is_some() {
            return Err(PipelineError::bad("negative_class", "a negative class needs a class to guide towards"));
        }
        if self.class.is_none() && !has_prompt && guidance_scale != 1.0 {
            return Err(PipelineError::bad("guidance_scale", "guidance needs a class or a prompt to guide towards"));
        }
        Ok(Conditioning {
            class: self.class.clone(),
            negative_class: self.negative_class.clone(),
            prompts: self.prompts.clone(),
            negative_prompt: self.negative_prompt.clone(),
            guidance_scale,
            guidance_rescale,
            guidance_interval: self.guidance_interval,
            strength,
            resample,
            mask_blur,
        })
    }
}

/// Range checks of the sampler options; each message names the option and its range.
fn validate_options(o: &SamplerOptions) -> Result<(), PipelineError> {
    let check = |name: &'static str, v: Option<f64>, lo: f64, hi: f64| match v {
        Some(v) => in_range(name, v, lo, hi, "").map(|_| ()),
        None => Ok(()),
    };
    check("eta", o.eta, 0.0, 1.0)?;
    check("s_noise", o.s_noise, 0.0, 10.0)?;
    check("s_churn", o.s_churn, 0.0, 1000.0)?;
    check("s_tmin", o.s_tmin, 0.0, f64::MAX)?;
    check("s_tmax", o.s_tmax, 0.0, f64::MAX)?;
    check("r", o.r, f64::MIN_POSITIVE, 1.0)?;
    o.x0_clamp.validate().map_err(|e| match e {
        stipple_sample::SampleError::InvalidOption { name, value, expected } => PipelineError::bad(name, format!("must be {expected}, got {value}")),
        other => other.into(),
    })?;
    if let Some(order) = o.order {
        if !(1..=4).contains(&order) {
            return Err(PipelineError::bad("order", format!("must be 1, 2, 3 or 4, got {order}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting_of(r: &GenerateRequest) -> &'static str {
        r.validate().unwrap_err().bad_input().expect("bad input").0
    }

    #[test]
    fn unknown_sampler_lists_the_accepted_names() {
        let r = GenerateRequest { sampler: Some("eular".into()), ..Default::default() };
        let msg = r.validate().unwrap_err().to_string();
        assert!(msg.starts_with("sampler: "), "{msg}");
        for name in ["ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m"] {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn unknown_schedule_lists_the_accepted_names() {
        let r = GenerateRequest { schedule: Some("karas".into()), ..Default::default() };
        let msg = r.validate().unwrap_err().to_string();
        for name in ["karras", "exponential", "leading", "trailing", "linspace"] {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn defaults_come_from_the_table() {
        let spec = GenerateRequest::default().validate().unwrap();
        assert_eq!(spec.sampler, defaults::SAMPLER.parse().unwrap());
        assert_eq!((spec.steps, spec.count, spec.batch_size, spec.seed), (defaults::STEPS, defaults::COUNT, defaults::BATCH_SIZE, defaults::SEED));
        assert_eq!(spec.conditioning.guidance_scale, defaults::GUIDANCE);
        let prompted = GenerateRequest { prompts: vec!["red apple".into()], ..Default::default() }.validate().unwrap();
        assert_eq!(prompted.conditioning.guidance_scale, defaults::PROMPT_GUIDANCE);
        let img = ImageInput::from_bytes(vec![1, 2, 3]);
        let img2img = GenerateRequest { init_image: Some(img.clone()), ..Default::default() }.validate().unwrap();
        assert_eq!(img2img.conditioning.strength, defaults::IMG2IMG_STRENGTH);
        let inpaint = GenerateRequest { init_image: Some(img.clone()), mask: Some(img), ..Default::default() }.validate().unwrap();
        assert_eq!(inpaint.conditioning.strength, defaults::INPAINT_STRENGTH);
        let few = GenerateRequest { count: Some(3), ..Default::default() }.validate().unwrap();
        assert_eq!(few.batch_size, 3);
    }

    #[test]
    fn final_sigma_and_noise_default_and_parse() {
        let spec = GenerateRequest::default().validate().unwrap();
        assert_eq!((spec.final_sigma, spec.noise), (FinalSigma::Zero, NoiseKind::Independent));
        let sde = GenerateRequest { sampler: Some("dpmpp_2m_sde".into()), ..Default::default() }.validate().unwrap();
        assert_eq!(sde.noise, NoiseKind::Brownian, "k-diffusion's default for the SDE samplers");
        let r = GenerateRequest {
            sampler: Some("dpmpp_2m_sde".into()),
            final_sigma: Some("sigma_min".into()),
            noise: Some("independent".into()),
            ..Default::default()
        };
        let spec = r.validate().unwrap();
        assert_eq!((spec.final_sigma, spec.noise), (FinalSigma::SigmaMin, NoiseKind::Independent));
        for (bad, setting, names) in [
            (GenerateRequest { final_sigma: Some("min".into()), ..Default::default() }, "final_sigma", ["zero", "sigma_min"]),
            (GenerateRequest { noise: Some("brown".into()), ..Default::default() }, "noise", ["brownian", "independent"]),
        ] {
            let e = bad.validate().unwrap_err();
            let (s, msg) = e.bad_input().unwrap();
            assert_eq!(s, setting);
            assert!(names.iter().all(|n| msg.contains(n)), "{msg}");
        }
    }

    #[test]
    fn each_range_error_names_its_setting() {
        let img = || Some(ImageInput::from_bytes(vec![0]));
        let cases: Vec<(GenerateRequest, &str)> = vec![
            (GenerateRequest { steps: Some(0), ..Default::default() }, "steps"),
            (GenerateRequest { count: Some(0), ..Default::default() }, "count"),
            (GenerateRequest { batch_size: Some(0), ..Default::default() }, "batch_size"),
            (GenerateRequest { options: SamplerOptions { eta: Some(f64::NAN), ..Default::default() }, ..Default::default() }, "eta"),
            (GenerateRequest { options: SamplerOptions { order: Some(7), ..Default::default() }, ..Default::default() }, "order"),
            (GenerateRequest { seed: Some(u64::MAX), count: Some(2), ..Default::default() }, "seed"),
            (GenerateRequest { prompts: vec!["a".into()], guidance_scale: Some(101.0), ..Default::default() }, "guidance_scale"),
            (GenerateRequest { guidance_scale: Some(3.0), ..Default::default() }, "guidance_scale"),
            (GenerateRequest { strength: Some(0.5), ..Default::default() }, "strength"),
            (GenerateRequest { init_image: img(), strength: Some(1.5), ..Default::default() }, "strength"),
            (GenerateRequest { mask: img(), ..Default::default() }, "mask"),
            (GenerateRequest { init_image: img(), resample: Some(3), ..Default::default() }, "resample"),
            (GenerateRequest { init_image: img(), mask_blur: Some(4.0), ..Default::default() }, "mask_blur"),
            (GenerateRequest { init_image: img(), mask: img(), mask_blur: Some(-1.0), ..Default::default() }, "mask_blur"),
            (GenerateRequest { init_image: img(), mask: img(), mask_blur: Some(f64::NAN), ..Default::default() }, "mask_blur"),
            (GenerateRequest { init_image: img(), mask: img(), mask_blur: Some(MAX_MASK_BLUR + 1.0), ..Default::default() }, "mask_blur"),
            (GenerateRequest { prompts: vec![" ".into()], ..Default::default() }, "prompt"),
            (GenerateRequest { negative_prompt: Some("x".repeat(MAX_PROMPT_CHARS + 1)), ..Default::default() }, "negative_prompt"),
            (GenerateRequest { class: Some("a".into()), prompts: vec!["b".into()], ..Default::default() }, "class"),
            (GenerateRequest { negative_class: Some("a".into()), ..Default::default() }, "negative_class"),
            (GenerateRequest { guidance_interval: Some((2.0, 1.0)), ..Default::default() }, "guidance_interval"),
        ];
        for (r, setting) in cases {
            assert_eq!(setting_of(&r), setting, "{r:?}");
        }
        assert!(GenerateRequest::default().validate().is_ok());
    }
}
