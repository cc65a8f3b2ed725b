//! Transforms of a series before it is cut into windows, and their exact inverse on forecast
//! paths: the logarithm (the Box-Cox transform at λ = 0, Box & Cox 1964, "An analysis of
//! transformations", JRSS B 26(2)) and differences at a lag d, `y_t = x_t − x_{t−d}` (lag 1:
//! the first difference; lag s: the seasonal difference), as in Box & Jenkins' airline model
//! (Box, Jenkins, Reinsel & Ljung, "Time Series Analysis", 5th ed. 2015, §9.2: log, then
//! differences at lags 1 and 12) and Hyndman & Athanasopoulos, "Forecasting: Principles and
//! Practice" (3rd ed., 2021), §5.1 (Box-Cox) and §9.1 (differencing). A model learns the
//! transformed series; its forecast paths are brought back by integrating the differences from
//! the last observed values (`x_t = y_t + x_{t−d}`) and exponentiating.

use serde::{Deserialize, Serialize};

use crate::SeriesError;

/// The transform a series model is trained on: first the natural log (when `log`), then a
/// difference at each lag of `differences`, in order. The default is none (the identity).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesTransform {
    /// Take the natural logarithm first (Box-Cox λ = 0): multiplicative seasonality and growth
    /// become additive. Every value must be above 0.
    pub log: bool,
    /// Lags d of the differences taken after the log, in order (each at least 1).
    pub differences: Vec<usize>,
}

impl SeriesTransform {
    /// Whether this transform leaves a series as it is.
    pub fn is_identity(&self) -> bool {
        !self.log && self.differences.is_empty()
    }

    /// Checks that every lag is at least 1.
    pub fn validate(&self) -> Result<(), SeriesError> {
        if self.differences.contains(&0) {
            return Err(SeriesError::BadSetting { setting: "difference", expected: format!("lags of at least 1, got {:?}", self.differences) });
        }
        Ok(())
    }

    /// Values the differences consume at the start of a series (the sum of their lags): a
    /// series of n values becomes one of n − `consumed()`.
    pub fn consumed(&self) -> usize {
        self.differences.iter().sum()
    }

    /// A short description, e.g. "log, difference at lag 12" or "none".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.log.then(|| "log".to_string()).into_iter().collect();
        parts.extend(self.differences.iter().map(|d| format!("difference at lag {d}")));
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// The transformed series of a complete `series`: `series.len() − consumed()` values, the
    /// i-th belonging to row `i + consumed()` of `series`. Errors: a non-positive value under
    /// the log ([`SeriesError::NotPositive`], with its index), a series with no value left.
    pub fn apply(&self, series: &[f64]) -> Result<Vec<f64>, SeriesError> {
        let observed: Vec<Option<f64>> = series.iter().copied().map(Some).collect();
        let levels = self.levels(&observed)?;
        let top = levels.last().expect("at least the log level");
        Ok(top[self.consumed()..].iter().map(|v| v.expect("every value of a complete series is defined")).collect())
    }

    /// The transformed series of a series with gaps (`None`), aligned to it: entry t is the
    /// transformed value at row t, `None` where a value it needs is missing or before the
    /// first `consumed()` rows.
    pub fn apply_observed(&self, series: &[Option<f64>]) -> Result<Vec<Option<f64>>, SeriesError> {
        Ok(self.levels(series)?.pop().expect("at least the log level"))
    }

    /// Level 0 the (logged) series, level k its k-th difference; all aligned to the rows of
    /// `series`. The series must have at least one value beyond those the differences consume.
    fn levels(&self, series: &[Option<f64>]) -> Result<Vec<Vec<Option<f64>>>, SeriesError> {
        self.validate()?;
        if series.len() <= self.consumed() {
            return Err(SeriesError::TooShort { what: "the differences at these lags (their sum, then one value)", needed: self.consumed() + 1, got: series.len() });
        }
        let mut base = Vec::with_capacity(series.len());
        for (index, v) in series.iter().enumerate() {
            base.push(match v {
                Some(x) if self.log && *x <= 0.0 => return Err(SeriesError::NotPositive { index, value: *x }),
                // Box-Cox at λ = 0: y = ln x.
                Some(x) if self.log => Some(x.ln()),
                v => *v,
            });
        }
        let mut levels = vec![base];
        for &d in &self.differences {
            let below = levels.last().expect("at least the log level");
            // y_t = x_t − x_{t−d}, defined where both are.
            let next = (0..below.len()).map(|t| if t < d { None } else { below[t].zip(below[t - d]).map(|(a, b)| a - b) }).collect();
            levels.push(next);
        }
        Ok(levels)
    }

    /// A transformed sample path brought back to the series' units. `observed` is the series
    /// over every row, the rows to forecast last as `None`; `path` holds transformed values for
    /// its last `path.len()` rows. Returns those rows in the series' units: an observed value as
    /// it is (exactly), any other rebuilt from the bottom difference up by integration,
    /// `x_t = y_t + x_{t−d}` (from observed or already rebuilt values), then `exp` under the
    /// log. Where the transformed value of a row is known (all the values it needs are
    /// observed), the path's value there is not used.
    ///
    /// Errors: a path longer than the rows the transform leaves, and a missing value before
    /// the path's rows that an integration needs ([`SeriesError::MissingBefore`]).
    pub fn invert(&self, observed: &[Option<f64>], path: &[f64]) -> Result<Vec<f64>, SeriesError> {
        let n = observed.len();
        if path.len() + self.consumed() > n {
            return Err(SeriesError::TooShort { what: "a transformed path of these rows (its length and the lags)", needed: path.len() + self.consumed(), got: n });
        }
        let start = n - path.len();
        let mut levels = self.levels(observed)?;
        let top = levels.last_mut().expect("at least the log level");
        for (slot, &y) in top[start..].iter_mut().zip(path) {
            slot.get_or_insert(y);
        }
        for k in (0..self.differences.len()).rev() {
            let d = self.differences[k];
            let (lower, upper) = levels.split_at_mut(k + 1);
            let (lower, upper) = (&mut lower[k], &upper[0]);
            for t in start..n {
                if lower[t].is_none() {
                    // x_t = y_t + x_{t−d}: the inverse of the difference at lag d.
                    let before = lower[t - d].ok_or(SeriesError::MissingBefore { index: t, needed: t - d })?;
                    lower[t] = Some(upper[t].expect("the level above is filled on the path's rows") + before);
                }
            }
        }
        Ok(levels[0][start..]
            .iter()
            .zip(&observed[start..])
            .map(|(level, o)| match o {
                Some(x) => *x,
                // The inverse of Box-Cox at λ = 0: x = exp y.
                None if self.log => level.expect("filled").exp(),
                None => level.expect("filled"),
            })
            .collect())
    }
}
