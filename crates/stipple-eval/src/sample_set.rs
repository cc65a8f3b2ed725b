//! A model's images as the evaluator takes them: generated with the pipeline every front end
//! uses, quantised to 8 bits as if written to PNG files and read back.

use std::path::PathBuf;

use candle_core::Device;
use stipple_nn::TensorLatent;
use stipple_pipeline::{to_images, GenerateSpec, Model};
use stipple_sample::{Observer, Sigmas};

use crate::{EvalError, NamedImage};

/// Generates the images of `spec` with `model` (image i named `seed-{seed + i}`); also returns
/// the number of network evaluations per image.
pub fn generate_set(
    model: &Model,
    spec: &GenerateSpec,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<(Vec<NamedImage>, usize), EvalError> {
    let sigmas = model.sigmas(spec)?;
    let batch = model.generate(spec, &sigmas, device, observer)?;
    let images = to_images(&batch)?
        .into_iter()
        .enumerate()
        .map(|(i, image)| NamedImage { path: PathBuf::from(format!("seed-{}", spec.seed + i as u64)), image })
        .collect();
    Ok((images, evaluations_per_image(spec, &sigmas)))
}

/// Network evaluations per image of `spec` over `sigmas`: steps × the sampler's evaluations
/// per step, less the second evaluation two-stage samplers skip on a last step to σ = 0
/// ([`stipple_sample::SamplerKind::evals_per_step`]).
pub fn evaluations_per_image(spec: &GenerateSpec, sigmas: &Sigmas) -> usize {
    let e = spec.sampler.evals_per_step();
    let to_zero = sigmas.as_slice().last() == Some(&0.0);
    spec.steps * e - if to_zero { e - 1 } else { 0 }
}
