//! Writing a forecast: the sample paths and the quantiles as CSV, the quantiles as JSON, a
//! fan chart PNG, and the recipe (`forecast.json`, also inside the PNG) that says how it was
//! made, so `stipple info` reads either file and `stipple rerun` regenerates the same paths
//! from it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use candle_core::Device;
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use stipple_nn::{LoadedModel, TensorLatent};
use stipple_sample::{Observer, Sigmas};
use stipple_series::SeriesTransform;

use crate::fan_chart::{render_fan_chart, FanChart};
use crate::recipe::{InputRef, ModelRef, Recipe, RECIPE_KEY};
use crate::forecast::path_quantiles;
use crate::{encode_png_with_text, forecast, read_series_column, replay, write_atomic, Forecast, GenerateSpec, PipelineError, QUANTILE_LEVELS};

/// The recipe sidecar of a forecast folder.
pub const FORECAST_RECIPE_FILE: &str = "forecast.json";
/// Key of the forecast settings in the fan chart's text chunks.
pub const FORECAST_KEY: &str = "forecast";

/// What a forecast was made from, beside the sampler's recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSettings {
    /// The CSV file (its hash, and its path when read from one).
    pub data: InputRef,
    pub column: String,
    /// Data row (1-based, the header being row 1) of the window's first value.
    pub first_row: usize,
    pub context: usize,
    pub horizon: usize,
    /// Sample paths drawn (seeds `recipe.seed` onwards).
    pub samples: usize,
    pub quantile_levels: Vec<f64>,
    /// The transform of the model's series (log, differences), applied to the history and
    /// inverted on the paths; absent: none (as in recipes written before it existed).
    #[serde(default, skip_serializing_if = "SeriesTransform::is_identity")]
    pub transform: SeriesTransform,
}

/// The sidecar: the sampler's recipe and the forecast's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRecipe {
    #[serde(rename = "stipple")]
    pub recipe: Recipe,
    pub forecast: ForecastSettings,
}

impl ForecastSettings {
    /// The reference of the CSV bytes a forecast read (`path`: the file, when there was one).
    pub fn data_ref(bytes: &[u8], path: Option<&Path>) -> InputRef {
        use sha2::{Digest, Sha256};
        let sha256 = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        InputRef { sha256, path: path.map(Path::to_path_buf) }
    }
}

impl ForecastRecipe {
    /// The recipe of forecast `f`, made with `spec` over `sigmas` by the model `model` from the
    /// CSV data `data`.
    pub fn new(f: &Forecast, spec: &GenerateSpec, sigmas: &Sigmas, model: &ModelRef, data: InputRef) -> Self {
        let length = f.observed.len();
        ForecastRecipe {
            recipe: crate::recipe(spec, sigmas, model, (length, 1), spec.seed, spec.count, None),
            forecast: ForecastSettings {
                data,
                column: f.column.clone(),
                first_row: f.start + 2,
                context: f.context,
                horizon: f.horizon,
                samples: f.paths.len(),
                quantile_levels: QUANTILE_LEVELS.to_vec(),
                transform: f.transform.clone(),
            },
        }
    }

    /// Reads a `forecast.json` sidecar.
    pub fn from_json(json: &str) -> Result<ForecastRecipe, String> {
        serde_json::from_str(json).map_err(|e| format!("not a forecast recipe: {e}"))
    }

    /// Reads the recipe a fan chart PNG carries (its [`RECIPE_KEY`] and [`FORECAST_KEY`]
    /// texts); `None` when the PNG has no forecast settings (an image's recipe).
    pub fn from_png_bytes(bytes: &[u8], what: &str) -> Result<Option<ForecastRecipe>, String> {
        let texts = crate::read_png_text(bytes, what)?;
        let text = |key: &str| texts.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let Some(settings) = text(FORECAST_KEY) else { return Ok(None) };
        let recipe = text(RECIPE_KEY).ok_or_else(|| format!("{what} has forecast settings but no \"{RECIPE_KEY}\" recipe"))?;
        Ok(Some(ForecastRecipe {
            recipe: Recipe::from_json(recipe).map_err(|e| format!("the \"{RECIPE_KEY}\" text of {what} {e}"))?,
            forecast: serde_json::from_str(settings).map_err(|e| format!("the \"{FORECAST_KEY}\" text of {what} is not forecast settings: {e}"))?,
        }))
    }
}

/// Regenerates the forecast `recipe` describes with `model` from `csv`, the bytes of the same
/// CSV file (checked against the recorded SHA-256: other data would give another window):
/// the same column, window and horizon, over the recipe's exact σ's and seeds
/// ([`crate::replay`]), so the same sample paths. `what` names the CSV in messages.
pub fn reforecast(
    recipe: &ForecastRecipe,
    model: &LoadedModel,
    csv: &[u8],
    what: &str,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Forecast, PipelineError> {
    let f = &recipe.forecast;
    let data = ForecastSettings::data_ref(csv, None);
    if data.sha256 != f.data.sha256 {
        return Err(PipelineError::bad(
            "data",
            format!(
                "{what} has SHA-256 {}…, the forecast was made from {}… ; the same CSV file is needed for the same forecast",
                &data.sha256[..12],
                &f.data.sha256[..f.data.sha256.len().min(12)]
            ),
        ));
    }
    let series = read_series_column(csv, Some(&f.column), &[], what)?;
    // A forecast's recipe records all its paths, sampled together: no batch of its own.
    let (spec, sigmas, _) = replay(&recipe.recipe, None, None)?;
    let again = forecast(model, &series, Some(f.horizon), &spec, &sigmas, device, observer)?;
    if again.transform != f.transform {
        return Err(PipelineError::bad(
            "model",
            format!("the recipe's forecast transformed the series by {}; this model by {}", f.transform.describe(), again.transform.describe()),
        ));
    }
    if (again.start + 2, again.context, again.paths.len()) != (f.first_row, f.context, f.samples) {
        return Err(PipelineError::bad(
            "model",
            format!(
                "the recipe's window starts at row {} with {} context values and {} paths; this model gives row {}, {} and {}",
                f.first_row,
                f.context,
                f.samples,
                again.start + 2,
                again.context,
                again.paths.len()
            ),
        ));
    }
    Ok(again)
}

/// Files of a forecast folder, in the order written.
pub const FORECAST_FILES: [&str; 5] = ["paths.csv", "quantiles.csv", "quantiles.json", "fan_chart.png", FORECAST_RECIPE_FILE];

/// Writes the forecast's files into `dir` (created if needed; each file written whole under
/// a temporary name and renamed); returns their paths.
pub fn write_forecast(dir: &Path, f: &Forecast, recipe: &ForecastRecipe) -> Result<Vec<PathBuf>, PipelineError> {
    let first_row = f.start + 2;
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut paths = String::from("row,observed");
    for s in 0..f.paths.len() {
        write!(paths, ",path_{s}").expect("writing to a String");
    }
    let mut quantiles = String::from("row,observed");
    for q in QUANTILE_LEVELS {
        write!(quantiles, ",q{q}").expect("writing to a String");
    }
    for (t, o) in f.observed.iter().enumerate() {
        write!(paths, "\n{},{}", first_row + t, cell(*o)).expect("writing to a String");
        for p in &f.paths {
            write!(paths, ",{}", p[t]).expect("writing to a String");
        }
        write!(quantiles, "\n{},{}", first_row + t, cell(*o)).expect("writing to a String");
        for q in &f.quantiles {
            write!(quantiles, ",{}", q[t]).expect("writing to a String");
        }
    }
    paths.push('\n');
    quantiles.push('\n');
    let json = serde_json::json!({
        "column": f.column,
        "first_row": first_row,
        "observed": f.observed,
        "levels": QUANTILE_LEVELS,
        "quantiles": f.quantiles,
    });
    let sidecar = serde_json::to_string_pretty(recipe).expect("a recipe serializes");
    let settings = serde_json::to_string(&recipe.forecast).expect("settings serialize");
    let png = encode_png_with_text(&DynamicImage::ImageRgb8(fan_chart(f)?), &[(RECIPE_KEY, recipe.recipe.to_json()), (FORECAST_KEY, settings)])?;
    let contents: [Vec<u8>; 5] = [paths.into_bytes(), quantiles.into_bytes(), json.to_string().into_bytes(), png, sidecar.into_bytes()];
    let mut written = Vec::new();
    for (name, bytes) in FORECAST_FILES.iter().zip(contents) {
        let path = dir.join(name);
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The fan chart of `f`: the 90%, 80% and 50% central intervals and the median.
pub fn fan_chart(f: &Forecast) -> Result<image::RgbImage, PipelineError> {
    draw_quantiles(&f.observed, &f.quantiles, (f.horizon > 0).then_some(f.context))
}

/// The fan chart of sample paths alone (unconditional samples of a series model).
pub fn paths_chart(paths: &[Vec<f64>]) -> Result<image::RgbImage, PipelineError> {
    draw_quantiles(&[], &path_quantiles(paths)?, None)
}

fn draw_quantiles(observed: &[Option<f64>], quantiles: &[Vec<f64>], forecast_start: Option<usize>) -> Result<image::RgbImage, PipelineError> {
    let q = |level: f64| -> &[f64] {
        let k = QUANTILE_LEVELS.iter().position(|&l| l == level).expect("a reported level");
        &quantiles[k]
    };
    let chart = FanChart {
        observed,
        bands: vec![(q(0.05), q(0.95)), (q(0.1), q(0.9)), (q(0.25), q(0.75))],
        median: q(0.5),
        forecast_start,
    };
    render_fan_chart(&chart).map_err(|e| PipelineError::Encode(e.into()))
}
