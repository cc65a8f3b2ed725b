//! CLIP score (Hessel et al. 2021, "CLIPScore", eq. 1): how well an image matches a text in
//! CLIP's joint space, `w · max(cos(E_I, E_C), 0)` per image–text pair, averaged over the
//! pairs, with torchmetrics' weight `w = 100` (`torchmetrics.multimodal.CLIPScore`) in place of
//! the paper's 2.5.
//!
//! torchmetrics clamps the mean of `100 · cos` at 0 instead of each pair; the two agree
//! whenever no cosine is negative (the case for a trained CLIP on real images, whose cosines
//! lie around 0.2–0.35). The per-pair cosines are kept so either can be formed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::model::ClipModel;
use crate::{EvalError, NamedImage};

/// One image–prompt pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairScore {
    pub image: PathBuf,
    pub prompt: String,
    /// `cos(E_I, E_C)`.
    pub cosine: f64,
    /// `100 · max(cos, 0)`.
    pub score: f64,
}

/// CLIP score of a set of pairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClipScore {
    /// The mean of the pairs' scores.
    pub mean: f64,
    /// Their sample standard deviation (n − 1); `None` for a single pair.
    pub std: Option<f64>,
    pub pairs: Vec<PairScore>,
}

/// Cosine similarity of two vectors, in f64.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// CLIP score of `images[i]` against `prompts[i]`, or against `prompts[0]` for every image
/// when one prompt is given. Each distinct prompt is encoded once.
pub fn clip_score(model: &ClipModel, images: &[NamedImage], prompts: &[String]) -> Result<ClipScore, EvalError> {
    if images.is_empty() {
        return Err(EvalError::TooFewSamples { metric: "CLIP score", needed: 1, got: 0 });
    }
    if prompts.len() != 1 && prompts.len() != images.len() {
        return Err(EvalError::setting("prompts", format!("one prompt for all images or one per image ({}), got {}", images.len(), prompts.len())));
    }
    let distinct: Vec<&str> = prompts.iter().map(String::as_str).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let text: Vec<Vec<f32>> = model.text_features(&distinct)?.to_vec2()?;
    let text: BTreeMap<&str, &[f32]> = distinct.iter().copied().zip(text.iter().map(Vec::as_slice)).collect();
    let image: Vec<Vec<f32>> = model.image_features(images)?.to_vec2()?;
    let pairs: Vec<PairScore> = images
        .iter()
        .zip(&image)
        .enumerate()
        .map(|(i, (im, e))| {
            let prompt = &prompts[if prompts.len() == 1 { 0 } else { i }];
            let cos = cosine(e, text[prompt.as_str()]);
            if !cos.is_finite() {
                return Err(EvalError::NonFinite { what: "CLIP image–text cosine", row: i, col: 0 });
            }
            Ok(PairScore { image: im.path.clone(), prompt: prompt.clone(), cosine: cos, score: 100.0 * cos.max(0.0) })
        })
        .collect::<Result<_, _>>()?;
    let n = pairs.len() as f64;
    let mean = pairs.iter().map(|p| p.score).sum::<f64>() / n;
    let std = (pairs.len() > 1).then(|| (pairs.iter().map(|p| (p.score - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Ok(ClipScore { mean, std, pairs })
}
