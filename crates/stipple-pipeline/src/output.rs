//! Writing generated images with their recipes, and regenerating an image from one.

use std::path::{Path, PathBuf};

use candle_core::Device;
use image::DynamicImage;
use stipple_nn::LoadedModel;
use stipple_sample::{Observer, Sigmas};

use crate::recipe::{software, ModelRef, Recipe, RECIPE_VERSION};
use crate::{file_sha256, generate, grid, grid_columns, to_images, write_png_with_text, GenerateSpec, PipelineError};

/// The model file behind a recipe: its path, hash and training step.
pub fn model_ref(path: &Path, model: &LoadedModel) -> Result<ModelRef, PipelineError> {
    Ok(ModelRef {
        path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        sha256: file_sha256(path)?,
        step: model.metadata.get("step").and_then(|s| s.parse().ok()),
    })
}

/// The recipe of `count` images from `first_seed` (a grid when `grid_columns` is set).
fn recipe(
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    model: &ModelRef,
    size: usize,
    first_seed: u64,
    count: usize,
    grid_columns: Option<usize>,
) -> Result<Recipe, PipelineError> {
    let hash = |p: &Option<PathBuf>| {
        p.as_deref()
            .map(|p| file_sha256(p).map_err(|_| PipelineError::Invalid(format!("cannot read {}", p.display()))))
            .transpose()
    };
    Ok(Recipe {
        recipe_version: RECIPE_VERSION,
        software: software(),
        model: model.clone(),
        sampler: spec.sampler,
        options: spec.options,
        schedule: spec.schedule,
        steps: spec.steps,
        final_sigma: spec.final_sigma,
        noise: spec.noise,
        sigmas: sigmas.as_slice().to_vec(),
        seed: first_seed,
        count,
        grid_columns,
        width: size,
        height: size,
        conditioning: if count == 1 { spec.conditioning.for_image((first_seed - spec.seed) as usize) } else { spec.conditioning.clone() },
        init_image_sha256: hash(&spec.conditioning.init_image)?,
        mask_sha256: hash(&spec.conditioning.mask)?,
    })
}

/// Writes `images` as one grid PNG at `out`, or with `separate` as `out/seed-N.png`; every
/// file carries its recipe. Returns the paths written.
pub fn write_images(
    images: &[DynamicImage],
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    model: &ModelRef,
    out: &Path,
    separate: bool,
) -> Result<Vec<PathBuf>, PipelineError> {
    let size = images.first().map_or(0, |i| i.width() as usize);
    if separate {
        let mut paths = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let seed = spec.seed + i as u64;
            let path = out.join(format!("seed-{seed}.png"));
            let r = recipe(spec, sigmas, model, size, seed, 1, None)?;
            write_png_with_text(img, &path, &r.text_chunks())?;
            paths.push(path);
        }
        Ok(paths)
    } else {
        // Several prompts: one column per prompt (image i has prompt i mod k).
        let prompts = spec.conditioning.prompts.len();
        let cols = if prompts > 1 { prompts.min(images.len()) } else { grid_columns(images.len()) };
        let r = recipe(spec, sigmas, model, size, spec.seed, images.len(), Some(cols))?;
        write_png_with_text(&grid(images, cols, 2), out, &r.text_chunks())?;
        Ok(vec![out.to_path_buf()])
    }
}

/// Checks that the model at `path` is the one the recipe names; a different file is an
/// error unless `force`, in which case the mismatch is returned as a warning.
pub fn check_model_hash(recipe: &Recipe, path: &Path, force: bool) -> Result<Option<String>, PipelineError> {
    let actual = file_sha256(path)?;
    if actual == recipe.model.sha256 {
        return Ok(None);
    }
    let msg = format!(
        "model file {} has SHA-256 {}…, the image was made with {}… ({})",
        path.display(),
        &actual[..12],
        &recipe.model.sha256[..recipe.model.sha256.len().min(12)],
        recipe.model.path.display()
    );
    if force {
        Ok(Some(msg))
    } else {
        Err(PipelineError::Invalid(msg + "; pass --force to regenerate with it anyway"))
    }
}

/// Regenerates the image (or grid) a recipe describes with `model`, over the recipe's
/// exact σ's and seeds.
pub fn regenerate(
    recipe: &Recipe,
    model: &LoadedModel,
    device: &Device,
    observer: &mut impl Observer<stipple_nn::TensorLatent>,
) -> Result<DynamicImage, PipelineError> {
    let sigmas = Sigmas::new(recipe.sigmas.clone())
        .map_err(|e| PipelineError::Invalid(format!("the recipe's sigmas are invalid: {e}")))?;
    let inputs = [
        ("init image", &recipe.conditioning.init_image, &recipe.init_image_sha256),
        ("mask", &recipe.conditioning.mask, &recipe.mask_sha256),
    ];
    for (what, path, recorded) in inputs {
        if let (Some(path), Some(recorded)) = (path, recorded) {
            let actual = file_sha256(path)
                .map_err(|_| PipelineError::Invalid(format!("cannot read the {what} {} that the recipe names", path.display())))?;
            if actual != *recorded {
                return Err(PipelineError::Invalid(format!(
                    "the {what} {} has changed since the image was made (its SHA-256 was {}…); the result would differ",
                    path.display(),
                    &recorded[..recorded.len().min(12)]
                )));
            }
        }
    }
    let spec = GenerateSpec {
        sampler: recipe.sampler,
        schedule: recipe.schedule,
        steps: recipe.steps,
        final_sigma: recipe.final_sigma,
        noise: recipe.noise,
        seed: recipe.seed,
        count: recipe.count,
        batch_size: recipe.count,
        options: recipe.options,
        conditioning: recipe.conditioning.clone(),
    };
    let images = to_images(&generate(model, &spec, &sigmas, device, observer)?)?;
    Ok(match recipe.grid_columns {
        Some(cols) => grid(&images, cols, 2),
        None => images.into_iter().next().expect("count ≥ 1"),
    })
}
