//! The held-out forecast evaluation of docs/FORECASTING.md.
//!
//! ```text
//! forecast_eval export PROTOCOL DATA_DIR OUT_DIR
//!     writes OUT_DIR/<data set>.json: the held-out windows (origin, history, actual) and the
//!     protocol's settings, for a reference script or a model to forecast
//! forecast_eval score PROTOCOL DATA_DIR [--model NAME=DIR]... [--check-seasonal-naive NAME]
//!     scores the Rust seasonal naive forecast and every DIR/<data set>.json forecast file
//!     (`stipple_series::ForecastFile`) on the same windows; prints a markdown table. With
//!     --check-seasonal-naive, the median of model NAME must equal the Rust seasonal naive
//!     forecast (a cross-check of the windows and of the baseline).
//! ```

use std::path::{Path, PathBuf};

use stipple_series::{read_forecasts, read_protocol, score_forecasts, seasonal_naive, ForecastScores, WindowForecast};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("export") if args.len() == 4 => export(Path::new(&args[1]), Path::new(&args[2]), Path::new(&args[3])),
        Some("score") if args.len() >= 3 => score(Path::new(&args[1]), Path::new(&args[2]), &args[3..]),
        _ => Err("usage: forecast_eval export PROTOCOL DATA_DIR OUT_DIR | score PROTOCOL DATA_DIR [--model NAME=DIR]... [--check-seasonal-naive NAME]".into()),
    }
}

fn export(protocol: &Path, data: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    for spec in read_protocol(protocol)?.datasets {
        let (series, windows) = spec.load(data)?;
        let json = serde_json::json!({ "dataset": spec.name, "spec": spec, "series_length": series.len(), "windows": windows });
        std::fs::write(out.join(format!("{}.json", spec.name)), serde_json::to_string(&json)?)?;
        println!("{}: {} values, {} windows from origin {}", spec.name, series.len(), windows.len(), windows[0].origin);
    }
    Ok(())
}

fn fmt_coverage(c: Option<f64>) -> String {
    c.map_or("—".into(), |c| format!("{c:.2}"))
}

fn score(protocol: &Path, data: &Path, rest: &[String]) -> Result<()> {
    let (mut models, mut check): (Vec<(String, PathBuf)>, Option<String>) = (Vec::new(), None);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--model" => {
                let v = it.next().ok_or("--model needs NAME=DIR")?;
                let (name, dir) = v.split_once('=').ok_or(format!("--model takes NAME=DIR, got {v}"))?;
                models.push((name.into(), dir.into()));
            }
            "--check-seasonal-naive" => check = Some(it.next().ok_or("--check-seasonal-naive needs a model name")?.clone()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    println!("| data set | C | H | K | model | CRPS | MASE | coverage 50% | coverage 90% |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|");
    let mut checks = Vec::new();
    for spec in read_protocol(protocol)?.datasets {
        let (_, windows) = spec.load(data)?;
        let naive: Vec<WindowForecast> = windows
            .iter()
            .map(|w| Ok(WindowForecast { origin: w.origin, paths: vec![seasonal_naive(&w.history, spec.season, spec.horizon)?] }))
            .collect::<std::result::Result<_, stipple_series::SeriesError>>()?;
        let mut rows: Vec<(String, ForecastScores)> = vec![(format!("seasonal naive (s = {})", spec.season), score_forecasts(&spec, &windows, &naive)?)];
        for (name, dir) in &models {
            let path = dir.join(format!("{}.json", spec.name));
            if !path.exists() {
                continue;
            }
            let file = read_forecasts(&path)?;
            rows.push((name.clone(), score_forecasts(&spec, &windows, &file.windows)?));
            if check.as_deref() == Some(name.as_str()) {
                let worst = file.windows.iter().zip(&naive).flat_map(|(f, n)| {
                    (0..spec.horizon).map(move |t| {
                        let mut col: Vec<f64> = f.paths.iter().map(|p| p[t]).collect();
                        col.sort_by(f64::total_cmp);
                        (stipple_series::quantile(&col, 0.5).unwrap_or(f64::NAN) - n.paths[0][t]).abs()
                    })
                });
                checks.push((spec.name.clone(), worst.fold(0.0, f64::max)));
            }
        }
        for (name, s) in rows {
            println!("| {} | {} | {} | {} | {name} | {:.4} | {:.3} | {} | {} |", spec.name, spec.context, spec.horizon, spec.windows, s.crps, s.mase, fmt_coverage(s.coverage_50), fmt_coverage(s.coverage_90));
        }
    }
    for (name, worst) in checks {
        println!("\n{name}: largest |median of {} − Rust seasonal naive| = {worst:.3e}", check.as_deref().unwrap_or(""));
    }
    Ok(())
}
