//! `stipple inspect`: print a model file's configuration and metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Print a model file's configuration and metadata without loading its weights.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A model file (`.safetensors`), a run folder holding `model.safetensors`, or a model name.
    pub model: PathBuf,
    /// Folder of models found by name.
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store = super::model_store(&args.models, &candle_core::Device::Cpu);
    let path = store.resolve_arg(&args.model)?;
    if stipple_pipeline::is_sd_checkpoint(&path) {
        println!("{}", stipple_sd::inspect(&path).map_err(stipple_pipeline::PipelineError::from)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (config, metadata) = stipple_nn::read_model_config(&path)?;
    println!("model file: {}", path.display());
    let mut keys: Vec<_> = metadata.keys().filter(|k| k.as_str() != "config").collect();
    keys.sort();
    for k in keys {
        println!("{k}: {}", metadata[k]);
    }
    let json = serde_json::to_string_pretty(&config).context("config serialises")?;
    println!("config:\n{json}");
    Ok(ExitCode::SUCCESS)
}
