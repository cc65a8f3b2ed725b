//! `stipple train`: train a U-Net denoiser on a folder of images, the built-in emoji, or the
//! columns of a CSV file (a forecasting model).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use stipple_train::{
    Checkpoints, Collective, Dashboard, DataSource, ProgressBars, SampleGrids, StopFlag, TrainConfig, TrainObserver,
    TrainOptions, TrainSettings, Trainer,
};

/// Train a diffusion model. Without --data it trains on the built-in Fluent Emoji set; with a
/// .csv file it trains a 1-D forecasting model on windows of --context + --horizon values of
/// its numeric columns (each window scaled by its context; after --log and --difference, when
/// given), for `stipple forecast`.
///
/// The run folder receives `checkpoint/` (resumable state), `model.safetensors` (EMA
/// weights for `stipple sample`), `samples/` (grids at fixed seeds) and `train.jsonl`.
/// Ctrl-C stops after the current step and writes a checkpoint; `--resume` continues to
/// the run's own total (or to --steps).
///
/// Built with `--features mpi`, `mpirun -np N stipple train …` trains data-parallel on N
/// processes (each takes batch-size/N images of every batch; rank 0 writes the run folder).
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder of training images (PNG, JPEG, WebP; searched recursively), or a CSV file of time
    /// series (a header row; numeric columns) [default: built-in emoji].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// CSV columns to train on, comma-separated or repeated [default: every numeric column].
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub column: Vec<String>,
    /// The --data folder holds WAV clips: train a 1-D model of waveforms, one clip per file
    /// (resampled to --sample-rate, channels averaged, silence trimmed, fitted to --clip-length),
    /// for `stipple sample`.
    #[arg(long)]
    pub sound: bool,
    /// Samples per training clip of sound (a multiple of 4 for the default network) [default: 2048].
    #[arg(long, value_name = "N")]
    pub clip_length: Option<usize>,
    /// Sample rate the clips are brought to, in Hz [default: 8000].
    #[arg(long, value_name = "HZ")]
    pub sample_rate: Option<u32>,
    /// Network of a series or sound model: unet1d (the 1-D U-Net) or diffwave (DiffWave at the
    /// reference's size: 30 dilated residual layers of 64 channels) [default: unet1d].
    #[arg(long, value_name = "unet1d|diffwave")]
    pub network: Option<String>,
    /// How a CSV series model reads the history it forecasts from: inpaint (an unconditional
    /// model of windows; the history is imposed at every sampler step) or csdi (the history and
    /// its mask are input channels, trained on random forecast and imputation masks; Tashiro et
    /// al. 2021) [default: inpaint].
    #[arg(long, value_name = "inpaint|csdi")]
    pub conditioning: Option<String>,
    /// Take the natural log of a CSV series before cutting it into windows (the Box-Cox
    /// transform at λ = 0: growth and seasonal swings proportional to the level become
    /// additive); `stipple forecast` brings its paths back with exp. Every value must be above 0.
    #[arg(long)]
    pub log: bool,
    /// Difference a CSV series at this lag before cutting it into windows, y_t = x_t − x_{t−LAG}
    /// (1: the first difference, for a trend; the season's length, e.g. 12 for monthly data: the
    /// seasonal difference); repeat or comma-separate for several, taken in order after --log.
    /// `stipple forecast` integrates its paths back from the last observed values. The model
    /// file records the transform.
    #[arg(long, value_delimiter = ',', value_name = "LAG")]
    pub difference: Vec<usize>,
    /// Observed values per window of a CSV series [default: 48].
    #[arg(long, value_name = "N")]
    pub context: Option<usize>,
    /// Values a CSV series model forecasts (context + horizon must be a multiple of 4 for the default network) [default: 16].
    #[arg(long, value_name = "N")]
    pub horizon: Option<usize>,
    /// Run folder [default: runs/emoji, or runs/<data folder name>].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Continue the run in the output folder from its checkpoint (its saved settings are used; --steps may extend it).
    #[arg(long)]
    pub resume: bool,
    /// Total training steps of the run [default: 2500; with --resume, the run's own total].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (reached after warm-up).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Steps of linear learning-rate warm-up.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Training image size in pixels (images are resized and centre-cropped) [default: 16].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Train on greyscale images instead of RGB.
    #[arg(long)]
    pub grey: bool,
    /// Mirror training images left-right at random (only for data without a handedness: not digits, letters, arrows).
    #[arg(long)]
    pub random_flip: bool,
    /// U-Net width per resolution level, comma-separated [default: 32,64,64].
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<usize>>,
    /// ResBlocks per resolution level.
    #[arg(long)]
    pub layers_per_block: Option<usize>,
    /// Resolutions (in pixels) whose levels get self-attention, comma-separated [default: half the image size].
    #[arg(long, value_delimiter = ',')]
    pub attention_at: Option<Vec<usize>>,
    /// Dropout probability inside the ResBlocks.
    #[arg(long)]
    pub dropout: Option<f64>,
    /// What the network predicts: epsilon, v_prediction or sample.
    #[arg(long)]
    pub prediction: Option<String>,
    /// β schedule: linear, scaled_linear or squaredcos_cap_v2.
    #[arg(long)]
    pub beta_schedule: Option<String>,
    /// Regression loss: l2 or l1.
    #[arg(long)]
    pub loss: Option<String>,
    /// Min-SNR-γ loss weighting (Hang et al. 2023) with this γ; 0 weights every noise level alike [default: 5].
    #[arg(long)]
    pub min_snr_gamma: Option<f64>,
    /// EMA decay of the sampling weights.
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Clip the global gradient norm to this value (0 = off).
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Steps between sample grids (0 = only at the end).
    #[arg(long)]
    pub sample_every: Option<usize>,
    /// Measure sample quality every K steps (and at the end) with the feature network of --eval-features: FD, KID and
    /// precision/recall against the training images, in metrics.jsonl, TensorBoard (eval/*) and metrics.png.
    #[arg(long, value_name = "K", requires = "eval_features")]
    pub eval_every: Option<usize>,
    /// A feature network made by `stipple eval train-features` on the training data.
    #[arg(long, value_name = "FILE", requires = "eval_every")]
    pub eval_features: Option<PathBuf>,
    /// Images sampled per measurement (seeds 0, 1, …; the generation defaults).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub eval_count: usize,
    /// Images per sample grid.
    #[arg(long)]
    pub sample_count: Option<usize>,
    /// Class labels for a class-conditional model, of images or of sound clips (--sound): csv (a
    /// column of labels.csv in the data folder, first column = file name) or folders (each
    /// file's sub-folder name, e.g. one folder per spoken word).
    #[arg(long, value_name = "csv|folders")]
    pub labels: Option<String>,
    /// Column of labels.csv holding the class (implies --labels csv) [default: label].
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Probability of training an image (or clip) without its label, so the model also samples
    /// unconditionally (classifier-free guidance) [default: 0.1].
    #[arg(long, value_name = "P")]
    pub cond_dropout: Option<f64>,
    /// Column of labels.csv holding each image's caption, for a text-conditioned (prompt) model
    /// with a jointly trained text encoder; the built-in emoji have a `caption` column ("red apple").
    #[arg(long, value_name = "COLUMN")]
    pub captions: Option<String>,
    /// Use the pretrained CLIP text encoder in this folder (config.json, tokenizer.json,
    /// model.safetensors, as transformers saves them), frozen, instead of training one (with --captions).
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Width of the text encoder's hidden states (with --captions).
    #[arg(long, value_name = "N", default_value_t = stipple_train::TEXT_WIDTH)]
    pub text_width: usize,
    /// Tokens per prompt including the start and end tokens (with --captions).
    #[arg(long, value_name = "N", default_value_t = stipple_train::MAX_TOKENS)]
    pub max_tokens: usize,
    /// Largest vocabulary of the byte-level BPE tokenizer trained on the captions (with --captions).
    #[arg(long, value_name = "N", default_value_t = stipple_train::VOCAB_SIZE)]
    pub vocab_size: usize,
    /// Seed of initialisation, data order and noise.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Compute device: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Under mpirun: seconds a rank waits for the others in one collective operation before it
    /// aborts the job (a rank died or hangs); rank 0's checkpoints and grids count as waiting.
    #[cfg(feature = "mpi")]
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    pub collective_timeout: f64,
}

/// The processes training together, those mpirun started (a world of one without mpirun),
/// and this one's device: under mpirun, `--device cuda` is the GPU numbered by the rank's
/// place on its machine (one process per GPU). With the `nccl` feature, ranks on GPUs reduce
/// through NCCL.
#[cfg(feature = "mpi")]
fn collective(args: &TrainArgs) -> anyhow::Result<(Box<dyn Collective>, candle_core::Device)> {
    anyhow::ensure!(
        args.collective_timeout.is_finite() && args.collective_timeout > 0.0,
        "--collective-timeout must be a positive number of seconds, got {}",
        args.collective_timeout
    );
    let timeout = std::time::Duration::from_secs_f64(args.collective_timeout);
    let mpi = stipple_train::MpiWorld::init(timeout)?;
    let local_rank = std::env::var("OMPI_COMM_WORLD_LOCAL_RANK").ok().and_then(|r| r.parse::<usize>().ok());
    let device = match (args.device.as_str(), local_rank) {
        ("cuda", Some(r)) => stipple_pipeline::device(&format!("cuda:{r}"))?,
        (name, _) => stipple_pipeline::device(name)?,
    };
    #[cfg(feature = "nccl")]
    if device.is_cuda() {
        return Ok((Box::new(stipple_train::NcclWorld::init(mpi, &device)?), device));
    }
    Ok((Box::new(mpi), device))
}

/// One process alone (a build without the `mpi` feature).
#[cfg(not(feature = "mpi"))]
fn collective(args: &TrainArgs) -> anyhow::Result<(Box<dyn Collective>, candle_core::Device)> {
    Ok((Box::new(stipple_train::SingleProcess), stipple_pipeline::device(&args.device)?))
}

/// The run's configuration: the flags as library settings.
fn build_config(a: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let data = DataSource::at(a.data.clone(), a.column.clone(), a.sound)?;
    let settings = TrainSettings {
        batch_size: a.batch_size,
        lr: a.lr,
        warmup: a.warmup,
        image_size: a.image_size,
        grey: a.grey,
        random_flip: a.random_flip,
        channels: a.channels.clone(),
        layers_per_block: a.layers_per_block,
        attention_at: a.attention_at.clone(),
        dropout: a.dropout,
        prediction: a.prediction.clone(),
        beta_schedule: a.beta_schedule.clone(),
        loss: a.loss.clone(),
        min_snr_gamma: a.min_snr_gamma,
        ema_decay: a.ema_decay,
        grad_clip: a.grad_clip,
        checkpoint_every: a.checkpoint_every,
        sample_every: a.sample_every,
        sample_count: a.sample_count,
        labels: a.labels.clone(),
        label_column: a.label_column.clone(),
        cond_dropout: a.cond_dropout,
        captions: a.captions.clone(),
        clip: a.clip.clone(),
        text_width: Some(a.text_width),
        max_tokens: Some(a.max_tokens),
        vocab_size: Some(a.vocab_size),
        seed: a.seed,
        context: a.context,
        horizon: a.horizon,
        clip_length: a.clip_length,
        sample_rate: a.sample_rate,
        network: a.network.clone(),
        conditioning: a.conditioning.clone(),
        log: a.log,
        difference: a.difference.clone(),
    };
    Ok(settings.config(data)?)
}

fn default_out(data: &Option<PathBuf>) -> PathBuf {
    let name = data
        .as_ref()
        .and_then(|d| d.canonicalize().ok())
        // A CSV file's run is named after the file without its extension.
        .and_then(|d| if d.is_file() { d.file_stem() } else { d.file_name() }.map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "emoji".into());
    PathBuf::from(super::RUNS_DIR).join(name)
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    // A series model is used by `forecast`, every other by `sample`.
    let forecast_data = match &config.data {
        DataSource::Series { csv, .. } => Some(csv.clone()),
        _ => None,
    };
    let (comm, device) = collective(&args)?;
    // Ranks other than 0 stay silent: rank 0 reports for the whole job.
    let root = comm.rank() == 0;
    let quiet = args.quiet || !root;
    let run = args.out.clone().unwrap_or_else(|| default_out(&args.data));
    let mut stop = StopFlag::default();
    let flag = stop.0.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now; the last checkpoint is intact");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (a checkpoint is being written; Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    let opts = TrainOptions {
        run: run.clone(),
        resume: args.resume,
        steps: args.steps,
        device,
        progress: !quiet,
    };
    let (mut dashboard, mut checkpoints, mut grids, mut bars) = (Dashboard::default(), Checkpoints, SampleGrids, ProgressBars::default());
    let mut metrics = match (args.eval_every, &args.eval_features) {
        (Some(every), Some(features)) => {
            let net = stipple_eval::DomainFeatureNet::load(features, &opts.device)?;
            Some(stipple_eval::TrainingMetrics::new(net, every, args.eval_count, stipple_eval::EvalOptions::default())?)
        }
        _ => None,
    };
    let mut observers: Vec<&mut dyn TrainObserver> = vec![&mut dashboard, &mut checkpoints, &mut grids, &mut stop];
    if let Some(m) = metrics.as_mut() {
        observers.push(m);
    }
    if !quiet {
        observers.push(&mut bars);
    }
    let o = Trainer::with_collective(config, &opts, comm)?.run(&mut observers)?;
    if !root {
        return Ok(if o.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS });
    }
    if !o.skipped_images.is_empty() {
        eprintln!("skipped {} unreadable image(s) (see the warnings above)", o.skipped_images.len());
    }
    let per_step = if o.steps_this_session > 0 { o.train_seconds / o.steps_this_session as f64 } else { 0.0 };
    println!(
        "{} {} steps in {:.0} s ({:.3} s/step, {:.0} s wall); now at step {}, loss {}",
        if o.interrupted { "interrupted after" } else { "trained" },
        o.steps_this_session,
        o.train_seconds,
        per_step,
        o.wall_seconds,
        o.step,
        o.last_loss.map_or("n/a".into(), |l| format!("{l:.4}")),
    );
    println!("model:   {}", o.model_file.display());
    if let Some(g) = &o.latest_grid {
        println!("samples: {}", g.display());
    }
    match forecast_data {
        Some(csv) => println!("forecast: stipple forecast --model {} --data {}", run.display(), csv.display()),
        None => println!("sample:  stipple sample --model {}", run.display()),
    }
    Ok(if o.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}
