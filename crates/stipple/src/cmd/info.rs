//! `stipple info`: print the recipe an image or a forecast carries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{read_png_text, ForecastRecipe, Recipe, FORECAST_KEY, PARAMETERS_KEY};

/// Print the recipe a generated PNG carries (its web-UI parameters line and the full JSON),
/// a forecast's (its forecast.json, or its fan chart PNG) or a generated clip's (a WAV file).
#[derive(clap::Args)]
pub struct InfoArgs {
    /// A PNG or WAV written by `stipple sample`, a fan chart PNG or forecast.json written by `stipple forecast`.
    pub image: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    if args.image.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        let text = std::fs::read_to_string(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
        let recipe = ForecastRecipe::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.image.display()))?;
        println!("{}
", recipe.recipe.parameters());
        println!("{}", serde_json::to_string_pretty(&recipe).context("the recipe serialises")?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.image.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
        let bytes = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
        let recipe = Recipe::from_wav_bytes(&bytes, &args.image.display().to_string()).map_err(anyhow::Error::msg)?;
        println!("{}\n", recipe.parameters());
        println!("{}", recipe.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    let recipe = Recipe::from_png(&args.image)?;
    let bytes = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let texts = read_png_text(&bytes, &args.image.display().to_string()).map_err(anyhow::Error::msg)?;
    if let Some((_, p)) = texts.iter().find(|(k, _)| k == PARAMETERS_KEY) {
        println!("{p}\n");
    }
    println!("{}", recipe.to_json());
    if let Some((_, f)) = texts.iter().find(|(k, _)| k == FORECAST_KEY) {
        println!("{f}");
    }
    Ok(ExitCode::SUCCESS)
}
