//! Scoring a forecaster on the held-out windows of a data set: its sample paths per window
//! against the actual values, by the CRPS of the ensemble, the MASE of its median and the
//! coverage of its central 50% and 90% intervals.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{crps_ensemble, interval_coverage, mase, quantile, HeldOutSpec, HeldOutWindow, SeriesError};

/// One model's forecasts for one data set, as files carry them (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastFile {
    pub dataset: String,
    pub model: String,
    pub windows: Vec<WindowForecast>,
}

/// The forecast at one origin: `paths[s][h]` is sample path s at step h (a point forecast is
/// one path; quantile forecasts are given as one path per quantile level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowForecast {
    pub origin: usize,
    pub paths: Vec<Vec<f64>>,
}

/// The scores of a forecaster over a data set's held-out windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastScores {
    /// Mean CRPS ([`crps_ensemble`]) over every step of every window, in the series' units.
    pub crps: f64,
    /// Mean over windows of the MASE ([`mase`]) of the per-step ensemble median, each window
    /// scaled by its own history with the data set's season.
    pub mase: f64,
    /// Fraction of actual values inside the central 50% and 90% intervals of their ensemble
    /// ([`interval_coverage`]); `None` for a point forecast (one path).
    pub coverage_50: Option<f64>,
    pub coverage_90: Option<f64>,
    pub windows: usize,
}

/// Reads a forecast file written by a reference script or a model.
pub fn read_forecasts(path: &Path) -> Result<ForecastFile, SeriesError> {
    let bad = |reason: String| SeriesError::Table { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("not a forecast file: {e}")))
}

/// Scores `forecasts` on `windows` (from [`HeldOutSpec::held_out`]): one forecast per window,
/// at the same origins, each path as long as the horizon.
pub fn score_forecasts(spec: &HeldOutSpec, windows: &[HeldOutWindow], forecasts: &[WindowForecast]) -> Result<ForecastScores, SeriesError> {
    if windows.is_empty() {
        return Err(SeriesError::TooShort { what: "the scores", needed: 1, got: 0 });
    }
    if forecasts.len() != windows.len() {
        return Err(SeriesError::LengthMismatch { what: "the forecasts against the held-out windows", a: forecasts.len(), b: windows.len() });
    }
    let (mut crps, mut steps, mut mase_sum) = (0.0, 0usize, 0.0);
    let (mut inside_50, mut inside_90) = (0.0, 0.0);
    let point = forecasts.iter().all(|f| f.paths.len() == 1);
    for (w, f) in windows.iter().zip(forecasts) {
        if w.origin != f.origin {
            return Err(SeriesError::BadSetting { setting: "forecasts", expected: format!("{}: a forecast at origin {}, got one at {}", spec.name, w.origin, f.origin) });
        }
        if let Some(p) = f.paths.iter().find(|p| p.len() != w.actual.len()) {
            return Err(SeriesError::LengthMismatch { what: "a sample path against the horizon", a: p.len(), b: w.actual.len() });
        }
        let mut median = Vec::with_capacity(w.actual.len());
        for (t, y) in w.actual.iter().enumerate() {
            let mut column: Vec<f64> = f.paths.iter().map(|p| p[t]).collect();
            crps += crps_ensemble(&column, *y)?;
            column.sort_by(f64::total_cmp);
            median.push(quantile(&column, 0.5)?);
            steps += 1;
        }
        mase_sum += mase(&median, &w.actual, &w.history, spec.season)?;
        if !point {
            inside_50 += interval_coverage(&f.paths, &w.actual, 0.5)? * w.actual.len() as f64;
            inside_90 += interval_coverage(&f.paths, &w.actual, 0.9)? * w.actual.len() as f64;
        }
    }
    let coverage = |inside: f64| (!point).then_some(inside / steps as f64);
    Ok(ForecastScores { crps: crps / steps as f64, mase: mase_sum / windows.len() as f64, coverage_50: coverage(inside_50), coverage_90: coverage(inside_90), windows: windows.len() })
}
