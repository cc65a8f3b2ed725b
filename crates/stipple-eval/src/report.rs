//! All metrics of one comparison, as a table and as JSON.

use serde::Serialize;

use crate::{frechet_distance_of, kid, precision_recall, EvalError, Features, Kid, KidOptions, PrecisionRecall};

/// Settings of [`evaluate`].
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    pub kid: KidOptions,
    /// Neighbourhood size k of precision/recall (Kynkäänniemi et al. use 3).
    pub k: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { kid: KidOptions::default(), k: 3 }
    }
}

/// The metrics of a generated set against a reference set in one feature space.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Which features: "inception" (FID/KID proper) or "domain:<file>".
    pub feature_space: String,
    pub dim: usize,
    pub generated: usize,
    pub reference: usize,
    /// Fréchet distance (FID in Inception space).
    pub fd: f64,
    pub kid: Kid,
    pub k: usize,
    pub precision_recall: PrecisionRecall,
}

/// Every metric of `generated` against `reference`. Needs at least `k + 1` samples per set
/// (and 2 for the covariance and KID).
pub fn evaluate(generated: &Features, reference: &Features, feature_space: &str, options: EvalOptions) -> Result<EvalReport, EvalError> {
    generated.check_pair(reference, "the evaluation", (options.k + 1).max(2))?;
    Ok(EvalReport {
        feature_space: feature_space.to_string(),
        dim: generated.dim(),
        generated: generated.len(),
        reference: reference.len(),
        fd: frechet_distance_of(generated, reference)?,
        kid: kid(generated, reference, options.kid)?,
        k: options.k,
        precision_recall: precision_recall(generated, reference, options.k)?,
    })
}

impl EvalReport {
    /// A two-column text table.
    pub fn table(&self) -> String {
        let fd_name = if self.feature_space == "inception" { "FID" } else { "FD" };
        let kid_name = if self.feature_space == "inception" { "KID" } else { "KD (kernel distance)" };
        let rows = [
            ("features".to_string(), format!("{} ({}-d)", self.feature_space, self.dim)),
            ("images".to_string(), format!("{} generated, {} reference", self.generated, self.reference)),
            (fd_name.to_string(), format!("{:.4}", self.fd)),
            (kid_name.to_string(), format!("{:.6} ± {:.6} (subsets of {})", self.kid.mean, self.kid.std, self.kid.subset_size)),
            (format!("precision (k={})", self.k), format!("{:.4}", self.precision_recall.precision)),
            (format!("recall (k={})", self.k), format!("{:.4}", self.precision_recall.recall)),
        ];
        let w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
        rows.iter().map(|(k, v)| format!("{k:<w$}  {v}\n")).collect()
    }
}
