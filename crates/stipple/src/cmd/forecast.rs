//! `stipple forecast`: probabilistic forecasts (and imputation) of a CSV series.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{
    defaults, device, forecast, read_series_column, write_forecast, ForecastRecipe, ForecastSettings, GenerateRequest,
};

use super::StepBar;

/// Forecast the next values of a CSV series with a model trained on one (`stipple train
/// --data series.csv`): the last observed values are imposed at every denoising step and
/// the model draws N sample paths of what follows (empty cells in that window are filled in
/// the same way). Writes paths.csv, quantiles.csv, quantiles.json, fan_chart.png and the
/// recipe forecast.json (`stipple info` reads it) into --out.
#[derive(clap::Args)]
pub struct ForecastArgs {
    /// The model: a model file, a run folder or a model name.
    #[arg(long, short)]
    pub model: PathBuf,
    /// Folder of models found by name.
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// The CSV file whose series is forecast (a header row; empty cells are missing values).
    #[arg(long)]
    pub data: PathBuf,
    /// The column to forecast [default: the model's training column, or the only numeric one].
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Values to forecast, at most the model's horizon; 0 only fills in missing values [default: the model's horizon].
    #[arg(long, value_name = "H")]
    pub horizon: Option<usize>,
    /// Sample paths to draw (path i from seed SEED + i).
    #[arg(long, value_name = "N", default_value_t = defaults::FORECAST_SAMPLES)]
    pub samples: usize,
    /// Paths denoised at once (memory versus speed; does not change the paths).
    #[arg(long, default_value_t = defaults::FORECAST_SAMPLES)]
    pub batch_size: usize,
    /// Sampler (`stipple samplers` lists them).
    #[arg(long, default_value = defaults::SAMPLER)]
    pub sampler: String,
    /// Number of denoising steps.
    #[arg(long, default_value_t = defaults::STEPS)]
    pub steps: usize,
    /// Seed of the first path.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// RePaint resampling: take each step this many times, re-noising in between, so the
    /// forecast agrees better with the imposed history (1 = off).
    #[arg(long, default_value_t = defaults::RESAMPLE)]
    pub resample: usize,
    /// Output folder.
    #[arg(long, short, default_value = "forecast")]
    pub out: PathBuf,
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: ForecastArgs) -> anyhow::Result<ExitCode> {
    let spec = GenerateRequest {
        sampler: Some(args.sampler.clone()),
        steps: Some(args.steps),
        seed: Some(args.seed),
        count: Some(args.samples),
        batch_size: Some(args.batch_size),
        resample: Some(args.resample),
        ..GenerateRequest::default()
    }
    .validate_with_known()?;
    let bytes = std::fs::read(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let dev = device(&args.device)?;
    let store = super::model_store(&args.models, &dev);
    let path = store.resolve_arg(&args.model)?;
    let stored = store.load_path(&path.to_string_lossy(), &path)?;
    let model = stored.model.stipple("forecasts need a model trained on a CSV file")?;
    let trained = model.config.series.as_ref().map(|w| w.columns.clone()).unwrap_or_default();
    let series = read_series_column(&bytes, args.column.as_deref(), &trained, &args.data.display().to_string())?;
    let sigmas = spec.sigmas(&model.config.diffusion)?;
    let mut observer = StepBar::new(spec.steps * spec.conditioning.resample * spec.count.div_ceil(spec.batch_size));
    let f = forecast(model, &series, args.horizon, &spec, &sigmas, &dev, &mut observer)?;
    observer.finish();
    let recipe = ForecastRecipe::new(&f, &spec, &sigmas, &stored.model_ref, ForecastSettings::data_ref(&bytes, Some(&args.data)));
    let written = write_forecast(&args.out, &f, &recipe)?;
    println!(
        "forecast {} values of \"{}\" after row {} ({} sample paths; {} missing value(s) filled in) into {}",
        f.horizon,
        f.column,
        f.start + f.context + 1,
        f.paths.len(),
        f.observed[..f.context].iter().filter(|v| v.is_none()).count(),
        args.out.display()
    );
    for w in written {
        println!("  {}", w.display());
    }
    Ok(ExitCode::SUCCESS)
}
