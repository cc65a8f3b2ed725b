//! The sample grids a run writes while it trains: images at fixed seeds from the EMA
//! weights, each with its recipe naming the run's model file.

use std::path::{Path, PathBuf};

use candle_core::Device;
use image::DynamicImage;
use stipple_nn::LoadedModel;
use stipple_pipeline::{encode_png_with_text, generate, grid, grid_columns, paths_chart, to_images, write_atomic, write_images, GenerateRequest};

use crate::progress::sampling_bar;
use crate::trainer::model_file;
use crate::{TrainConfig, TrainError};

/// Columns of a text model's sample grid.
const SAMPLE_PROMPTS: usize = 8;

/// The prompts of a text model's sample grids: the captions of [`SAMPLE_PROMPTS`] images
/// spread evenly over the data set.
pub fn sample_prompts(captions: &[String]) -> Vec<String> {
    let n = captions.len();
    (0..SAMPLE_PROMPTS.min(n)).map(|k| captions[k * n / SAMPLE_PROMPTS.min(n)].clone()).collect()
}

/// Samples a grid at fixed seeds (0, 1, …) from the EMA weights and writes it as
/// `samples/step-NNNNNN.png` and `samples/latest.png`; returns the latter's path and the grid.
/// A model of sequences draws its samples as a fan chart of their quantiles instead.
/// A text model's grid has one column per prompt of `prompts`, guided at the prompt default
/// of [`stipple_pipeline::defaults`].
pub fn write_sample_grid(
    cfg: &TrainConfig,
    model: &LoadedModel,
    prompts: &[String],
    device: &Device,
    run: &Path,
    step: usize,
    progress: bool,
) -> Result<(PathBuf, DynamicImage), TrainError> {
    let spec = GenerateRequest {
        steps: Some(cfg.sample_steps),
        count: Some(cfg.sample_count),
        batch_size: Some(cfg.sample_count.min(32)),
        prompts: prompts.to_vec(),
        ..GenerateRequest::default()
    }
    .validate()?;
    let mut bar = sampling_bar(progress, spec.count.div_ceil(spec.batch_size) * spec.steps);
    let sigmas = spec.sigmas(&cfg.model.diffusion)?;
    let samples = generate(model, &spec, &sigmas, device, &mut bar)?;
    bar.0.finish_and_clear();
    // Each grid carries its recipe, naming the model file written at this step.
    let model_ref = stipple_pipeline::model_ref(&model_file(run), model)?;
    let latest = run.join("samples").join("latest.png");
    if model.config.image_size().is_none() {
        let paths = samples.flatten_from(1)?.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        let chart = DynamicImage::ImageRgb8(paths_chart(&paths)?);
        let length = paths.first().map_or(0, Vec::len);
        let recipe = stipple_pipeline::recipe(&spec, &sigmas, &model_ref, (length, 1), spec.seed, spec.count, None);
        let png = encode_png_with_text(&chart, &recipe.text_chunks())?;
        for path in [run.join("samples").join(format!("step-{step:06}.png")), latest.clone()] {
            write_atomic(&path, &png)?;
        }
        return Ok((latest, chart));
    }
    let images = to_images(&samples)?;
    for path in [run.join("samples").join(format!("step-{step:06}.png")), latest.clone()] {
        write_images(&images, &spec, &sigmas, &model_ref, &path, false)?;
    }
    Ok((latest, grid(&images, grid_columns(images.len()), 2)))
}
