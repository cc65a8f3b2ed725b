//! Probabilistic forecasts and imputation with a model of series windows: the observed
//! values of the last window are imposed at every step of the sampler (the inpainting
//! machinery of image models, [`crate::generate_known`]) and the model fills in the rest —
//! the future values (a forecast) and any missing ones (imputation). N seeds give N sample
//! paths, summarised by quantiles. This is the "replacement" conditioning of Song et al.
//! 2021 (§5, "imputation") and RePaint (Lugmayr et al. 2022), applied to series as TSDiff
//! does for forecasting (Kollovieh et al. 2023, the "observation self-guidance" baseline).
//! A model trained as CSDI is (Tashiro et al. 2021; `stipple train --conditioning csdi`)
//! also reads the observed values and their mask as input channels at every network call,
//! so it draws from the p(future | history) it was trained on (see `generate::run`).

use candle_core::{DType, Device, Tensor};
use stipple_nn::{LoadedModel, TensorLatent};
use stipple_sample::{Observer, Sigmas};
use stipple_series::{context_scaling, quantile};

use crate::{generate_known, GenerateSpec, PipelineError, SeriesInput};

/// The quantile levels a forecast reports: the median, and the central 50%, 80% and 90%
/// intervals.
pub const QUANTILE_LEVELS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95];

/// A forecast: sample paths over the last window of a series and their quantiles.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// The column forecast.
    pub column: String,
    /// Index (0-based, among the data rows) of the window's first value.
    pub start: usize,
    /// Values of the window that come from the series (observed or missing).
    pub context: usize,
    /// Values forecast after the end of the series.
    pub horizon: usize,
    /// The series over the window (`None`: missing, and every forecast value).
    pub observed: Vec<Option<f64>>,
    /// `paths[s][t]`: sample path s over the window in the series' units; the observed values
    /// are the series' own, exactly.
    pub paths: Vec<Vec<f64>>,
    /// `quantiles[k][t]`: the [`QUANTILE_LEVELS`]`[k]` quantile at step t.
    pub quantiles: Vec<Vec<f64>>,
    /// The window's scaling, `(x − mean) / scale`, from its first `context` values as in training.
    pub mean: f64,
    pub scale: f64,
}

/// The forecast of the next `horizon` values of `series` by a model trained on windows of
/// context C + horizon H values (`horizon` ≤ H, `None` = H; 0 imputes the missing values of
/// the last window only): the window is the last `C + H − horizon` values of the series and the
/// `horizon` after it, scaled by the observed values of its first C (as each training window
/// was). `spec.count` sample paths, path i from seed `spec.seed + i`.
pub fn forecast(
    model: &LoadedModel,
    series: &SeriesInput,
    horizon: Option<usize>,
    spec: &GenerateSpec,
    sigmas: &Sigmas,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Forecast, PipelineError> {
    let Some(w) = &model.config.series else {
        return Err(PipelineError::bad(
            "model",
            format!("this model is {} without a forecast window; train one on a CSV file (stipple train --data series.csv)", model.config.network.describe()),
        ));
    };
    let horizon = horizon.unwrap_or(w.horizon);
    if horizon > w.horizon {
        return Err(PipelineError::bad("horizon", format!("the model was trained to forecast at most {} values; got {horizon}", w.horizon)));
    }
    let length = w.context + w.horizon;
    let context = length - horizon;
    let n = series.values.len();
    if n < context {
        return Err(PipelineError::bad(
            "data",
            format!(
                "column \"{}\" has {n} rows; the model needs the last {context} values of the series for a forecast of {horizon} \
                 (its window is {} context + {} horizon values)",
                series.column, w.context, w.horizon
            ),
        ));
    }
    let start = n - context;
    let observed: Vec<Option<f64>> = series.values[start..].iter().copied().chain(std::iter::repeat_n(None, horizon)).collect();
    let scaling: Vec<f64> = observed[..w.context].iter().flatten().copied().collect();
    if scaling.is_empty() {
        return Err(PipelineError::bad("data", format!("column \"{}\": the {} values at rows {}.. are all missing", series.column, w.context, start + 2)));
    }
    let (mean, scale) = context_scaling(&scaling);
    let known: Vec<f32> = observed.iter().map(|v| v.map_or(0.0, |v| ((v - mean) / scale) as f32)).collect();
    let keep: Vec<u8> = observed.iter().map(|v| u8::from(v.is_some())).collect();
    let known = Tensor::from_vec(known, (1, 1, length), device)?;
    let keep = Tensor::from_vec(keep, (1, 1, length), device)?;
    let samples = generate_known(model, spec, sigmas, &known, &keep, device, observer)?;
    let samples = samples.to_dtype(DType::F64)?.reshape((spec.count, length))?.to_vec2::<f64>()?;
    let paths: Vec<Vec<f64>> = samples
        .into_iter()
        .map(|p| p.iter().zip(&observed).map(|(x, o)| o.unwrap_or(x * scale + mean)).collect())
        .collect();
    let quantiles = path_quantiles(&paths)?;
    Ok(Forecast { column: series.column.clone(), start, context, horizon, observed, paths, quantiles, mean, scale })
}

/// `q[k][t]`: the [`QUANTILE_LEVELS`]`[k]` quantile of the paths (all of one length) at step t.
pub fn path_quantiles(paths: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, PipelineError> {
    let length = paths.first().map_or(0, Vec::len);
    if paths.iter().any(|p| p.len() != length) {
        return Err(PipelineError::bad("samples", "sample paths of different lengths"));
    }
    let columns: Vec<Vec<f64>> = (0..length)
        .map(|t| {
            let mut c: Vec<f64> = paths.iter().map(|p| p[t]).collect();
            c.sort_by(f64::total_cmp);
            c
        })
        .collect();
    QUANTILE_LEVELS
        .iter()
        .map(|&q| columns.iter().map(|c| quantile(c, q).map_err(|e| PipelineError::bad("samples", e.to_string()))).collect())
        .collect()
}
