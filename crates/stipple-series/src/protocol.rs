//! The held-out evaluation protocol: for each data set, the last K windows of a series, each
//! a forecast origin with its context (what a model conditions on), its history (what a
//! classical model is fitted on) and the horizon's actual values. The choices per data set
//! live in one table (`bench/forecast/datasets.json`), read here, so every forecaster is
//! scored on exactly the same windows.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{read_csv_series, SeriesError};

/// The version of the protocol file this code reads.
pub const PROTOCOL_VERSION: u32 = 1;

/// The protocol file: `{"format_version": 1, "datasets": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub format_version: u32,
    pub datasets: Vec<HeldOutSpec>,
}

/// One data set's held-out windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutSpec {
    pub name: String,
    /// The CSV file, relative to the data folder.
    pub file: String,
    /// The column of the series in that file.
    pub column: String,
    /// The seasonal period: of the seasonal naive forecast and of the MASE's scale.
    pub season: usize,
    /// Values a model conditions on before each origin.
    pub context: usize,
    /// Values forecast after each origin.
    pub horizon: usize,
    /// How many windows (K), the last ones of the series.
    pub windows: usize,
    /// Values between consecutive origins (default: the horizon, so the horizons tile the
    /// held-out end of the series).
    #[serde(default)]
    pub stride: Option<usize>,
    /// At most this many values before an origin are a classical model's history (default:
    /// all of them).
    #[serde(default)]
    pub max_history: Option<usize>,
    /// Why these settings.
    #[serde(default)]
    pub note: String,
}

/// One held-out forecast: the series cut at `origin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutWindow {
    /// The index in the series of the first forecast value.
    pub origin: usize,
    /// The values before `origin` a classical model is fitted on (its last `context` values are
    /// the context; at most `max_history` values).
    pub history: Vec<f64>,
    /// The `horizon` values from `origin` on.
    pub actual: Vec<f64>,
}

impl HeldOutWindow {
    /// The last `context` values of the history.
    pub fn context(&self, context: usize) -> &[f64] {
        &self.history[self.history.len().saturating_sub(context)..]
    }
}

/// Reads and checks a protocol file.
pub fn read_protocol(path: &Path) -> Result<Protocol, SeriesError> {
    let bad = |reason: String| SeriesError::Table { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let protocol: Protocol = serde_json::from_str(&text).map_err(|e| bad(format!("not a forecast protocol: {e}")))?;
    if protocol.format_version != PROTOCOL_VERSION {
        return Err(bad(format!("format_version {} where this version of Stipple reads {PROTOCOL_VERSION}", protocol.format_version)));
    }
    for d in &protocol.datasets {
        d.validate()?;
    }
    Ok(protocol)
}

impl HeldOutSpec {
    /// The step between origins.
    pub fn stride(&self) -> usize {
        self.stride.unwrap_or(self.horizon)
    }

    /// Checks that every size is at least 1 and the history can hold a context.
    pub fn validate(&self) -> Result<(), SeriesError> {
        let sizes = [self.season, self.context, self.horizon, self.windows, self.stride(), self.max_history.unwrap_or(usize::MAX)];
        if sizes.contains(&0) {
            return Err(SeriesError::BadSetting { setting: "protocol", expected: format!("{}: season, context, horizon, windows, stride and max_history of at least 1, got {self:?}", self.name) });
        }
        if self.max_history.is_some_and(|m| m < self.context.max(self.season + 1)) {
            return Err(SeriesError::BadSetting { setting: "protocol", expected: format!("{}: max_history of at least the context and one season and one value", self.name) });
        }
        Ok(())
    }

    /// The forecast origins in `0..len`, ascending: the last at `len − horizon`, the others
    /// `stride` apart before it. The first must leave a full context and one season and one
    /// value of history (for the MASE's scale) before it.
    pub fn origins(&self, len: usize) -> Result<Vec<usize>, SeriesError> {
        self.validate()?;
        let span = self.horizon + (self.windows - 1) * self.stride();
        let needed = span + self.context.max(self.season + 1);
        if len < needed {
            return Err(SeriesError::TooShort { what: "the held-out windows (history, then K windows)", needed, got: len });
        }
        Ok((0..self.windows).map(|k| len - span + k * self.stride()).collect())
    }

    /// The values a model may be trained on: everything before the first origin, so no
    /// held-out horizon is seen in training.
    pub fn training_part<'a>(&self, series: &'a [f64]) -> Result<&'a [f64], SeriesError> {
        Ok(&series[..self.origins(series.len())?[0]])
    }

    /// The held-out windows of `series`.
    pub fn held_out(&self, series: &[f64]) -> Result<Vec<HeldOutWindow>, SeriesError> {
        let max = self.max_history.unwrap_or(usize::MAX);
        Ok(self
            .origins(series.len())?
            .into_iter()
            .map(|origin| HeldOutWindow {
                origin,
                history: series[origin.saturating_sub(max)..origin].to_vec(),
                actual: series[origin..origin + self.horizon].to_vec(),
            })
            .collect())
    }

    /// Reads this data set's column from `data_dir` and cuts its held-out windows.
    pub fn load(&self, data_dir: &Path) -> Result<(Vec<f64>, Vec<HeldOutWindow>), SeriesError> {
        let table = read_csv_series(&data_dir.join(&self.file), std::slice::from_ref(&self.column))?;
        let series = table.columns.into_iter().next().expect("one column asked for");
        let windows = self.held_out(&series)?;
        Ok((series, windows))
    }
}
