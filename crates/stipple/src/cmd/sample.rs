//! `stipple sample`: generate images from a trained model.

use std::path::PathBuf;
use std::process::ExitCode;

use std::ops::ControlFlow;

use anyhow::Context;
use stipple_nn::TensorLatent;
use stipple_sample::{Observer, StepInfo};
use stipple_pipeline::{device, generate, grid, grid_columns, save_png, to_images, GenerateRequest};

/// Generate images from a trained model.
///
/// Image i is made from seed SEED + i, so the same seed gives the same image whatever the
/// count or batch size.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// The model: a run folder (uses its model.safetensors) or a model file.
    #[arg(long, short)]
    pub model: PathBuf,
    /// Sampler: ddpm, ddim, euler, euler_ancestral, heun, dpmpp_2m.
    #[arg(long, default_value = "dpmpp_2m")]
    pub sampler: String,
    /// σ schedule: karras, exponential, leading, trailing, linspace [default: the sampler's usual one].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Number of denoising steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Seed of the first image (image i uses seed + i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = 16)]
    pub count: usize,
    /// Images denoised at once (memory versus speed; does not change the images).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Ancestral noise η in [0, 1] for ddim (default 0) and euler_ancestral (default 1).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Output: a PNG file for the grid, or a folder with --separate.
    #[arg(long, short, default_value = "samples.png")]
    pub out: PathBuf,
    /// Write one PNG per image (OUT/seed-N.png) instead of a grid.
    #[arg(long)]
    pub separate: bool,
    /// Compute device: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let request = GenerateRequest {
        sampler: args.sampler,
        schedule: args.schedule,
        steps: args.steps,
        seed: args.seed,
        count: args.count,
        batch_size: args.batch_size,
        eta: args.eta,
    };
    let spec = request.validate()?;
    let dev = device(&args.device)?;
    let path = super::model_path(&args.model);
    let model = stipple_nn::load_model_file(&path, &dev)?;
    let mut bar = StepBar(indicatif::ProgressBar::new((spec.steps * spec.count.div_ceil(spec.batch_size)) as u64));
    let images = to_images(&generate(&model, &spec, &dev, &mut bar)?)?;
    bar.0.finish_and_clear();
    if args.separate {
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        for (i, img) in images.iter().enumerate() {
            save_png(img, &args.out.join(format!("seed-{}.png", spec.seed + i as u64)))?;
        }
        println!("wrote {} images to {}", images.len(), args.out.display());
    } else {
        save_png(&grid(&images, grid_columns(images.len()), 2), &args.out)?;
        println!("wrote a grid of {} images to {}", images.len(), args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Advances a progress bar once per sampler step.
struct StepBar(indicatif::ProgressBar);

impl Observer<TensorLatent> for StepBar {
    fn on_step(&mut self, _: &StepInfo<'_, TensorLatent>) -> ControlFlow<()> {
        self.0.inc(1);
        ControlFlow::Continue(())
    }
}
