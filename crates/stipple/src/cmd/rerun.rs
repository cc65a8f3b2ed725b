//! `stipple rerun`: regenerate an image from the recipe it carries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{check_model_hash, device, regenerate, write_png_with_text, Recipe};

use super::StepBar;

/// Regenerate an image bit for bit from the recipe in its PNG (same model, sampler, σ's and seeds).
#[derive(clap::Args)]
pub struct RerunArgs {
    /// A PNG written by `stipple sample`.
    pub image: PathBuf,
    /// The model to use [default: the path recorded in the recipe].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
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

pub fn run(args: RerunArgs) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::from_png(&args.image)?;
    let path = args.model.as_deref().map(super::model_path).unwrap_or_else(|| recipe.model.path.clone());
    anyhow::ensure!(
        path.is_file(),
        "model file {} is missing; pass --model with the model the image was made with",
        path.display()
    );
    if let Some(warning) = check_model_hash(&recipe, &path, args.force)? {
        eprintln!("warning: {warning}; continuing because of --force, the result will differ");
    }
    let dev = device(&args.device)?;
    let model = stipple_nn::load_model_file(&path, &dev).with_context(|| format!("loading {}", path.display()))?;
    let mut bar = StepBar::new(recipe.steps);
    let image = regenerate(&recipe, &model, &dev, &mut bar)?;
    bar.finish();
    let out = args.out.unwrap_or_else(|| args.image.with_extension("rerun.png"));
    let mut again = recipe.clone();
    again.model.path = path.canonicalize().unwrap_or(path);
    write_png_with_text(&image, &out, &again.text_chunks())?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
