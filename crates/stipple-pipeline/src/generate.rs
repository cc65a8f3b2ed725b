//! Spec → images: seeded starting noise (or a noised init image) and the sampler over given
//! σ's, with class or prompt guidance and inpainting as denoiser wrappers, in batches.

use candle_core::{Device, Tensor};
use stipple_math::DiscreteSchedule;
use stipple_nn::{
    guided_denoiser, observation_channels, CrossAttentionRecorder, DiffusionConfig, GuidanceSettings, Inpaint, LoadedModel, TensorLatent, UNetCond,
    OBSERVATION_CHANNELS,
};
use stipple_sample::{sample, sample_resampled, ClampedX0, Denoiser, Observer, Sigmas};

use crate::{load_init_image, GenerateSpec, PipelineError, RepaintMask, SeededNoise, TokenMaps};

impl GenerateSpec {
    /// The σ's this spec walks for a model trained with `diffusion` (the full schedule, ended
    /// at 0 or at the training σ_min as `final_sigma` says; an init image's strength skips
    /// its first part inside [`generate`]).
    pub fn sigmas(&self, diffusion: &DiffusionConfig) -> Result<Sigmas, PipelineError> {
        self.sigmas_for(&diffusion.schedule())
    }

    /// [`GenerateSpec::sigmas`] over a model's discrete training schedule.
    pub fn sigmas_for(&self, schedule: &DiscreteSchedule) -> Result<Sigmas, PipelineError> {
        self.schedule
            .build(schedule, self.steps, 0)
            .and_then(|s| self.final_sigma.apply(s, schedule.sigma_min()))
            .map_err(|e| PipelineError::bad("schedule", e.to_string()))
    }

    /// This spec with its class and negative class as `model` names them (a class given by
    /// its index becomes its name), so that its recipe records names; unknown classes are
    /// bad input in `class`. A model without classes leaves the spec as it is (generating
    /// refuses a class then).
    pub fn with_class_names(mut self, model: &LoadedModel) -> Result<Self, PipelineError> {
        if model.config.classes.is_empty() {
            return Ok(self);
        }
        for class in [&mut self.conditioning.class, &mut self.conditioning.negative_class].into_iter().flatten() {
            *class = model.config.classes[class_index(model, class)? as usize].clone();
        }
        Ok(self)
    }
}

/// The network inputs of the conditional and the unconditional (or negative) branches:
/// class labels for a class-conditional model; for a text-conditioned one the text
/// encoder's states of each prompt (one row per prompt; image i takes row `i mod rows`) and
/// of the negative prompt (or the empty prompt); `None` for an unconditional model. Unknown
/// classes, classes or prompts asked of a model without them, and bad prompts are errors
/// that say what the model takes.
fn branch_inputs(model: &LoadedModel, spec: &GenerateSpec, device: &Device) -> Result<Option<(UNetCond, UNetCond)>, PipelineError> {
    let c = &spec.conditioning;
    if let Some(text) = &model.text {
        if let Some(name) = c.class.as_ref().or(c.negative_class.as_ref()) {
            return Err(PipelineError::bad(
                "class",
                format!("this model is conditioned on text prompts, not classes; give a prompt instead of the class {name:?}"),
            ));
        }
        let states = |p: &[&str]| -> Result<UNetCond, PipelineError> {
            let states = text.encode(p, device).map_err(|e| match e {
                stipple_nn::NnError::Text(msg) => PipelineError::bad("prompt", msg),
                other => other.into(),
            })?;
            Ok(UNetCond { class_labels: None, encoder_hidden_states: Some(states), observed: None })
        };
        let prompts: Vec<&str> = if c.prompts.is_empty() { vec![""] } else { c.prompts.iter().map(String::as_str).collect() };
        let uncond = states(&[c.negative_prompt.as_deref().unwrap_or("")])?;
        return Ok(Some((states(&prompts)?, uncond)));
    }
    if !c.prompts.is_empty() || c.negative_prompt.is_some() {
        let kind = if model.config.classes.is_empty() { "it is unconditional" } else { "it is class-conditional: give a class" };
        return Err(PipelineError::bad(
            "prompt",
            format!("this model was not trained with text, so it cannot take a prompt ({kind}); train a prompt model with captions"),
        ));
    }
    let Some(null) = model.config.null_class() else {
        if let Some(name) = c.class.as_ref().or(c.negative_class.as_ref()) {
            class_index(model, name)?; // the "not class-conditional" error
        }
        return Ok(None);
    };
    let index = |name: &Option<String>| -> Result<u32, PipelineError> {
        Ok(name.as_deref().map(|n| class_index(model, n)).transpose()?.unwrap_or(null))
    };
    let label = |l: u32| -> Result<UNetCond, PipelineError> {
        Ok(UNetCond { class_labels: Some(Tensor::full(l, 1, device)?), encoder_hidden_states: None, observed: None })
    };
    Ok(Some((label(index(&c.class)?)?, label(index(&c.negative_class)?)?)))
}

/// The label of class `name`, or bad input in `class` saying which classes the model knows.
fn class_index(model: &LoadedModel, name: &str) -> Result<u32, PipelineError> {
    model.config.class_index(name).map_err(|e| match e {
        stipple_nn::NnError::Config(msg) => PipelineError::bad("class", msg),
        other => other.into(),
    })
}

/// An init image (img2img, inpainting) in the output's pixels and in the space the sampler
/// walks (the pixels themselves for a Stipple model, the VAE's latents for a latent-diffusion
/// model).
pub(crate) struct Init {
    /// `(1, C, H, W)` in [−1, 1] at the output size: what strength 0 returns, and what the kept
    /// pixels of an inpainting become.
    pub pixels: Tensor,
    /// `(1, C, H, W)` u8, 1 = keep, at the output size (inpainting only).
    pub keep_pixels: Option<Tensor>,
    /// `(1, C, H, W)` f32 in [0, 1]: how much of `pixels` the output keeps, for a blurred mask
    /// (then in place of `keep_pixels` for the result; `None` with a hard mask).
    pub blend: Option<Tensor>,
    /// `(1, c, h, w)`: the init image in the sampler's space.
    pub known: Tensor,
    /// `(1, c, h, w)` u8, 1 = keep, in the sampler's space (inpainting only).
    pub keep: Option<Tensor>,
}

/// The σ's walked from an init image: only the last part of `sigmas`, as
/// [`GenerateSpec::start_index`] says; `None` when strength 0 walks nothing (the init image
/// itself is the result, with no model call).
pub(crate) fn walked_sigmas(spec: &GenerateSpec, sigmas: &Sigmas) -> Result<Option<Sigmas>, PipelineError> {
    let start_at = spec.start_index(sigmas.as_slice().len().saturating_sub(1));
    let tail = &sigmas.as_slice()[start_at..];
    if tail.len() < 2 {
        return Ok(None);
    }
    Ok(Some(Sigmas::new(tail.to_vec()).map_err(|e| PipelineError::bad("strength", e.to_string()))?))
}

/// One batch of the sampler: images `first .. first + n` from `x` (at the first walked σ),
/// with the known init and keep mask of inpainting repeated to the batch; returns x̂₀ in the
/// sampler's space.
pub(crate) type RunBatch<'a> = dyn FnMut(usize, usize, Tensor, &Sigmas, Option<(&Tensor, &Tensor)>, &mut SeededNoise) -> Result<Tensor, PipelineError> + 'a;

/// The batch loop shared by every model: sample i starts from the noise of seed
/// `spec.seed + i`, scaled to the first walked σ (and added to the init for img2img), is
/// sampled by `run`, turned into output values by `to_pixels` (pixels in [−1, 1] for images),
/// and for inpainting has its kept values set to the init's, exactly. Returns
/// `(count, per_image…)`.
pub(crate) fn in_batches(
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    per_image: &[usize],
    init: Option<&Init>,
    device: &Device,
    run: &mut RunBatch<'_>,
    to_pixels: &mut dyn FnMut(Tensor) -> Result<Tensor, PipelineError>,
) -> Result<Tensor, PipelineError> {
    let walked = walked_sigmas(spec, sigmas)?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < spec.count {
        let n = spec.batch_size.min(spec.count - start);
        let seeds = (start..start + n).map(|i| spec.seed + i as u64);
        let mut noise = SeededNoise::with_rng(seeds, spec.noise, spec.rng, device);
        let eps = noise.draw(per_image)?;
        noise.eta_noise_seed_delta(spec.eta_noise_seed_delta);
        let mut times = vec![1; 1 + per_image.len()];
        times[0] = n;
        let repeat = |t: &Tensor| t.repeat(times.as_slice());
        let pixels = match (init, &walked) {
            (Some(init), None) => repeat(&init.pixels)?,
            (_, Some(w)) => {
                let known = init.map(|i| repeat(&i.known)).transpose()?;
                let keep = init.and_then(|i| i.keep.as_ref()).map(repeat).transpose()?;
                let x = match &known {
                    Some(k) => (k + (eps * w.as_slice()[0])?)?,
                    None => (eps * w.as_slice()[0])?,
                };
                let x0 = run(start, n, x, w, known.as_ref().zip(keep.as_ref()), &mut noise)?;
                let img = to_pixels(x0)?;
                match init {
                    // w·pixels + (1 − w)·img: exactly the init where w = 1, the sample where w = 0.
                    Some(Init { blend: Some(w), pixels, .. }) => {
                        let w = repeat(w)?;
                        ((repeat(pixels)? * &w)? + (img * (1.0 - w)?)?)?
                    }
                    Some(Init { keep_pixels: Some(keep), pixels, .. }) => repeat(keep)?.where_cond(&repeat(pixels)?, &img)?,
                    _ => img,
                }
            }
            (None, None) => return Err(PipelineError::bad("steps", "the schedule has no σ to walk")),
        };
        out.push(pixels);
        start += n;
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// Generates `spec.count` samples with `model` over `sigmas`; returns `(count, C, H, W)` in
/// [−1, 1] for an image model, `(count, C, L)` for a model of sequences (not clamped: a
/// series has no fixed range). Sample i starts from the noise of seed `spec.seed + i` (added to the init image
/// at the starting σ for img2img) and draws its samplers' noise from the same seed (its
/// stream, or its Brownian path), so it does not depend on the batch size.
pub fn generate(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Tensor, PipelineError> {
    let init = image_init(model, spec, device)?;
    Ok(generate_batches(model, spec, sigmas, init, device, observer, false)?.0)
}

/// [`generate`] with the values of `known` imposed where `keep` is 1 at every step (the
/// inpainting of [`Inpaint`], RePaint-resampled as the spec says) and copied exactly into
/// the result: a forecast conditioned on the observed history, or the imputation of missing
/// values. The whole schedule is walked (the spec's strength does not apply).
///
/// # Shapes
/// `known`: `(1, C, spatial…)` of the model's sample shape (any values where `keep` is 0);
/// `keep`: the same shape, u8.
pub fn generate_known(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    known: &Tensor,
    keep: &Tensor,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Tensor, PipelineError> {
    let want = model.config.sample_shape().batch_dims(1);
    if known.dims() != want.as_slice() || keep.dims() != want.as_slice() {
        return Err(PipelineError::bad(
            "known",
            format!("the known values and their mask must have the model's shape {want:?}, got {:?} and {:?}", known.dims(), keep.dims()),
        ));
    }
    if spec.init_image.is_some() {
        return Err(PipelineError::bad("init_image", "the known values take the place of an init image; give one or the other"));
    }
    let init = Init { pixels: known.clone(), keep_pixels: Some(keep.clone()), blend: None, known: known.clone(), keep: Some(keep.clone()) };
    Ok(generate_batches(model, spec, sigmas, Some(init), device, observer, false)?.0)
}

/// [`generate`], and for each image the per-token cross-attention maps of its prompt (DAAM,
/// see [`TokenMaps`]), averaged over every cross-attention layer and network call of its
/// conditional branch. The images are the same as [`generate`]'s, bit for bit. Only a
/// prompt model has them, and only a generation that runs the network (strength above 0).
pub fn generate_with_attention(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<(Tensor, Vec<TokenMaps>), PipelineError> {
    let init = image_init(model, spec, device)?;
    generate_batches(model, spec, sigmas, init, device, observer, true)
}

/// The init image (and inpainting mask) of `spec`, at the model's size; only an image model
/// takes one.
fn image_init(model: &LoadedModel, spec: &GenerateSpec, device: &Device) -> Result<Option<Init>, PipelineError> {
    let Some(input) = &spec.init_image else { return Ok(None) };
    let shape = model.config.sample_shape();
    let Some(size) = shape.square_side() else {
        return Err(PipelineError::bad("init_image", "this model makes sequences, not images, so it takes no init image"));
    };
    let channels = shape.channels;
    let (pixels, dims) = load_init_image(input, (size, size), channels, device)?;
    let mask = spec.mask.as_ref().map(|m| RepaintMask::load(m, dims, spec.conditioning.mask_blur)).transpose()?;
    let keep = mask.as_ref().map(|m| m.keep((size, size), channels, device)).transpose()?;
    let blend = mask.as_ref().map(|m| m.keep_weights((size, size), channels, device)).transpose()?.flatten();
    Ok(Some(Init { known: pixels.clone(), keep: keep.clone(), pixels, keep_pixels: keep, blend }))
}

/// The batches of [`generate`]; with `attention`, the maps of each image too.
fn generate_batches(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    init: Option<Init>,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
    attention: bool,
) -> Result<(Tensor, Vec<TokenMaps>), PipelineError> {
    let shape = model.config.sample_shape();
    let images = shape.square_side().is_some();
    let branches = branch_inputs(model, spec, device)?;
    // The prompt encoder whose tokens name the maps, when they are asked for.
    let text = match (&model.text, attention) {
        (_, false) => None,
        (Some(text), true) => Some(text),
        (None, true) => {
            return Err(PipelineError::bad("attention", "attention maps show how a prompt steered the image; this model takes no prompt"))
        }
    };
    if attention && walked_sigmas(spec, sigmas)?.is_none() {
        return Err(PipelineError::bad("attention", "strength 0 returns the init image without running the network, so there is no attention to show"));
    }
    let cond = &spec.conditioning;
    let settings = GuidanceSettings { scale: cond.guidance_scale, rescale: cond.guidance_rescale, interval: cond.guidance_interval };
    let mut maps = Vec::new();
    let mut batch = |first: usize, n: usize, x: Tensor, w: &Sigmas, inpaint: Option<(&Tensor, &Tensor)>, noise: &mut SeededNoise| {
        let recorder = text.map(|_| CrossAttentionRecorder::new(n, shape.spatial[0], shape.spatial[1]));
        let x0 = run(model, spec, w, branches.as_ref(), first, settings, inpaint, n, x, noise, &mut *observer, recorder.as_ref())?;
        if let (Some(text), Some(recorder)) = (text, &recorder) {
            let recorded = recorder.maps()?.ok_or_else(|| {
                PipelineError::bad("attention", "the prompt's branch never ran (guidance scale 0 throughout), so there is no attention to show")
            })?;
            for i in 0..n {
                let prompt = cond.prompts.get((first + i) % cond.prompts.len().max(1)).map_or("", String::as_str);
                maps.push(TokenMaps::from_recorded(text.tokenizer.token_texts(prompt)?, &recorded.get(i)?)?);
            }
        }
        Ok(x0)
    };
    // Pixels are clamped to [−1, 1]; a series keeps its values.
    let mut output = |x: Tensor| -> Result<Tensor, PipelineError> { Ok(if images { x.clamp(-1f32, 1f32)? } else { x }) };
    let samples = in_batches(spec, sigmas, &shape.dims(), init.as_ref(), device, &mut batch, &mut output)?;
    Ok((samples, maps))
}

#[allow(clippy::too_many_arguments)]
fn run(
    model: &LoadedModel,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    branches: Option<&(UNetCond, UNetCond)>,
    first: usize,
    settings: GuidanceSettings,
    inpaint: Option<(&Tensor, &Tensor)>,
    n: usize,
    x: Tensor,
    noise: &mut SeededNoise,
    observer: &mut impl Observer<TensorLatent>,
    recorder: Option<&CrossAttentionRecorder>,
) -> Result<Tensor, PipelineError> {
    let (mut c, u) = match branches {
        Some((c, u)) => (rows_for(c, first, n)?, Some(rows_for(u, first, n)?)),
        None => (UNetCond::default(), None),
    };
    // A forecaster conditioned as in CSDI (Tashiro et al. 2021) reads the known values and
    // their mask as input channels; the inpainting below still holds them in the sampler's
    // state, which such a network does not read where they are known. Without known values
    // nothing is observed: an unconditional draw of a window.
    if model.config.network.reads_observation() {
        c.observed = Some(match inpaint {
            Some((known, keep)) => observation_channels(known, keep)?,
            None => Tensor::zeros((n, OBSERVATION_CHANNELS, x.dim(2)?), x.dtype(), x.device())?,
        });
    }
    let guided = guided_denoiser(&model.net, &model.config.diffusion, c, u, settings);
    let guided = match recorder {
        Some(r) => guided.recording(r),
        None => guided,
    };
    // Clipping/thresholding of x̂₀ acts on the model's estimate, inside inpainting.
    let mut d = ClampedX0::new(guided, spec.options.x0_clamp)?;
    let x = TensorLatent(x);
    let x0 = match inpaint {
        Some((known, keep)) => inpaint_sample(spec, &mut d, known, keep, x, sigmas, noise, observer)?,
        None => sample(spec.sampler, &mut d, x, sigmas, &spec.options, noise, observer)?,
    };
    Ok(x0.0)
}

/// Samples with the known pixels (or latents) `known` imposed where `keep` is 1, both of the
/// batch's size ([`Inpaint`]), RePaint-resampled as the spec says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn inpaint_sample(
    spec: &GenerateSpec,
    d: &mut dyn Denoiser<TensorLatent>,
    known: &Tensor,
    keep: &Tensor,
    x: TensorLatent,
    sigmas: &Sigmas,
    noise: &mut SeededNoise,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<TensorLatent, PipelineError> {
    let mut wrapped = Inpaint { inner: d, known: known.clone(), keep: keep.clone() };
    Ok(sample_resampled(spec.sampler, &mut wrapped, x, sigmas, &spec.options, noise, observer, spec.conditioning.resample)?)
}

/// The conditioning of images `first .. first + n`: image i takes row `i mod rows` of `c`.
fn rows_for(c: &UNetCond, first: usize, n: usize) -> Result<UNetCond, PipelineError> {
    let pick = |t: &Option<Tensor>| -> Result<Option<Tensor>, PipelineError> {
        Ok(match t {
            Some(t) => {
                let rows = t.dim(0)?;
                let idx: Vec<u32> = (first..first + n).map(|i| (i % rows) as u32).collect();
                Some(t.index_select(&Tensor::new(idx, t.device())?, 0)?)
            }
            None => None,
        })
    };
    Ok(UNetCond { class_labels: pick(&c.class_labels)?, encoder_hidden_states: pick(&c.encoder_hidden_states)?, observed: pick(&c.observed)? })
}
