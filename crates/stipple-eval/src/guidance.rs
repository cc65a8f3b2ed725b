//! The quality–adherence trade-off of classifier-free guidance (Ho & Salimans 2022, Fig. 1):
//! per guidance scale, how often the domain classifier sees the class (or caption) that was
//! asked for, and the Fréchet distance and precision/recall of the same samples against the
//! real data. Accuracy rises with the scale while diversity (recall) falls.

use candle_core::Device;
use serde::Serialize;
use stipple_nn::TensorLatent;
use stipple_pipeline::{GenerateRequest, Model};
use stipple_sample::Observer;

use crate::{frechet_distance_of, generate_set, precision_recall, DomainFeatureNet, EvalError, FeatureNet, Features};

/// One guidance scale's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuidanceRow {
    pub scale: f64,
    /// Samples generated at this scale (`per_class` × classes).
    pub samples: usize,
    /// Fraction the classifier assigns to the class asked for.
    pub accuracy: f64,
    /// Fréchet distance to the reference features.
    pub fd: f64,
    pub precision: f64,
    pub recall: f64,
}

/// How a model is asked for one of the classifier's classes.
fn ask(model: &Model, class: &str, base: &GenerateRequest) -> Result<GenerateRequest, EvalError> {
    let prompt = || Ok(GenerateRequest { prompts: vec![class.to_string()], ..base.clone() });
    let Model::Stipple(model) = model else {
        return prompt(); // a Stable Diffusion checkpoint takes prompts
    };
    if !model.config.classes.is_empty() {
        if !model.config.classes.iter().any(|c| c == class) {
            return Err(EvalError::setting(
                "features",
                format!("the classifier's class \"{class}\" is not one of the model's classes ({})", model.config.classes.join(", ")),
            ));
        }
        return Ok(GenerateRequest { class: Some(class.to_string()), ..base.clone() });
    }
    if model.text.is_some() {
        return prompt();
    }
    Err(EvalError::setting("model", "guidance needs a class-conditional or prompt model; this one is unconditional"))
}

/// For every scale of `scales`: `per_class` samples of each of `classifier`'s classes (as a
/// class, or as the prompt of a prompt model), seeds `1000·k + i` for class k — the same for
/// every scale — with the other settings of `base`; their accuracy under `classifier` and
/// their FD and precision/recall (neighbourhood `k`) against `reference` in its feature space.
#[allow(clippy::too_many_arguments)]
pub fn guidance_sweep(
    model: &Model,
    classifier: &DomainFeatureNet,
    reference: &Features,
    base: &GenerateRequest,
    scales: &[f64],
    per_class: usize,
    k: usize,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Vec<GuidanceRow>, EvalError> {
    let classes = &classifier.config().classes;
    if per_class == 0 || per_class * classes.len() < k + 1 {
        return Err(EvalError::setting("per_class", format!("at least {} samples in all are needed for k = {k}, got {per_class} per class", k + 1)));
    }
    let mut rows = Vec::with_capacity(scales.len());
    for &scale in scales {
        let (mut images, mut right) = (Vec::new(), 0);
        for (i, class) in classes.iter().enumerate() {
            let request = GenerateRequest {
                seed: Some(1000 * i as u64),
                count: Some(per_class),
                guidance_scale: Some(scale),
                ..ask(model, class, base)?
            };
            let (set, _) = generate_set(model, &request.validate()?, device, observer)?;
            right += classifier.classify(&set)?.iter().filter(|&&p| p as usize == i).count();
            images.extend(set);
        }
        let features = classifier.embed(&images)?;
        let pr = precision_recall(&features, reference, k)?;
        rows.push(GuidanceRow {
            scale,
            samples: images.len(),
            accuracy: right as f64 / images.len() as f64,
            fd: frechet_distance_of(&features, reference)?,
            precision: pr.precision,
            recall: pr.recall,
        });
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn guidance_table(rows: &[GuidanceRow]) -> String {
    let mut out = String::from("| guidance scale | samples | classifier agrees | FD | precision | recall |\n|---|---|---|---|---|---|\n");
    for r in rows {
        out += &format!("| {} | {} | {:.1}% | {:.3} | {:.3} | {:.3} |\n", r.scale, r.samples, 100.0 * r.accuracy, r.fd, r.precision, r.recall);
    }
    out
}
