//! Training windows of a series: `context` observed values followed by `horizon` values to
//! forecast, each window scaled by the mean and standard deviation of its own context (the
//! per-series scaling of DeepAR-style forecasters, Salinas et al. 2020, here per window so a
//! forecast never sees the values it predicts).

use crate::SeriesError;

/// One window: `values` = context then horizon, scaled as `(x − mean) / scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub values: Vec<f64>,
    pub mean: f64,
    pub scale: f64,
}

impl Window {
    /// Back to the series' units.
    pub fn unscale(&self, scaled: &[f64]) -> Vec<f64> {
        scaled.iter().map(|v| v * self.scale + self.mean).collect()
    }
}

/// The mean and standard deviation of `context` (population form); a constant context gets
/// scale 1 so it is only shifted.
pub fn context_scaling(context: &[f64]) -> (f64, f64) {
    let n = context.len() as f64;
    let mean = context.iter().sum::<f64>() / n;
    let sd = (context.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, if sd > 0.0 { sd } else { 1.0 })
}

/// Every window of `context + horizon` consecutive values of `series`, starting every `stride`
/// values from the start, each scaled by its context ([`context_scaling`]).
pub fn windows(series: &[f64], context: usize, horizon: usize, stride: usize) -> Result<Vec<Window>, SeriesError> {
    if context == 0 || horizon == 0 || stride == 0 {
        return Err(SeriesError::BadSetting { setting: "window", expected: format!("context, horizon and stride of at least 1, got {context}, {horizon}, {stride}") });
    }
    let len = context + horizon;
    if series.len() < len {
        return Err(SeriesError::TooShort { what: "one window (context + horizon)", needed: len, got: series.len() });
    }
    Ok((0..=series.len() - len)
        .step_by(stride)
        .map(|start| {
            let w = &series[start..start + len];
            let (mean, scale) = context_scaling(&w[..context]);
            Window { values: w.iter().map(|v| (v - mean) / scale).collect(), mean, scale }
        })
        .collect())
}
