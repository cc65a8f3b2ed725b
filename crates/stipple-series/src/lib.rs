//! Time series for Stipple: how probabilistic forecasts are scored (the continuous ranked
//! probability score of a sample ensemble, the mean absolute scaled error of its median,
//! the coverage of its central intervals) and the classical baseline every forecast is
//! compared with (seasonal naive); and the data side: numeric columns of a CSV file, cut into
//! scaled context + horizon windows (after an optional log and differencing, inverted exactly
//! on forecast paths); and the held-out evaluation protocol (the last K windows
//! of each data set, read from one table) with the scoring of any forecaster's sample paths
//! on them. Pure `f64` code; no tensors.

mod baselines;
mod error;
mod evaluation;
mod protocol;
mod scores;
mod table;
mod transform;
mod windows;

pub use baselines::seasonal_naive;
pub use error::SeriesError;
pub use evaluation::{read_forecasts, score_forecasts, ForecastFile, ForecastScores, WindowForecast};
pub use protocol::{read_protocol, HeldOutSpec, HeldOutWindow, Protocol, PROTOCOL_VERSION};
pub use scores::{crps_ensemble, interval_coverage, mase, quantile};
pub use table::{read_csv_series, SeriesTable};
pub use transform::SeriesTransform;
pub use windows::{context_scaling, windows, Window};
