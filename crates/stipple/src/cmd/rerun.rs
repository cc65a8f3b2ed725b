//! `stipple rerun`: regenerate an image from the recipe it carries.

use std::path::PathBuf;
use std::process::ExitCode;

use stipple_pipeline::{check_model_hash, Adapters, device, regenerate, write_png_with_text, ImageInput, InputRef, PipelineError, Recipe};

use super::StepBar;

/// Regenerate an image bit for bit from the recipe in its PNG (same model, sampler, σ's and seeds).
#[derive(clap::Args)]
pub struct RerunArgs {
    /// A PNG written by `stipple sample`.
    pub image: PathBuf,
    /// The model to use: a file, a run folder or a model name [default: the path recorded in the recipe].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Folder of models found by name.
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// Regenerate even when the model file's hash differs from the recorded one (with a warning).
    #[arg(long)]
    pub force: bool,
    /// Output PNG [default: IMAGE with `.rerun.png` in place of `.png`].
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

pub fn run(args: RerunArgs) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::from_png(&args.image)?;
    let dev = device(&args.device)?;
    let store = super::model_store(&args.models, &dev);
    let path = match &args.model {
        Some(m) => store.resolve_arg(m)?,
        None => recipe.model.path.clone(),
    };
    if !path.exists() {
        return Err(PipelineError::bad("model", format!("model file {} is missing; give the model the image was made with", path.display())).into());
    }
    if let Some(warning) = check_model_hash(&recipe, &path, args.force)? {
        eprintln!("warning: {warning}; continuing because of --force, the result will differ");
    }
    let stored = store.load_adapted(&path.to_string_lossy(), &path, &Adapters::of(&recipe.model))?;
    let (init, mask) = (recorded_input("init_image", &recipe.init_image)?, recorded_input("mask", &recipe.mask)?);
    let mut bar = StepBar::new(recipe.steps);
    let image = regenerate(&recipe, &stored.model, init, mask, &dev, &mut bar)?;
    bar.finish();
    let out = args.out.unwrap_or_else(|| args.image.with_extension("rerun.png"));
    let mut again = recipe.clone();
    again.model.path = stored.model_ref.path.clone();
    write_png_with_text(&image, &out, &again.text_chunks())?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
