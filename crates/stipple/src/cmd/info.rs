//! `stipple info`: print the recipe an image carries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stipple_pipeline::{read_png_text, Recipe, PARAMETERS_KEY};

/// Print the recipe a generated PNG carries (its web-UI parameters line and the full JSON).
#[derive(clap::Args)]
pub struct InfoArgs {
    /// A PNG written by `stipple sample`.
    pub image: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::from_png(&args.image)?;
    let bytes = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let texts = read_png_text(&bytes, &args.image.display().to_string()).map_err(anyhow::Error::msg)?;
    if let Some((_, p)) = texts.iter().find(|(k, _)| k == PARAMETERS_KEY) {
        println!("{p}\n");
    }
    println!("{}", recipe.to_json());
    Ok(ExitCode::SUCCESS)
}
