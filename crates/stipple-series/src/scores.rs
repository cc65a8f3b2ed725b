//! Scores of probabilistic forecasts given as sample paths (an ensemble per time step).

use crate::error::{finite, SeriesError};

/// The continuous ranked probability score of the empirical distribution of `samples` at the
/// observation `obs` (Gneiting & Raftery 2007, eq. 21): CRPS = E|X − y| − ½ E|X − X′| with X,
/// X′ drawn from the ensemble, i.e. (1/m) Σᵢ |xᵢ − y| − (1/2m²) Σᵢ Σⱼ |xᵢ − xⱼ| — the estimator
/// of `properscoring.crps_ensemble`. The double sum is taken over the sorted samples:
/// Σᵢ Σⱼ |xᵢ − xⱼ| = 2 Σₖ (2k − m + 1) x₍ₖ₎ (k from 0), so the cost is O(m log m). Lower is
/// better; for one sample it is the absolute error.
pub fn crps_ensemble(samples: &[f64], obs: f64) -> Result<f64, SeriesError> {
    if samples.is_empty() {
        return Err(SeriesError::TooShort { what: "the CRPS", needed: 1, got: 0 });
    }
    finite("the ensemble", samples)?;
    finite("the observation", &[obs])?;
    let m = samples.len() as f64;
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let spread: f64 = sorted.iter().enumerate().map(|(k, x)| (2.0 * k as f64 - m + 1.0) * x).sum::<f64>() * 2.0;
    let error: f64 = sorted.iter().map(|x| (x - obs).abs()).sum::<f64>() / m;
    Ok(error - spread / (2.0 * m * m))
}

/// The `q`-quantile of `sorted` (ascending) by linear interpolation between order statistics
/// (Hyndman & Fan 1996, type 7; numpy's default): position h = (n − 1)·q.
pub fn quantile(sorted: &[f64], q: f64) -> Result<f64, SeriesError> {
    if sorted.is_empty() {
        return Err(SeriesError::TooShort { what: "a quantile", needed: 1, got: 0 });
    }
    if !(0.0..=1.0).contains(&q) {
        return Err(SeriesError::BadSetting { setting: "quantile", expected: format!("must lie in [0, 1], got {q}") });
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    Ok(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

/// The fraction of observations inside the central `level` interval of their ensemble:
/// `paths[s][t]` is sample path s at step t; step t's interval runs from the (1 − level)/2
/// to the (1 + level)/2 quantile of the samples at t ([`quantile`]), bounds included.
pub fn interval_coverage(paths: &[Vec<f64>], obs: &[f64], level: f64) -> Result<f64, SeriesError> {
    if !(0.0..1.0).contains(&level) || level == 0.0 {
        return Err(SeriesError::BadSetting { setting: "level", expected: format!("must lie in (0, 1), got {level}") });
    }
    let columns = columns(paths, obs.len())?;
    finite("the observations", obs)?;
    let mut inside = 0;
    for (mut col, y) in columns.into_iter().zip(obs) {
        col.sort_by(f64::total_cmp);
        let (lo, hi) = (quantile(&col, (1.0 - level) / 2.0)?, quantile(&col, (1.0 + level) / 2.0)?);
        inside += usize::from(lo <= *y && *y <= hi);
    }
    Ok(inside as f64 / obs.len() as f64)
}

/// The ensemble of every step: `paths` transposed, after checking that each path covers the
/// `steps` observations and holds only finite values.
fn columns(paths: &[Vec<f64>], steps: usize) -> Result<Vec<Vec<f64>>, SeriesError> {
    if paths.is_empty() {
        return Err(SeriesError::TooShort { what: "an ensemble", needed: 1, got: 0 });
    }
    for p in paths {
        if p.len() != steps {
            return Err(SeriesError::LengthMismatch { what: "a sample path against the observations", a: p.len(), b: steps });
        }
        finite("a sample path", p)?;
    }
    Ok((0..steps).map(|t| paths.iter().map(|p| p[t]).collect()).collect())
}

/// The mean absolute scaled error of the point forecast `forecast` for `actual` (Hyndman &
/// Koehler 2006): its mean absolute error divided by the in-sample mean absolute error of
/// the seasonal naive forecast on `history`, (1/(n − s)) Σ_{t≥s} |y_t − y_{t−s}|, with
/// season `s` (1 for none). Below 1 beats that baseline in-sample.
pub fn mase(forecast: &[f64], actual: &[f64], history: &[f64], season: usize) -> Result<f64, SeriesError> {
    if season == 0 {
        return Err(SeriesError::BadSetting { setting: "season", expected: "must be at least 1".into() });
    }
    if forecast.len() != actual.len() {
        return Err(SeriesError::LengthMismatch { what: "the forecast against the actual values", a: forecast.len(), b: actual.len() });
    }
    if actual.is_empty() {
        return Err(SeriesError::TooShort { what: "the MASE", needed: 1, got: 0 });
    }
    if history.len() <= season {
        return Err(SeriesError::TooShort { what: "the MASE's scale (one season of history and one more value)", needed: season + 1, got: history.len() });
    }
    finite("the forecast", forecast)?;
    finite("the actual values", actual)?;
    finite("the history", history)?;
    let mae = forecast.iter().zip(actual).map(|(f, y)| (f - y).abs()).sum::<f64>() / actual.len() as f64;
    let scale = history.windows(season + 1).map(|w| (w[season] - w[0]).abs()).sum::<f64>() / (history.len() - season) as f64;
    if scale == 0.0 {
        return Err(SeriesError::BadSetting { setting: "history", expected: "a history that is not constant over every season (the MASE's scale is 0)".into() });
    }
    Ok(mae / scale)
}
