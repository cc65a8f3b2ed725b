//! Classical baselines a diffusion forecast is compared with.

use crate::error::{finite, SeriesError};

/// The seasonal naive forecast (Hyndman & Athanasopoulos, "Forecasting: Principles and
/// Practice", §5.2): each of the next `horizon` values repeats the value one season earlier,
/// ŷ_{n+h} = y_{n+h−s(k+1)} with k = ⌊(h − 1)/s⌋; season 1 is the naive (last value) forecast.
pub fn seasonal_naive(history: &[f64], season: usize, horizon: usize) -> Result<Vec<f64>, SeriesError> {
    if season == 0 {
        return Err(SeriesError::BadSetting { setting: "season", expected: "must be at least 1".into() });
    }
    if history.len() < season {
        return Err(SeriesError::TooShort { what: "the seasonal naive forecast (one season of history)", needed: season, got: history.len() });
    }
    finite("the history", history)?;
    let n = history.len();
    Ok((1..=horizon).map(|h| history[n + h - season * ((h - 1) / season + 1) - 1]).collect())
}
