//! Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
//! Metric for Assessing Generative Models", §2): each set's manifold is the union of balls
//! around its samples reaching their k-th nearest neighbour; precision is the fraction of
//! generated samples inside the real manifold, recall the fraction of real samples inside
//! the generated one. As torch-fidelity's `calculate_precision_recall_full` (k = 3, a point
//! on a ball's boundary counts as inside).

use serde::Serialize;

use crate::{EvalError, Features};

/// Precision, recall and their harmonic mean (torch-fidelity's `f_score`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
    pub f_score: f64,
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// The distance from each sample to its k-th nearest neighbour in its own set (the sample
/// itself, at distance 0, not counted).
fn knn_radii(set: &Features, k: usize) -> Vec<f64> {
    (0..set.len())
        .map(|i| {
            let mut d: Vec<f64> = (0..set.len()).map(|j| distance(set.row(i), set.row(j))).collect();
            let (_, kth, _) = d.select_nth_unstable_by(k, f64::total_cmp);
            *kth
        })
        .collect()
}

/// Fraction of `queries` inside some ball of `(centres, radii)`.
fn coverage(queries: &Features, centres: &Features, radii: &[f64]) -> f64 {
    let inside = (0..queries.len()).filter(|&i| (0..centres.len()).any(|j| distance(queries.row(i), centres.row(j)) <= radii[j])).count();
    inside as f64 / queries.len() as f64
}

/// Precision and recall of `generated` against `real` with `k`-nearest-neighbour balls;
/// each set needs at least `k + 1` samples.
pub fn precision_recall(generated: &Features, real: &Features, k: usize) -> Result<PrecisionRecall, EvalError> {
    if k == 0 {
        return Err(EvalError::setting("neighbourhood", "k ≥ 1 nearest neighbours"));
    }
    generated.check_pair(real, "precision/recall", k + 1)?;
    let precision = coverage(generated, real, &knn_radii(real, k));
    let recall = coverage(real, generated, &knn_radii(generated, k));
    let f_score = 2.0 * precision * recall / (precision + recall).max(1e-5);
    Ok(PrecisionRecall { precision, recall, f_score })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(xs: &[f64]) -> Features {
        Features::new(xs.to_vec(), 1).unwrap()
    }

    #[test]
    fn a_far_cluster_has_no_precision_and_a_tight_one_no_recall() {
        let real = line(&[0.0, 1.0, 2.0, 3.0, 4.0]);
        // All generated samples far away: nothing inside the real manifold.
        let far = precision_recall(&line(&[100.0, 101.0, 102.0, 103.0]), &real, 1).unwrap();
        assert_eq!((far.precision, far.recall), (0.0, 0.0));
        // Generated samples crowded at 2: all precise; their 1-NN balls (radius 0.01) hold
        // only the real sample at 2.
        let tight = precision_recall(&line(&[2.0, 2.01, 1.99, 2.0]), &real, 1).unwrap();
        assert_eq!(tight.precision, 1.0);
        assert_eq!(tight.recall, 0.2);
    }

    #[test]
    fn too_few_samples_for_k_are_refused() {
        let err = precision_recall(&line(&[0.0, 1.0, 2.0]), &line(&[0.0, 1.0, 2.0, 3.0]), 3).unwrap_err();
        assert!(matches!(err, EvalError::TooFewSamples { needed: 4, got: 3, .. }), "{err}");
    }
}
