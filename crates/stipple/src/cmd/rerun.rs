//! `stipple rerun`: regenerate an output from the recipe it carries — an image (PNG), a clip
//! of a sound model (WAV, its RIFF `INFO` recipe) or a forecast (its forecast.json or fan
//! chart PNG).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{
    check_model_hash, device, reforecast, regenerate, regenerate_clip, write_clip, write_forecast, write_png_with_text, Adapters, ForecastRecipe, ImageInput, InputRef,
    ModelStore, PipelineError, Recipe, StoredModel,
};

use super::StepBar;

/// Regenerate an output bit for bit from its recipe (same model, sampler, σ's and seeds): a
/// PNG or WAV written by `stipple sample`, or a forecast written by `stipple forecast` (its
/// forecast.json or fan_chart.png; the forecast is redone from the same CSV file).
#[derive(clap::Args)]
pub struct RerunArgs {
    /// A PNG or WAV written by `stipple sample`, or the forecast.json (or fan_chart.png) of `stipple forecast`.
    pub file: PathBuf,
    /// The model to use: a file, a run folder or a model name [default: the path recorded in the recipe].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Folder of models found by name.
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// For a forecast: the CSV file it was made from [default: the path recorded in the recipe].
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Regenerate even when the model file's hash differs from the recorded one (with a warning).
    #[arg(long)]
    pub force: bool,
    /// Output [default: FILE with `.rerun.png` (`.rerun.wav`) in place of its extension; for a
    /// forecast, its folder with `.rerun` appended].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Compute device: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The input image a recipe names (init image or mask), read again from its recorded file.
fn recorded_input(setting: &'static str, r: &Option<InputRef>) -> Result<Option<ImageInput>, PipelineError> {
    let Some(r) = r else { return Ok(None) };
    let path = r.path.as_deref().ok_or_else(|| PipelineError::bad(setting, "the recipe records no file for it"))?;
    ImageInput::read(path).map(Some)
}

/// The model a recipe names (or `--model`), refused when its file is not the one the recipe
/// was made with (unless `--force`), loaded with the recipe's adapters.
fn recorded_model(args: &RerunArgs, store: &ModelStore, recipe: &Recipe) -> anyhow::Result<std::sync::Arc<StoredModel>> {
    let path = match &args.model {
        Some(m) => store.resolve_arg(m)?,
        None => recipe.model.path.clone(),
    };
    if !path.exists() {
        return Err(PipelineError::bad("model", format!("model file {} is missing; give the model the output was made with", path.display())).into());
    }
    if let Some(warning) = check_model_hash(recipe, &path, args.force)? {
        eprintln!("warning: {warning}; continuing because of --force, the result will differ");
    }
    Ok(store.load_adapted(&path.to_string_lossy(), &path, &Adapters::of(&recipe.model))?)
}

/// The recipe as written again: the same, naming the model file as it was found now.
fn rewritten(recipe: &Recipe, stored: &StoredModel) -> Recipe {
    let mut again = recipe.clone();
    again.model.path = stored.model_ref.path.clone();
    again
}

/// Whether `path` ends in `.ext` (any case).
fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

pub fn run(args: RerunArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let what = args.file.display().to_string();
    let dev = device(&args.device)?;
    let store = super::model_store(&args.models, &dev);
    if has_extension(&args.file, "wav") {
        let recipe = Recipe::from_wav_bytes(&bytes, &what).map_err(|e| PipelineError::bad("file", e))?;
        return rerun_clip(&args, &store, &recipe, &dev);
    }
    if has_extension(&args.file, "json") {
        let text = String::from_utf8_lossy(&bytes);
        let recipe = ForecastRecipe::from_json(&text).map_err(|e| PipelineError::bad("file", format!("{what}: {e}")))?;
        return rerun_forecast(&args, &store, &recipe, &dev);
    }
    if let Some(recipe) = ForecastRecipe::from_png_bytes(&bytes, &what).map_err(|e| PipelineError::bad("file", e))? {
        return rerun_forecast(&args, &store, &recipe, &dev);
    }
    let recipe = Recipe::from_png_bytes(&bytes, &what).map_err(|e| PipelineError::bad("file", e))?;
    let stored = recorded_model(&args, &store, &recipe)?;
    let (init, mask) = (recorded_input("init_image", &recipe.init_image)?, recorded_input("mask", &recipe.mask)?);
    let mut bar = StepBar::new(recipe.steps);
    let image = regenerate(&recipe, &stored.model, init, mask, &dev, &mut bar)?;
    bar.finish();
    let out = args.out.clone().unwrap_or_else(|| args.file.with_extension("rerun.png"));
    write_png_with_text(&image, &out, &rewritten(&recipe, &stored).text_chunks())?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// A sound model's clip, from the recipe in its WAV file.
fn rerun_clip(args: &RerunArgs, store: &ModelStore, recipe: &Recipe, dev: &candle_core::Device) -> anyhow::Result<ExitCode> {
    let stored = recorded_model(args, store, recipe)?;
    let model = stored.model.stipple("this clip came from a sound model")?;
    let out = args.out.clone().unwrap_or_else(|| args.file.with_extension("rerun.wav"));
    if !has_extension(&out, "wav") {
        return Err(PipelineError::bad("out", format!("a clip is written as a WAV file (the format that carries its recipe); got {}", out.display())).into());
    }
    let mut bar = StepBar::new(recipe.steps);
    let (clip, rate) = regenerate_clip(recipe, model, dev, &mut bar)?;
    bar.finish();
    write_clip(&out, clip, rate, &rewritten(recipe, &stored))?;
    println!("wrote {} (its spectrogram: {})", out.display(), out.with_extension("png").display());
    Ok(ExitCode::SUCCESS)
}

/// A forecast's sample paths, from its recipe and the same CSV file.
fn rerun_forecast(args: &RerunArgs, store: &ModelStore, recipe: &ForecastRecipe, dev: &candle_core::Device) -> anyhow::Result<ExitCode> {
    let data = match (&args.data, &recipe.forecast.data.path) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => return Err(PipelineError::bad("data", "the recipe records no CSV file; give the one the forecast was made from").into()),
    };
    let csv = std::fs::read(&data).with_context(|| format!("reading {} (the forecast's data; --data gives another path)", data.display()))?;
    let stored = recorded_model(args, store, &recipe.recipe)?;
    let model = stored.model.stipple("this forecast came from a series model")?;
    let c = &recipe.recipe.conditioning;
    let mut bar = StepBar::new(recipe.recipe.steps * c.resample);
    let f = reforecast(recipe, model, &csv, &data.display().to_string(), dev, &mut bar)?;
    bar.finish();
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            let file = args.file.canonicalize().with_context(|| format!("finding {}", args.file.display()))?;
            file.parent().unwrap_or(Path::new("/")).with_extension("rerun")
        }
    };
    let again = ForecastRecipe { recipe: rewritten(&recipe.recipe, &stored), forecast: recipe.forecast.clone() };
    for w in write_forecast(&out, &f, &again)? {
        println!("wrote {}", w.display());
    }
    Ok(ExitCode::SUCCESS)
}
