//! The held-out protocol (the last K windows of a series, the table that fixes them) and the
//! scoring of forecasts on those windows.

use stipple_series::{crps_ensemble, read_protocol, score_forecasts, HeldOutSpec, SeriesError, WindowForecast};

fn spec(season: usize, context: usize, horizon: usize, windows: usize) -> HeldOutSpec {
    HeldOutSpec { name: "t".into(), file: "t.csv".into(), column: "y".into(), season, context, horizon, windows, stride: None, max_history: None, note: String::new() }
}

#[test]
fn the_last_windows_tile_the_end_of_the_series() {
    let series: Vec<f64> = (0..100).map(f64::from).collect();
    let s = spec(4, 20, 5, 3);
    assert_eq!(s.origins(100).unwrap(), [85, 90, 95]);
    let w = s.held_out(&series).unwrap();
    assert_eq!(w[2].actual, [95.0, 96.0, 97.0, 98.0, 99.0]);
    assert_eq!(w[0].history.len(), 85, "all values before the origin");
    assert_eq!(w[0].context(20), &series[65..85]);
    assert_eq!(s.training_part(&series).unwrap().len(), 85, "training stops before the first held-out value");
    // A stride longer than the horizon: the last 6 hours of the last two days.
    let days = HeldOutSpec { stride: Some(24), max_history: Some(30), ..spec(24, 18, 6, 2) };
    assert_eq!(days.origins(96).unwrap(), [66, 90]);
    let w = days.held_out(&series[..96]).unwrap();
    assert_eq!(w[1].history, &series[60..90], "at most max_history values");
}

#[test]
fn too_short_series_and_bad_settings_are_refused() {
    let s = spec(12, 24, 12, 2);
    // 2 windows of 12 need 24 values after a history of max(24, 12 + 1).
    assert!(s.origins(48).is_ok());
    assert_eq!(s.origins(47).unwrap_err(), SeriesError::TooShort { what: "the held-out windows (history, then K windows)", needed: 48, got: 47 });
    assert!(spec(0, 4, 2, 1).origins(100).unwrap_err().to_string().contains("at least 1"));
    let capped = HeldOutSpec { max_history: Some(10), ..spec(12, 24, 12, 2) };
    assert!(capped.validate().unwrap_err().to_string().contains("max_history"));
}

#[test]
fn the_shipped_protocol_reads_and_unknown_versions_or_fields_are_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = read_protocol(&root.join("bench/forecast/datasets.json")).unwrap();
    assert!(p.datasets.len() >= 8 && p.datasets.iter().any(|d| d.name == "goog_returns"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, r#"{"format_version": 2, "datasets": []}"#).unwrap();
    assert!(read_protocol(&path).unwrap_err().to_string().contains("format_version 2"));
    std::fs::write(&path, r#"{"format_version": 1, "datasets": [{"name": "a", "file": "a.csv", "column": "y", "season": 1, "context": 2, "horizon": 1, "windows": 1, "lag": 3}]}"#).unwrap();
    assert!(read_protocol(&path).unwrap_err().to_string().contains("unknown field `lag`"));
}

#[test]
fn scores_over_windows_are_the_per_step_scores_averaged() {
    let series = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 4.0, 6.0];
    let s = spec(1, 2, 2, 2);
    let windows = s.held_out(&series).unwrap();
    assert_eq!(s.origins(8).unwrap(), [4, 6]);
    let paths = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| vec![a.to_vec(), b.to_vec(), c.to_vec()];
    let forecasts = vec![
        WindowForecast { origin: 4, paths: paths([2.0, 4.0], [3.0, 5.0], [4.0, 6.0]) },
        WindowForecast { origin: 6, paths: paths([4.0, 6.0], [4.0, 6.0], [4.0, 6.0]) },
    ];
    let got = score_forecasts(&s, &windows, &forecasts).unwrap();
    let want_crps = (crps_ensemble(&[2.0, 3.0, 4.0], 3.0).unwrap() + crps_ensemble(&[4.0, 5.0, 6.0], 5.0).unwrap() + 0.0 + 0.0) / 4.0;
    assert!((got.crps - want_crps).abs() < 1e-15, "{} vs {want_crps}", got.crps);
    // Medians equal the actual values in both windows: MASE 0.
    assert_eq!(got.mase, 0.0);
    assert_eq!((got.coverage_50, got.coverage_90, got.windows), (Some(1.0), Some(1.0), 2));

    let point = vec![WindowForecast { origin: 4, paths: vec![vec![4.0, 4.0]] }, WindowForecast { origin: 6, paths: vec![vec![4.0, 4.0]] }];
    let got = score_forecasts(&s, &windows, &point).unwrap();
    assert_eq!(got.crps, (1.0 + 1.0 + 0.0 + 2.0) / 4.0, "one path: the absolute error");
    assert_eq!((got.coverage_50, got.coverage_90), (None, None));
    // MASE: window 1 errors 1, 1 over the history's naive MAE (2+1+2)/3; window 2 errors 0, 2
    // over (2+1+2+1+2)/5.
    assert!((got.mase - (1.0 / (5.0 / 3.0) + 1.0 / (8.0 / 5.0)) / 2.0).abs() < 1e-15, "{}", got.mase);

    let moved = vec![point[0].clone(), WindowForecast { origin: 5, paths: vec![vec![4.0, 4.0]] }];
    assert!(score_forecasts(&s, &windows, &moved).unwrap_err().to_string().contains("a forecast at origin 6, got one at 5"));
    assert!(score_forecasts(&s, &windows, &point[..1]).is_err());
    let short = vec![point[0].clone(), WindowForecast { origin: 6, paths: vec![vec![4.0]] }];
    assert!(score_forecasts(&s, &windows, &short).unwrap_err().to_string().contains("1 against 2"));
}

#[test]
fn forecast_files_read_back_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("co2.json");
    std::fs::write(&path, r#"{"dataset": "co2", "model": "AutoETS", "windows": [{"origin": 4, "paths": [[1.0, 2.0]]}]}"#).unwrap();
    let f = stipple_series::read_forecasts(&path).unwrap();
    assert_eq!((f.dataset.as_str(), f.windows[0].origin, f.windows[0].paths.len()), ("co2", 4, 1));
    std::fs::write(&path, r#"{"dataset": "co2", "windows": []}"#).unwrap();
    let e = stipple_series::read_forecasts(&path).unwrap_err().to_string();
    assert!(e.contains("co2.json: not a forecast file: missing field `model`"), "{e}");
}
