//! What the queue's worker runs: generation jobs (the pipeline's `GenerateRequest` on a model
//! of the store, every image recorded in the gallery) and training jobs (the library's
//! `Trainer` with the CLI's observers plus one that streams progress and cancels), with live
//! progress: step, σ, x̂₀ and x_t previews every k steps (for a Stable Diffusion checkpoint
//! the linear latent-to-RGB preview); loss, learning rate, steps/s. A generation may also keep
//! its denoising trajectory (with the job) and the per-token cross-attention maps of its images
//! (by image, for the latest [`ATTENTION_KEPT`]).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use serde::Serialize;
use stipple_nn::TensorLatent;
use stipple_pipeline::{
    encode_images, grid, grid_columns, is_model_name, noisy_images, to_images, GenerateRequest, Model, ModelStore, PipelineError, Recipe, TokenMaps,
    TrajectoryFrame, TrajectoryRecorder,
};
use stipple_sample::{Observer, StepInfo};
use stipple_train::{Checkpoints, Dashboard, DataSource, SampleGrids, StepStats, TrainError, TrainObserver, TrainOptions, TrainSettings, Trainer};

use crate::gallery::{Gallery, ImageId, ImageMeta};
use crate::queue::JobContext;
use crate::recent::Recent;

/// How many images' attention maps the server keeps (in memory, newest first).
pub const ATTENTION_KEPT: usize = 256;

/// Most frames of a kept trajectory: longer runs keep every k-th step (and the last).
pub const TRAJECTORY_FRAMES: usize = 64;

/// A job of the queue.
pub enum Job {
    Generate(GenerateJob),
    Train(TrainJob),
}

/// Generate images with a model of the store and record them in the gallery.
pub struct GenerateJob {
    /// Name of the model in the store.
    pub model: String,
    pub request: GenerateRequest,
    /// An x̂₀ preview every this many steps (0 = none).
    pub preview_every: usize,
    /// Keep the per-token cross-attention maps of each image (prompt models only).
    pub attention: bool,
    /// Keep the denoising trajectory (x_t and x̂₀ of every step, at most
    /// [`TRAJECTORY_FRAMES`]) with the job's result.
    pub trajectory: bool,
}

/// Train (or resume) the run `name` in the runs folder.
pub struct TrainJob {
    /// Run folder name (a model name once trained).
    pub name: String,
    /// Data folder name under the server's data root; `None` is the built-in emoji.
    pub data: Option<String>,
    pub settings: TrainSettings,
    /// Total steps of the run (`None`: the default of a new run, or the run's own total).
    pub steps: Option<usize>,
    pub resume: bool,
}

/// Live progress of a job.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// A sampler step: `step` of `steps` over all batches (1-based), the σ it moved from, the
    /// seconds left (estimated), and every `preview_every` steps PNGs (base64) of x̂₀
    /// (`preview`) and of the latent x_t it moved to (`preview_x`, scaled as the network sees
    /// it, x/√(1+σ²)).
    Sampling {
        step: usize,
        steps: usize,
        sigma: f64,
        eta_seconds: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        preview: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        preview_x: Option<String>,
    },
    /// An optimisation step.
    Training { step: usize, total: usize, loss: f64, loss_smoothed: f64, lr: f64, steps_per_second: f64 },
    /// A checkpoint was written at `step`.
    Checkpoint { step: usize },
    /// A sample grid was drawn at `step` (a PNG, base64).
    SampleGrid { step: usize, image: String },
}

/// What a finished job produced.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobResult {
    Images(GeneratedImages),
    Trained { model: String, step: usize },
}

/// The images of a generation job, in seed order.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratedImages {
    /// Gallery ids.
    pub ids: Vec<ImageId>,
    pub model: String,
    pub seeds: Vec<u64>,
    /// The PNG files (with their recipes), as stored.
    #[serde(skip)]
    pub pngs: Vec<Arc<[u8]>>,
    #[serde(skip)]
    pub recipes: Vec<Recipe>,
    /// Whether the images' attention maps were kept (`/api/images/{id}/attention`).
    pub attention: bool,
    /// The recorded frames, when the job asked for its trajectory.
    #[serde(skip)]
    pub trajectory: Option<Trajectory>,
}

/// A generation's recorded denoising trajectory (all images, the recorded steps in order).
#[derive(Clone)]
pub struct Trajectory(pub Arc<Vec<TrajectoryFrame>>);

impl std::fmt::Debug for Trajectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trajectory({} frames)", self.0.len())
    }
}

/// Why a job failed: bad input in a setting (a 4xx for the requester) or an internal failure.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobError {
    /// The library's name of the setting at fault, for bad input.
    pub setting: Option<&'static str>,
    pub message: String,
}

impl JobError {
    fn internal(e: impl std::fmt::Display) -> Self {
        JobError { setting: None, message: e.to_string() }
    }

    fn bad(setting: &'static str, message: impl Into<String>) -> Self {
        JobError { setting: Some(setting), message: message.into() }
    }
}

impl From<PipelineError> for JobError {
    fn from(e: PipelineError) -> Self {
        match e.bad_input() {
            Some((setting, expected)) => JobError::bad(setting, expected),
            None => JobError::internal(stipple_pipeline::chain(&e)),
        }
    }
}

impl From<TrainError> for JobError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Pipeline(p) => p.into(),
            TrainError::Config(m) => JobError::bad("settings", m),
            TrainError::RunExists(_) => JobError::bad("name", "a run of that name exists; resume it or choose another name"),
            TrainError::NoCheckpoint(_) => JobError::bad("resume", "that run has no checkpoint to resume"),
            TrainError::Data(d) => JobError::bad("data", d.to_string()),
            other => JobError::internal(stipple_pipeline::chain(&other)),
        }
    }
}

/// The latest x̂₀ preview of the running generation (what `/sdapi/v1/progress` shows).
#[derive(Clone, Debug)]
pub struct Preview {
    pub step: usize,
    pub steps: usize,
    pub png_base64: Option<String>,
    pub started: Instant,
}

/// Everything the worker needs.
pub struct Engine {
    pub store: Arc<ModelStore>,
    pub gallery: Arc<Gallery>,
    pub runs_dir: PathBuf,
    /// Folder whose sub-folders training jobs may name as data (none: only the built-in emoji).
    pub data_root: Option<PathBuf>,
    pub preview: Mutex<Option<Preview>>,
    /// Attention maps of the latest images that asked for them.
    pub(crate) attention: Mutex<Recent<ImageId, Arc<TokenMaps>>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A batch of pictures as one near-square grid, a base64 PNG (the previews' form).
pub(crate) fn preview_png(images: &[image::DynamicImage]) -> Result<String, PipelineError> {
    let png = stipple_pipeline::encode_png_with_text(&grid(images, grid_columns(images.len()), 1), &[])?;
    Ok(b64(&png))
}

impl Engine {
    /// An engine over `store` and `gallery` with nothing run yet.
    pub fn new(store: Arc<ModelStore>, gallery: Arc<Gallery>, runs_dir: PathBuf, data_root: Option<PathBuf>) -> Self {
        Engine { store, gallery, runs_dir, data_root, preview: Mutex::new(None), attention: Mutex::new(Recent::new(ATTENTION_KEPT)) }
    }

    /// The kept attention maps of image `id`.
    pub fn attention_maps(&self, id: ImageId) -> Option<Arc<TokenMaps>> {
        self.attention.lock().expect("attention lock").get(&id).cloned()
    }

    /// Forgets the attention maps of image `id` (deleted).
    pub fn forget_attention(&self, id: ImageId) {
        self.attention.lock().expect("attention lock").remove(&id);
    }

    /// Runs one job (the queue's job function).
    pub fn run(&self, job: &Job, ctx: &JobContext<'_, Progress>) -> Result<JobResult, JobError> {
        match job {
            Job::Generate(g) => self.generate(g, ctx).map(JobResult::Images),
            Job::Train(t) => self.train(t, ctx),
        }
    }

    fn generate(&self, job: &GenerateJob, ctx: &JobContext<'_, Progress>) -> Result<GeneratedImages, JobError> {
        let spec = job.request.validate()?;
        let stored = self.store.load_for(&job.model, &job.request.prompts)?;
        let model = &stored.model;
        let spec = model.with_class_names(spec)?;
        let sigmas = model.sigmas(&spec)?;
        let per_batch = sigmas.as_slice().len() - 1 - spec.start_index(sigmas.as_slice().len() - 1);
        let total = per_batch * spec.count.div_ceil(spec.batch_size);
        let started = Instant::now();
        *self.preview.lock().expect("preview lock") = Some(Preview { step: 0, steps: total, png_base64: None, started });
        let stream = StreamObserver { ctx, engine: self, model, done: 0, total, every: job.preview_every, started };
        let recorder = job.trajectory.then(|| TrajectoryRecorder::new(per_batch.div_ceil(TRAJECTORY_FRAMES)));
        let mut observer = (stream, recorder);
        let (batch, maps) = if job.attention {
            model.generate_with_attention(&spec, &sigmas, self.store.device(), &mut observer)?
        } else {
            (model.generate(&spec, &sigmas, self.store.device(), &mut observer)?, vec![])
        };
        let trajectory = match observer.1 {
            Some(r) => Some(Trajectory(Arc::new(model.preview_frames(r.finish()?)?))),
            None => None,
        };
        let images = to_images(&batch)?;
        let encoded = encode_images(&images, &spec, &sigmas, &stored.model_ref, false)?;
        let mut out =
            GeneratedImages { ids: vec![], model: stored.name.clone(), seeds: vec![], pngs: vec![], recipes: vec![], attention: job.attention, trajectory };
        let mut maps = maps.into_iter();
        for (recipe, png) in encoded {
            let c = &recipe.conditioning;
            let meta = ImageMeta {
                model_name: stored.name.clone(),
                model_hash: recipe.model.sha256.clone(),
                prompt: c.prompts.first().cloned().or_else(|| c.class.clone()).unwrap_or_default(),
                negative_prompt: c.negative_prompt.clone().or_else(|| c.negative_class.clone()).unwrap_or_default(),
                sampler: recipe.sampler.to_string(),
                steps: recipe.steps as u32,
                seed: recipe.seed,
                guidance: c.guidance_scale,
                width: recipe.width as u32,
                height: recipe.height as u32,
                recipe_json: recipe.to_json(),
            };
            let record = self.gallery.insert(&meta, &png).map_err(JobError::internal)?;
            if let Some(m) = maps.next() {
                self.attention.lock().expect("attention lock").insert(record.id, Arc::new(m));
            }
            out.ids.push(record.id);
            out.seeds.push(recipe.seed);
            out.pngs.push(png.into());
            out.recipes.push(recipe);
        }
        Ok(out)
    }

    fn train(&self, job: &TrainJob, ctx: &JobContext<'_, Progress>) -> Result<JobResult, JobError> {
        if !is_model_name(&job.name) {
            return Err(JobError::bad("name", "a run name is letters, digits, '.', '_' and '-'"));
        }
        if job.settings.clip.is_some() {
            return Err(JobError::bad("clip", "the server does not read folders a client names"));
        }
        let data = match &job.data {
            None => DataSource::EmbeddedEmoji,
            Some(name) => {
                let root = self.data_root.as_ref().ok_or_else(|| JobError::bad("data", "this server has no data folder (start it with --data-root DIR)"))?;
                if !is_model_name(name) || !root.join(name).is_dir() {
                    return Err(JobError::bad("data", format!("no data folder named \"{name}\" in the server's data root")));
                }
                DataSource::Folder(root.join(name))
            }
        };
        let config = job.settings.config(data)?;
        let opts = TrainOptions {
            run: self.runs_dir.join(&job.name),
            resume: job.resume,
            steps: job.steps,
            device: self.store.device().clone(),
            progress: false,
        };
        let mut trainer = Trainer::new(config, &opts)?;
        let (mut dashboard, mut checkpoints, mut grids) = (Dashboard::default(), Checkpoints, SampleGrids);
        let mut stream = TrainStream { ctx, started: Instant::now(), first_step: trainer.steps_done() };
        let outcome = trainer.run(&mut [&mut dashboard, &mut checkpoints, &mut grids, &mut stream])?;
        Ok(JobResult::Trained { model: job.name.clone(), step: outcome.step })
    }
}

/// Streams sampler steps to the job's events, with a preview every `every` steps (the model's
/// cheap preview of x̂₀, [`Model::preview`]), and cancels at the next step once the job is
/// cancelled or out of time.
struct StreamObserver<'a, 'c> {
    ctx: &'a JobContext<'c, Progress>,
    engine: &'a Engine,
    model: &'a Model,
    done: usize,
    total: usize,
    every: usize,
    started: Instant,
}

impl Observer<TensorLatent> for StreamObserver<'_, '_> {
    fn on_step(&mut self, info: &StepInfo<'_, TensorLatent>) -> ControlFlow<()> {
        self.done += 1;
        let last = info.step + 1 == info.steps;
        let due = self.every > 0 && (self.done.is_multiple_of(self.every) || last);
        let show = |rgb: Result<Vec<image::DynamicImage>, PipelineError>| rgb.and_then(|i| preview_png(&i)).ok();
        let preview = if due { show(self.model.preview(&info.denoised.0).and_then(|rgb| to_images(&rgb))) } else { None };
        // x_t as the recorded trajectory shows it (`noisy_images` of the model's preview).
        let preview_x = if due { show(self.model.preview(&info.x.0).and_then(|rgb| noisy_images(&rgb, info.sigma_next))) } else { None };
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta_seconds = elapsed / self.done as f64 * (self.total.saturating_sub(self.done)) as f64;
        if let Ok(mut p) = self.engine.preview.lock() {
            if let Some(p) = p.as_mut() {
                p.step = self.done;
                if preview.is_some() {
                    p.png_base64 = preview.clone();
                }
            }
        }
        self.ctx.emit(Progress::Sampling { step: self.done, steps: self.total, sigma: info.sigma, eta_seconds, preview, preview_x });
        if self.ctx.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Streams training steps, checkpoints and grids to the job's events; cancels (with a
/// checkpoint, as Ctrl-C does) once the job is cancelled or out of time.
struct TrainStream<'a, 'c> {
    ctx: &'a JobContext<'c, Progress>,
    started: Instant,
    first_step: usize,
}

impl TrainObserver for TrainStream<'_, '_> {
    fn on_step(&mut self, trainer: &Trainer, s: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        let taken = (s.step - self.first_step) as f64;
        self.ctx.emit(Progress::Training {
            step: s.step,
            total: trainer.total_steps(),
            loss: s.loss,
            loss_smoothed: s.loss_smoothed,
            lr: s.lr,
            steps_per_second: taken / self.started.elapsed().as_secs_f64().max(1e-9),
        });
        Ok(if self.ctx.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    }

    fn on_checkpoint(&mut self, _: &Trainer, saved: &stipple_train::SavedCheckpoint) -> Result<(), TrainError> {
        self.ctx.emit(Progress::Checkpoint { step: saved.step });
        Ok(())
    }

    fn on_sample_grid(&mut self, _: &Trainer, g: &stipple_train::SampleGrid) -> Result<(), TrainError> {
        if let Ok(png) = stipple_pipeline::encode_png_with_text(&g.image, &[]) {
            self.ctx.emit(Progress::SampleGrid { step: g.step, image: b64(&png) });
        }
        Ok(())
    }
}
