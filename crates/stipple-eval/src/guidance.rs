//! The quality–adherence trade-off of classifier-free guidance (Ho & Salimans 2022, Fig. 1):
//! per guidance scale, how often the domain classifier sees the class (or caption) that was
//! asked for, and the Fréchet distance and precision/recall of the same samples against the
//! real data. Accuracy rises with the scale while diversity (recall) falls. With a CLIP model,
//! also the CLIP score (Hessel et al. 2021) of the samples against the class name or caption.

use candle_core::Device;
use serde::Serialize;
use stipple_nn::TensorLatent;
use stipple_pipeline::{GenerateRequest, Model};
use stipple_sample::Observer;

use crate::{clip_score, frechet_distance_of, generate_set, precision_recall, ClipModel, DomainFeatureNet, EvalError, FeatureNet, Features};

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
    /// Mean CLIP score of the samples against the class name (caption) asked for, when a CLIP
    /// model was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_score: Option<f64>,
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
/// their FD and precision/recall (neighbourhood `k`) against `reference` in its feature space,
/// and their mean CLIP score against the class name under `clip`, if given.
#[allow(clippy::too_many_arguments)]
pub fn guidance_sweep(
    model: &Model,
    classifier: &DomainFeatureNet,
    clip: Option<&ClipModel>,
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
        let (mut images, mut right, mut clip_total) = (Vec::new(), 0, 0.0);
        for (i, class) in classes.iter().enumerate() {
            let request = GenerateRequest {
                seed: Some(1000 * i as u64),
                count: Some(per_class),
                guidance_scale: Some(scale),
                ..ask(model, class, base)?
            };
            let (set, _) = generate_set(model, &request.validate()?, device, observer)?;
            right += classifier.classify(&set)?.iter().filter(|&&p| p as usize == i).count();
            if let Some(clip) = clip {
                clip_total += clip_score(clip, &set, std::slice::from_ref(class))?.mean * set.len() as f64;
            }
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
            clip_score: clip.map(|_| clip_total / images.len() as f64),
        });
    }
    Ok(rows)
}

/// The rows as a Markdown table (with a CLIP score column when the rows have one).
pub fn guidance_table(rows: &[GuidanceRow]) -> String {
    let clip = rows.iter().any(|r| r.clip_score.is_some());
    let mut out = String::from("| guidance scale | samples | classifier agrees | FD | precision | recall |");
    out += if clip { " CLIP score |\n|---|---|---|---|---|---|---|\n" } else { "\n|---|---|---|---|---|---|\n" };
    for r in rows {
        out += &format!("| {} | {} | {:.1}% | {:.3} | {:.3} | {:.3} |", r.scale, r.samples, 100.0 * r.accuracy, r.fd, r.precision, r.recall);
        out += &match (clip, r.clip_score) {
            (false, _) => "\n".to_string(),
            (true, Some(c)) => format!(" {c:.2} |\n"),
            (true, None) => " – |\n".to_string(),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gains_a_clip_column_only_with_clip_scores() {
        let row = GuidanceRow { scale: 2.0, samples: 10, accuracy: 0.5, fd: 1.0, precision: 0.7, recall: 0.6, clip_score: None };
        let plain = guidance_table(std::slice::from_ref(&row));
        assert!(!plain.contains("CLIP") && plain.ends_with("| 2 | 10 | 50.0% | 1.000 | 0.700 | 0.600 |\n"), "{plain}");
        let with = guidance_table(&[GuidanceRow { clip_score: Some(23.456), ..row }]);
        assert!(with.contains("| CLIP score |\n|---|---|---|---|---|---|---|\n") && with.ends_with("| 0.600 | 23.46 |\n"), "{with}");
    }
}
