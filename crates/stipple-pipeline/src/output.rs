//! Writing generated images with their recipes, and regenerating an image (or any output)
//! from one.

use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::Device;
use image::DynamicImage;
use stipple_nn::LoadedModel;
use stipple_sample::{Observer, Sigmas};

use crate::recipe::{software, BatchRef, InputRef, ModelRef, Recipe, RECIPE_VERSION};
use crate::{file_sha256, grid, grid_columns, hashed_file, to_images, write_atomic, GenerateSpec, ImageInput, Model, PipelineError};

/// The model file behind a recipe: its path, hash and training step.
pub fn model_ref(path: &Path, model: &LoadedModel) -> Result<ModelRef, PipelineError> {
    Ok(ModelRef {
        path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        sha256: file_sha256(path)?,
        step: model.metadata.get("step").and_then(|s| s.parse().ok()),
        loras: vec![],
        config_dir: None,
    })
}

/// The recipe of `count` images from `first_seed` (a grid when `grid_columns` is set); a single
/// image records the batch it was sampled in ([`BatchRef`]).
pub fn recipe(
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    model: &ModelRef,
    (width, height): (usize, usize),
    first_seed: u64,
    count: usize,
    grid_columns: Option<usize>,
) -> Recipe {
    Recipe {
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
        rng: spec.rng,
        eta_noise_seed_delta: spec.eta_noise_seed_delta,
        count,
        grid_columns,
        width,
        height,
        conditioning: if count == 1 { spec.conditioning.for_image((first_seed - spec.seed) as usize) } else { spec.conditioning.clone() },
        vae_tiling: spec.vae_tiling,
        init_image: spec.init_image.as_ref().map(InputRef::of),
        mask: spec.mask.as_ref().map(InputRef::of),
        batch: if count == 1 { batch_of(spec, first_seed) } else { None },
    }
}

/// The batch `spec` samples the seed `seed` in, when it holds other seeds too (the batches of
/// `batch_size` seeds from `spec.seed`, the last one shorter).
fn batch_of(spec: &GenerateSpec, seed: u64) -> Option<BatchRef> {
    let start = (seed.checked_sub(spec.seed)? as usize) / spec.batch_size * spec.batch_size;
    let size = spec.batch_size.min(spec.count.checked_sub(start)?);
    (size > 1).then_some(BatchRef { first_seed: spec.seed + start as u64, size })
}

/// Images as PNG bytes, each carrying its recipe: one file per image (image i has seed
/// `spec.seed + i`), or with `as_grid` one grid of them all (one column per prompt when there
/// are several prompts).
pub fn encode_images(
    images: &[DynamicImage],
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    model: &ModelRef,
    as_grid: bool,
) -> Result<Vec<(Recipe, Vec<u8>)>, PipelineError> {
    let size = images.first().map_or((0, 0), |i| (i.width() as usize, i.height() as usize));
    if as_grid {
        let prompts = spec.conditioning.prompts.len();
        let cols = if prompts > 1 { prompts.min(images.len()) } else { grid_columns(images.len()) };
        let r = recipe(spec, sigmas, model, size, spec.seed, images.len(), Some(cols));
        let png = r.encode_png(&grid(images, cols, 2))?;
        return Ok(vec![(r, png)]);
    }
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let r = recipe(spec, sigmas, model, size, spec.seed + i as u64, 1, None);
            let png = r.encode_png(img)?;
            Ok((r, png))
        })
        .collect()
}

/// Checks before sampling that `out` can be written: a `.png` file for a grid (the one format
/// that carries the recipe), any folder for separate images.
pub fn check_output_path(out: &Path, separate: bool) -> Result<(), PipelineError> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !separate && ext.as_deref() != Some("png") {
        return Err(PipelineError::bad(
            "out",
            format!("{} must end in .png: images are written as PNG, the format that carries their recipe", out.display()),
        ));
    }
    Ok(())
}

/// Writes `images` as one grid PNG at `out`, or with `separate` as `out/seed-N.png`; every
/// file carries its recipe and is written atomically. Returns the paths written.
pub fn write_images(
    images: &[DynamicImage],
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    model: &ModelRef,
    out: &Path,
    separate: bool,
) -> Result<Vec<PathBuf>, PipelineError> {
    check_output_path(out, separate)?;
    let encoded = encode_images(images, spec, sigmas, model, !separate)?;
    let mut paths = Vec::with_capacity(encoded.len());
    for (r, png) in encoded {
        let path = if separate { out.join(format!("seed-{}.png", r.seed)) } else { out.to_path_buf() };
        write_atomic(&path, &png)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Checks that the model at `path` (a file or a diffusers folder) and the LoRAs merged into it
/// are the ones the recipe names; a different file is bad input unless `force`, in which case
/// the mismatches are returned as a warning.
pub fn check_model_hash(recipe: &Recipe, path: &Path, force: bool) -> Result<Option<String>, PipelineError> {
    let mut files = vec![("model file", hashed_file(path)?, recipe.model.sha256.as_str(), recipe.model.path.as_path())];
    for lora in &recipe.model.loras {
        if !lora.path.is_file() {
            return Err(PipelineError::bad("lora", format!("LoRA file {} is missing; the image was made with it merged", lora.path.display())));
        }
        files.push(("LoRA file", lora.path.clone(), lora.sha256.as_str(), lora.path.as_path()));
    }
    let mut mismatches = Vec::new();
    for (what, file, recorded, recorded_path) in files {
        let actual = file_sha256(&file)?;
        if actual != recorded {
            mismatches.push(format!(
                "{what} {} has SHA-256 {}…, the image was made with {}… ({})",
                file.display(),
                &actual[..12],
                &recorded[..recorded.len().min(12)],
                recorded_path.display()
            ));
        }
    }
    match (mismatches.is_empty(), force) {
        (true, _) => Ok(None),
        (false, true) => Ok(Some(mismatches.join("; "))),
        (false, false) => Err(PipelineError::bad("model", mismatches.join("; ") + "; the same files are needed for the same image (force regenerates anyway)")),
    }
}

/// Regenerates the image (or grid) a recipe describes with `model`, over the recipe's
/// exact σ's and seeds; `init_image` and `mask` are the recipe's inputs, checked against
/// their recorded hashes.
pub fn regenerate(
    recipe: &Recipe,
    model: &Model,
    init_image: Option<ImageInput>,
    mask: Option<ImageInput>,
    device: &Device,
    observer: &mut impl Observer<stipple_nn::TensorLatent>,
) -> Result<DynamicImage, PipelineError> {
    let (spec, sigmas, outputs) = replay(recipe, init_image, mask)?;
    let images = to_images(&model.generate(&spec, &sigmas, device, observer)?.narrow(0, outputs.start, outputs.len())?)?;
    Ok(match recipe.grid_columns {
        Some(cols) => grid(&images, cols, 2),
        None => images.into_iter().next().expect("count ≥ 1"),
    })
}

/// The generation a recipe describes — of images, clips or forecast paths: its spec, its
/// exact σ's, and which of the spec's samples are the recipe's outputs. The samples are made
/// in one batch: the recipe's own (seeds `seed ..` `seed + count`), or for a single output
/// sampled with others, that batch again ([`BatchRef`]). `init_image` and `mask` are the
/// recipe's inputs, checked against their recorded hashes.
pub fn replay(recipe: &Recipe, init_image: Option<ImageInput>, mask: Option<ImageInput>) -> Result<(GenerateSpec, Sigmas, Range<usize>), PipelineError> {
    let sigmas = Sigmas::new(recipe.sigmas.clone())
        .map_err(|e| PipelineError::bad("file", format!("the recipe's sigmas are invalid: {e}")))?;
    for (setting, given, recorded) in [("init_image", &init_image, &recipe.init_image), ("mask", &mask, &recipe.mask)] {
        match (given, recorded) {
            (None, None) => {}
            (Some(_), None) => return Err(PipelineError::bad(setting, "the recipe used none; leave it out")),
            (None, Some(_)) => return Err(PipelineError::bad(setting, "the recipe used one; give the same image")),
            (Some(g), Some(r)) if g.sha256() != r.sha256 => {
                return Err(PipelineError::bad(
                    setting,
                    format!(
                        "this image differs from the one the recipe was made with (its SHA-256 was {}…); the result would differ",
                        &r.sha256[..r.sha256.len().min(12)]
                    ),
                ))
            }
            (Some(_), Some(_)) => {}
        }
    }
    let (seed, count, outputs) = match recipe.batch {
        None => (recipe.seed, recipe.count, 0..recipe.count),
        Some(b) => {
            let k = recipe.seed.checked_sub(b.first_seed).filter(|&k| recipe.count == 1 && k < b.size as u64).ok_or_else(|| {
                PipelineError::bad("file", format!("the recipe's batch ({} seeds from {}) does not hold its single output's seed {}", b.size, b.first_seed, recipe.seed))
            })? as usize;
            (b.first_seed, b.size, k..k + 1)
        }
    };
    if count == 0 || count > crate::MAX_COUNT {
        return Err(PipelineError::bad("file", format!("the recipe's batch of {count} samples is not in 1 to {}", crate::MAX_COUNT)));
    }
    let blur = recipe.conditioning.mask_blur;
    if !(0.0..=crate::MAX_MASK_BLUR).contains(&blur) || (blur > 0.0 && recipe.mask.is_none()) {
        return Err(PipelineError::bad("file", format!("the recipe's mask blur {blur} is not in [0, {}] pixels with a mask", crate::MAX_MASK_BLUR)));
    }
    let spec = GenerateSpec {
        sampler: recipe.sampler,
        schedule: recipe.schedule,
        steps: recipe.steps,
        final_sigma: recipe.final_sigma,
        noise: recipe.noise,
        seed,
        rng: recipe.rng,
        eta_noise_seed_delta: recipe.eta_noise_seed_delta,
        count,
        batch_size: count,
        options: recipe.options,
        conditioning: recipe.conditioning.clone(),
        init_image,
        mask,
        width: Some(recipe.width),
        height: Some(recipe.height),
        vae_tiling: recipe.vae_tiling,
    };
    Ok((spec, sigmas, outputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenerateRequest;

    #[test]
    fn a_single_output_records_its_batch_and_replays_it() {
        let spec = GenerateRequest { seed: Some(10), count: Some(5), batch_size: Some(2), ..Default::default() }.validate().unwrap();
        let sigmas = Sigmas::new(vec![2.0, 1.0, 0.0]).unwrap();
        let model = ModelRef { path: "m.safetensors".into(), sha256: "ab".repeat(32), step: None, loras: vec![], config_dir: None };
        let one = |seed| recipe(&spec, &sigmas, &model, (8, 8), seed, 1, None);
        // Batches {10, 11}, {12, 13}, {14}: the last one holds its seed alone.
        assert_eq!(one(13).batch, Some(BatchRef { first_seed: 12, size: 2 }));
        assert_eq!(one(14).batch, None);
        assert_eq!(recipe(&spec, &sigmas, &model, (8, 8), 10, 5, Some(3)).batch, None, "a grid is its own batch");
        let (again, _, outputs) = replay(&one(13), None, None).unwrap();
        assert_eq!((again.seed, again.count, again.batch_size, outputs), (12, 2, 2, 1..2));
        let (again, _, outputs) = replay(&one(14), None, None).unwrap();
        assert_eq!((again.seed, again.count, outputs), (14, 1, 0..1));
        // A batch that does not hold the output's seed is refused, not replayed.
        let mut bad = one(13);
        bad.batch = Some(BatchRef { first_seed: u64::MAX, size: 2 });
        let e = replay(&bad, None, None).unwrap_err().to_string();
        assert!(e.contains("does not hold its single output's seed 13"), "{e}");
        // An edited recipe's mask blur out of range (or without a mask) is refused before any
        // blur runs.
        for blur in [f64::NAN, -1.0, 1e9, 4.0] {
            let mut bad = one(14);
            bad.conditioning.mask_blur = blur;
            let e = replay(&bad, None, None).unwrap_err().to_string();
            assert!(e.contains("mask blur"), "{blur}: {e}");
        }
    }
}
