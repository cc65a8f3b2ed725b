//! `stipple sample`: generate images (or a sound model's clips) from a trained model.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{
    check_output_path, check_sound_trajectory_path, clip_paths, defaults, device, generate, save_trajectory, to_images, write_clips, write_images, write_sound_trajectory, Adapters,
    GenerateRequest, ImageInput, Model, PipelineError, TrajectoryFormat, TrajectoryRecorder,
};
use stipple_sample::{SamplerOptions, X0Clamp};

use super::StepBar;

/// Generate images from a trained model.
///
/// Image i is made from seed SEED + i, so the same seed gives the same image whatever the
/// count or batch size.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// The model: a model file, a run folder (uses its model.safetensors) or the name of a
    /// model in the models folder or the runs [default: the shipped prompt model, emoji-prompts].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Folder of models found by name (the shipped model is written there on first use).
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// Sampler (`stipple samplers` lists them all): euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, ddim, ddpm, unipc, …
    #[arg(long, default_value = defaults::SAMPLER)]
    pub sampler: String,
    /// σ schedule (`stipple samplers` lists them all): karras, exponential, sgm_uniform, simple, beta, leading, trailing, linspace, … [default: the sampler's usual one].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Number of denoising steps.
    #[arg(long, default_value_t = defaults::STEPS)]
    pub steps: usize,
    /// Where the last step ends: zero (returns the denoised image) or sigma_min (stops at the smallest training σ, like
    /// diffusers' final_sigmas_type="sigma_min") [default: zero].
    #[arg(long, value_name = "zero|sigma_min")]
    pub final_sigma: Option<String>,
    /// Noise of the stochastic samplers: brownian (one Brownian path per image, so results change smoothly with --steps)
    /// or independent (fresh draws) [default: brownian for the SDE samplers, independent for the others].
    #[arg(long, value_name = "brownian|independent")]
    pub noise: Option<String>,
    /// Seed of the first image (image i uses seed + i).
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// Random number source of the seeds: nv (the web UI's NV/GPU numbers) or cpu (PyTorch's CPU generator: diffusers
    /// with a CPU generator, the web UI's CPU source) [default: nv].
    #[arg(long, value_name = "nv|cpu")]
    pub rng: Option<String>,
    /// The web UIs' "eta noise seed delta" (ENSD): after its starting noise, image i's sampler noise comes from seed
    /// seed + i + N (0: none).
    #[arg(long, value_name = "N")]
    pub eta_noise_seed_delta: Option<u64>,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = defaults::COUNT)]
    pub count: usize,
    /// Images denoised at once (memory versus speed; does not change the images).
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    pub batch_size: usize,
    /// Ancestral noise η in [0, 1] for ddim (default 0) and the ancestral/SDE samplers (default 1).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Noise multiplier of the ancestral/SDE samplers and EDM's churn (default 1; edm 1.003).
    #[arg(long)]
    pub s_noise: Option<f64>,
    /// Churn S_churn of euler, heun, dpm_2 and edm (Karras et al. 2022, Alg. 2; default 0, edm 40).
    #[arg(long)]
    pub s_churn: Option<f64>,
    /// Churn applies for σ ≥ s_tmin (default 0; edm 0.05).
    #[arg(long)]
    pub s_tmin: Option<f64>,
    /// Churn applies for σ ≤ s_tmax (default ∞; edm 50).
    #[arg(long)]
    pub s_tmax: Option<f64>,
    /// Midpoint ratio r in (0, 1] of dpmpp_sde (default 0.5).
    #[arg(long)]
    pub r: Option<f64>,
    /// Clamp the predicted x̂₀ to [−R, R] at every step (diffusers' clip_sample; R = 1 for images).
    #[arg(long, value_name = "R")]
    pub clip_sample: Option<f64>,
    /// Dynamic thresholding of x̂₀ (Saharia et al. 2022) at this quantile of |x̂₀| (diffusers: 0.995).
    #[arg(long, value_name = "RATIO")]
    pub thresholding: Option<f64>,
    /// Largest threshold of --thresholding (default 1).
    #[arg(long, value_name = "S")]
    pub sample_max_value: Option<f64>,
    /// Order of the multistep samplers lms (default 4), deis and unipc (default 3).
    #[arg(long)]
    pub order: Option<usize>,
    /// Class to generate, for a class-conditional model: its name or its index (`stipple inspect` lists the classes).
    #[arg(long, value_name = "NAME")]
    pub class: Option<String>,
    /// Prompt, for a text-conditioned model; repeat it for several (image i gets prompt i mod k,
    /// so a grid's columns are the prompts).
    #[arg(long, value_name = "TEXT")]
    pub prompt: Vec<String>,
    /// Prompt to steer away from (its prediction replaces the empty prompt's in the guidance).
    #[arg(long, value_name = "TEXT")]
    pub negative_prompt: Option<String>,
    /// Classifier-free guidance scale: 1 = the conditional model, 0 = unconditional, >1 stronger
    /// [default: 4 with --prompt (small prompt models need it), else 1].
    #[arg(long, value_name = "S")]
    pub guidance_scale: Option<f64>,
    /// Class to steer away from, by name or index (its prediction replaces the unconditional one).
    #[arg(long, value_name = "NAME")]
    pub negative_class: Option<String>,
    /// Guidance rescale φ in [0, 1] (Lin et al. 2023; 0.7 suggested): tames over-saturation at high scales.
    #[arg(long, value_name = "PHI", default_value_t = defaults::GUIDANCE_RESCALE)]
    pub guidance_rescale: f64,
    /// Guide only while σ lies in [LO, HI]; elsewhere the conditional prediction alone.
    #[arg(long, value_name = "LO,HI", value_delimiter = ',')]
    pub guidance_interval: Option<Vec<f64>>,
    /// Start from this image (img2img; resized and centre-cropped to the output's size).
    #[arg(long, value_name = "FILE")]
    pub init_image: Option<PathBuf>,
    /// How much of the schedule to walk from the init image, in [0, 1]: 0 returns it, 1 ignores it
    /// [default: 0.8, or 1 with --mask].
    #[arg(long, value_name = "S")]
    pub strength: Option<f64>,
    /// Inpainting mask (same size as the init image): white = repaint, black = keep.
    #[arg(long, value_name = "FILE")]
    pub mask: Option<PathBuf>,
    /// RePaint resampling for inpainting (Lugmayr et al. 2022): take every step N times, going
    /// back up by fresh noise in between, so the painted part agrees with the kept part (1 = off).
    #[arg(long, value_name = "N", default_value_t = defaults::RESAMPLE)]
    pub resample: usize,
    /// Blur the inpainting mask by SIGMA pixels (a Gaussian, as the web UI's "mask blur"): with a
    /// Stable Diffusion checkpoint the painted part fades into the original over the blur's
    /// width; a Stipple model's kept pixels stay exact (0 = a hard edge).
    #[arg(long, value_name = "SIGMA", default_value_t = defaults::MASK_BLUR)]
    pub mask_blur: f64,
    /// Image width in pixels, for Stable Diffusion checkpoints (a multiple of 8) [default: the
    /// checkpoint's training size: 512 for SD 1.x, 768 for 2.x, 1024 for SDXL].
    #[arg(long)]
    pub width: Option<usize>,
    /// Image height in pixels, for Stable Diffusion checkpoints [default: as --width].
    #[arg(long)]
    pub height: Option<usize>,
    /// For a Stable Diffusion checkpoint: encode and decode with the VAE in overlapping tiles
    /// of its training size, for sizes whose whole decode does not fit in memory (the seams
    /// are blended; pixels differ slightly from a whole decode's).
    #[arg(long)]
    pub vae_tiling: bool,
    /// For a single-file Stable Diffusion checkpoint: a diffusers folder of the same
    /// architecture whose configs and tokenizer(s) to use (a single file holds no tokenizer)
    /// [default: tokenizer/ (and tokenizer_2/) beside the file, with the released configs].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// A LoRA file (kohya / web-UI safetensors) and its weight, merged into a Stable Diffusion
    /// checkpoint; repeat for several. The prompt's `<lora:NAME:WEIGHT>` tags add
    /// MODELS/loras/NAME.safetensors.
    #[arg(long, value_name = "FILE:WEIGHT")]
    pub lora: Vec<String>,
    /// Output: a PNG file for the grid, or a folder with --separate. A sound model writes
    /// OUT/seed-N.wav (OUT without its extension: samples/ by default), or one .wav file.
    #[arg(long, short, default_value = "samples.png")]
    pub out: PathBuf,
    /// Write one PNG per image (OUT/seed-N.png) instead of a grid.
    #[arg(long)]
    pub separate: bool,
    /// Also write the denoising trajectory (x_t and the predicted x̂₀ per step): FILE.png is a grid
    /// (rows = images, columns = steps), FILE.gif and FILE.apng are animations.
    #[arg(long, value_name = "FILE")]
    pub trajectory: Option<PathBuf>,
    /// Record every K-th step of the trajectory (the last step is always recorded).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub every: usize,
    /// Write per-step statistics of the trajectory (σ, mean, std, distance of x̂₀ from the final image) as JSON.
    #[arg(long, value_name = "FILE")]
    pub trajectory_json: Option<PathBuf>,
    /// Compute device: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let read = |p: &Option<PathBuf>| p.as_deref().map(ImageInput::read).transpose();
    let request = GenerateRequest {
        sampler: Some(args.sampler.clone()),
        schedule: args.schedule.clone(),
        steps: Some(args.steps),
        final_sigma: args.final_sigma.clone(),
        noise: args.noise.clone(),
        seed: Some(args.seed),
        rng: args.rng.clone(),
        eta_noise_seed_delta: args.eta_noise_seed_delta,
        count: Some(args.count),
        batch_size: Some(args.batch_size),
        options: SamplerOptions {
            eta: args.eta,
            s_noise: args.s_noise,
            s_churn: args.s_churn,
            s_tmin: args.s_tmin,
            s_tmax: args.s_tmax,
            order: args.order,
            r: args.r,
            x0_clamp: X0Clamp {
                clip_sample: args.clip_sample.is_some(),
                clip_sample_range: args.clip_sample.unwrap_or(X0Clamp::OFF.clip_sample_range),
                thresholding: args.thresholding.is_some(),
                dynamic_thresholding_ratio: args.thresholding.unwrap_or(X0Clamp::OFF.dynamic_thresholding_ratio),
                sample_max_value: args.sample_max_value.unwrap_or(X0Clamp::OFF.sample_max_value),
            },
        },
        class: args.class.clone(),
        negative_class: args.negative_class.clone(),
        prompts: args.prompt.clone(),
        negative_prompt: args.negative_prompt.clone(),
        guidance_scale: args.guidance_scale,
        guidance_rescale: Some(args.guidance_rescale),
        guidance_interval: match args.guidance_interval.as_deref() {
            None => None,
            Some(&[lo, hi]) => Some((lo, hi)),
            Some(v) => return Err(PipelineError::bad("guidance_interval", format!("takes two σ values LO,HI, got {} value(s)", v.len())).into()),
        },
        init_image: read(&args.init_image)?,
        strength: args.strength,
        mask: read(&args.mask)?,
        resample: Some(args.resample),
        mask_blur: Some(args.mask_blur),
        width: args.width,
        height: args.height,
        vae_tiling: Some(args.vae_tiling),
    };
    let spec = request.validate()?;
    let dev = device(&args.device)?;
    let store = super::model_store(&args.models, &dev);
    let path = super::model_path(&store, args.model.as_deref())?;
    let adapters = Adapters { loras: Adapters::parse_lora_args(&args.lora)?, config_dir: args.config_dir.clone() };
    let stored = store.load_path_for(&path.display().to_string(), &path, &args.prompt, adapters)?;
    let model = &stored.model;
    let spec = model.with_class_names(spec)?;
    let sigmas = model.sigmas(&spec)?;
    if let Model::Stipple(m) = model {
        if let Some(sound) = &m.config.sound {
            return sample_sound(m, sound.sample_rate, &spec, &sigmas, &stored.model_ref, &args, &dev);
        }
    }
    // Fail before sampling, not after.
    check_output_path(&args.out, args.separate)?;
    if let Some(t) = &args.trajectory {
        TrajectoryFormat::from_path(t)?;
    }
    if args.trajectory_json.is_some() {
        model.check_trajectory_stats()?;
    }
    let recording = args.trajectory.is_some() || args.trajectory_json.is_some();
    let mut observer = (StepBar::new(spec.steps * spec.count.div_ceil(spec.batch_size)), TrajectoryRecorder::new(args.every));
    let batch = model.generate(&spec, &sigmas, &dev, &mut observer)?;
    observer.0.finish();
    let images = to_images(&batch)?;
    let written = write_images(&images, &spec, &sigmas, &stored.model_ref, &args.out, args.separate)?;
    let (w, h) = model.size(&spec)?;
    match written.as_slice() {
        [one] if !args.separate => println!("wrote a grid of {} images of {w}×{h} from {} to {}", images.len(), model.kind(), one.display()),
        _ => println!("wrote {} images of {w}×{h} from {} to {}", written.len(), model.kind(), args.out.display()),
    }
    if recording {
        let frames = model.preview_frames(observer.1.finish()?)?;
        if let Some(t) = &args.trajectory {
            save_trajectory(&frames, t)?;
            println!("trajectory ({} steps): {}", frames.len(), t.display());
        }
        if let Some(j) = &args.trajectory_json {
            let stats = model.trajectory_stats(&frames, &batch)?;
            let text = serde_json::to_string_pretty(&stats).context("stats serialise")?;
            std::fs::write(j, text).with_context(|| format!("writing {}", j.display()))?;
            println!("trajectory statistics: {}", j.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Clips of a sound model as WAV files, each carrying its recipe.
fn sample_sound(
    model: &stipple_nn::LoadedModel,
    rate: u32,
    spec: &stipple_pipeline::GenerateSpec,
    sigmas: &stipple_sample::Sigmas,
    model_ref: &stipple_pipeline::ModelRef,
    args: &SampleArgs,
    dev: &candle_core::Device,
) -> anyhow::Result<ExitCode> {
    if args.trajectory_json.is_some() {
        return Err(PipelineError::bad("trajectory_json", "trajectory statistics are computed for image models").into());
    }
    clip_paths(&args.out, spec)?;
    args.trajectory.as_deref().map(check_sound_trajectory_path).transpose()?;
    let mut observer = (StepBar::new(spec.steps * spec.count.div_ceil(spec.batch_size)), TrajectoryRecorder::new(args.every));
    let clips = generate(model, spec, sigmas, dev, &mut observer)?;
    observer.0.finish();
    let written = write_clips(&clips, rate, spec, sigmas, model_ref, &args.out)?;
    let length = clips.dim(2)?;
    println!("wrote {} clip(s) of {length} samples at {rate} Hz, each with its spectrogram (.png):", written.len());
    for w in written {
        println!("  {}", w.display());
    }
    if let Some(t) = &args.trajectory {
        let frames = observer.1.finish()?;
        write_sound_trajectory(&frames, rate, t)?;
        println!("trajectory ({} steps, spectrograms of x̂₀): {}", frames.len(), t.display());
    }
    Ok(ExitCode::SUCCESS)
}
