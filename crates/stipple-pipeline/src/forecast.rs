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
//! A model trained on a transformed series (`stipple train --log`, `--difference`) sees the
//! history transformed the same way, and its paths are brought back to the series' units by
//! the exact inverse (`stipple_series::SeriesTransform::invert`).

use candle_core::{DType, Device, Tensor};
use stipple_nn::{LoadedModel, TensorLatent};
use stipple_sample::{Observer, Sigmas};
use stipple_series::{context_scaling, quantile, SeriesError, SeriesTransform};

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
    /// The window's scaling, `(y − mean) / scale`, from its first `context` values as in
    /// training (y: the transformed series, the series itself without a transform).
    pub mean: f64,
    pub scale: f64,
    /// The transform of the model's series (from its file), applied to the history and
    /// inverted on the paths.
    pub transform: SeriesTransform,
}

/// The forecast of the next `horizon` values of `series` by a model trained on windows of
/// context C + horizon H values (`horizon` ≤ H, `None` = H; 0 imputes the missing values of
/// the last window only): the window is the last `C + H − horizon` values of the series and the
/// `horizon` after it, transformed as the model's series was (log, differences; those need the
/// rows their lags reach back to before the window) and scaled by the observed values of its
/// first C (as each training window was). `spec.count` sample paths, path i from seed
/// `spec.seed + i`, brought back to the series' units.
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
    let lost = w.transform.consumed();
    if n < context + lost {
        let differences = if lost > 0 { format!(" and the {lost} before them that its differences reach back to ({})", w.transform.describe()) } else { String::new() };
        return Err(PipelineError::bad(
            "data",
            format!(
                "column \"{}\" has {n} rows; the model needs the last {context} values of the series{differences} for a forecast of {horizon}, \
                 {} rows in all (its window is {} context + {} horizon values)",
                series.column,
                context + lost,
                w.context,
                w.horizon
            ),
        ));
    }
    let start = n - context;
    // Every row of the series and the rows to forecast, in the series' units and transformed.
    let rows: Vec<Option<f64>> = series.values.iter().copied().chain(std::iter::repeat_n(None, horizon)).collect();
    let transformed = w.transform.apply_observed(&rows).map_err(|e| transform_error(series, &w.transform, e))?;
    let window = &transformed[start..];
    let scaling: Vec<f64> = window[..w.context].iter().flatten().copied().collect();
    if scaling.is_empty() {
        let why = if lost > 0 { " or miss a value their differences need" } else { "" };
        return Err(PipelineError::bad("data", format!("column \"{}\": the {} values at rows {}.. are all missing{why}", series.column, w.context, start + 2)));
    }
    let (mean, scale) = context_scaling(&scaling);
    let known: Vec<f32> = window.iter().map(|v| v.map_or(0.0, |v| ((v - mean) / scale) as f32)).collect();
    let keep: Vec<u8> = window.iter().map(|v| u8::from(v.is_some())).collect();
    let known = Tensor::from_vec(known, (1, 1, length), device)?;
    let keep = Tensor::from_vec(keep, (1, 1, length), device)?;
    let samples = generate_known(model, spec, sigmas, &known, &keep, device, observer)?;
    let samples = samples.to_dtype(DType::F64)?.reshape((spec.count, length))?.to_vec2::<f64>()?;
    // Each path unscaled, then inverted (the observed values are kept exactly).
    let paths: Vec<Vec<f64>> = samples
        .into_iter()
        .map(|p| {
            let unscaled: Vec<f64> = p.iter().map(|x| x * scale + mean).collect();
            w.transform.invert(&rows, &unscaled).map_err(|e| transform_error(series, &w.transform, e))
        })
        .collect::<Result<_, _>>()?;
    let quantiles = path_quantiles(&paths)?;
    let observed = rows[start..].to_vec();
    Ok(Forecast { column: series.column.clone(), start, context, horizon, observed, paths, quantiles, mean, scale, transform: w.transform.clone() })
}

/// A transform's error on the series `series`, by data row (1-based, the header being row 1).
fn transform_error(series: &SeriesInput, transform: &SeriesTransform, e: SeriesError) -> PipelineError {
    let column = &series.column;
    PipelineError::bad(
        "data",
        match e {
            SeriesError::NotPositive { index, value } => {
                format!("row {}, column \"{column}\": {value} is not positive; the model takes the log of its series (Box-Cox λ = 0), which needs every value above 0", index + 2)
            }
            SeriesError::MissingBefore { index, needed } => format!(
                "column \"{column}\": row {} is missing, and the forecast of row {} integrates from it (the model's transform: {}); fill it in",
                needed + 2,
                index + 2,
                transform.describe()
            ),
            e => format!("column \"{column}\": {e}"),
        },
    )
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
