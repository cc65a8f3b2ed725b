//! Time series end to end: train a tiny 1-D model on a sine written by the test, forecast
//! held-out values, and check the files, the imposed history, the quantiles, the recipe, and
//! that training made the forecast better (its CRPS beats an untrained model's); `rerun`
//! regenerates a forecast's paths exactly. Bad input of every kind fails cleanly with a
//! message naming the problem.

use std::path::{Path, PathBuf};

mod common;

use common::{assert_fails, stipple, text};

/// Rows of the synthetic series, and the values held out at its end.
const ROWS: usize = 240;
const HELD_OUT: usize = 8;

/// `y_t = 10 + 3·sin(2π t / 12)`: a level that is not 0, a season of 12 rows.
fn sine(t: usize) -> f64 {
    10.0 + 3.0 * (2.0 * std::f64::consts::PI * t as f64 / 12.0).sin()
}

/// Writes a CSV with a date-like text column and the series `y` over rows `0..n` (`cell`
/// may replace a row's text).
fn write_csv(path: &Path, n: usize, cell: impl Fn(usize) -> Option<String>) {
    let mut s = String::from("day,y\n");
    for t in 0..n {
        s.push_str(&format!("d{t},{}\n", cell(t).unwrap_or_else(|| sine(t).to_string())));
    }
    std::fs::write(path, s).unwrap();
}

/// Trains the tiny network (context 24, horizon 8: a length of 32 over two levels) for
/// `steps` steps on `csv` into `run`.
fn train(csv: &Path, run: &Path, steps: usize) -> std::process::Output {
    stipple()
        .args(["train", "--quiet", "--context", "24", "--horizon", "8", "--channels", "16,32", "--layers-per-block", "1"])
        .args(["--batch-size", "32", "--warmup", "10", "--sample-every", "0", "--checkpoint-every", "1000"])
        .args(["--steps", &steps.to_string()])
        .arg("--data")
        .arg(csv)
        .arg("--out")
        .arg(run)
        .output()
        .unwrap()
}

fn forecast(run: &Path, csv: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    stipple()
        .args(["forecast", "--samples", "64", "--steps", "20"])
        .args(extra)
        .arg("--model")
        .arg(run)
        .arg("--data")
        .arg(csv)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// The rows of a CSV file written by `forecast`, as cells (header first).
fn rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

/// Mean ensemble CRPS of the forecast in `out` against the held-out sine values.
fn crps(out: &Path) -> f64 {
    let r = rows(&out.join("paths.csv"));
    let forecast_rows = &r[r.len() - HELD_OUT..];
    let mut total = 0.0;
    for (k, row) in forecast_rows.iter().enumerate() {
        let samples: Vec<f64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
        total += stipple_series::crps_ensemble(&samples, sine(ROWS - HELD_OUT + k)).unwrap();
    }
    total / HELD_OUT as f64
}

#[test]
fn train_forecast_and_beat_an_untrained_model() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("sine.csv");
    write_csv(&full, ROWS, |_| None);
    let history = dir.path().join("history.csv");
    write_csv(&history, ROWS - HELD_OUT, |_| None);
    let (trained, untrained) = (dir.path().join("trained"), dir.path().join("untrained"));
    let o = train(&full, &trained, 300);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("stipple forecast --model"), "{}", text(&o));
    assert!(trained.join("samples/latest.png").is_file(), "a series run draws its samples too");
    let o = train(&full, &untrained, 1);
    assert!(o.status.success(), "{}", text(&o));

    let out = dir.path().join("fc");
    let o = forecast(&trained, &history, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["paths.csv", "quantiles.csv", "quantiles.json", "fan_chart.png", "forecast.json"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // paths.csv: a header and one row per value of the window (24 + 8), a column per path.
    let paths = rows(&out.join("paths.csv"));
    assert_eq!(paths.len(), 1 + 32);
    assert_eq!(paths[0].len(), 2 + 64);
    // The known history is the data, exactly, in every path; the forecast rows have no observation.
    for (k, row) in paths[1..].iter().enumerate() {
        let t = ROWS - HELD_OUT - 24 + k;
        assert_eq!(row[0], (t + 2).to_string(), "CSV row numbers count the header");
        if k < 24 {
            assert_eq!(row[1].parse::<f64>().unwrap(), sine(t));
            assert!(row[2..].iter().all(|v| v.parse::<f64>().unwrap() == sine(t)), "row {t}: {row:?}");
        } else {
            assert_eq!(row[1], "");
        }
    }
    // Quantiles are ordered at every step.
    let q = rows(&out.join("quantiles.csv"));
    assert_eq!(q[0][2..], ["q0.05", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.95"]);
    for row in &q[1..] {
        let v: Vec<f64> = row[2..].iter().map(|x| x.parse().unwrap()).collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
    }
    // The recipe: the sidecar and the fan chart both carry it.
    for file in ["forecast.json", "fan_chart.png"] {
        let o = stipple().arg("info").arg(out.join(file)).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("\"horizon\":8") || text(&o).contains("\"horizon\": 8"), "{file}: {}", text(&o));
        assert!(text(&o).contains("history.csv"), "{file}: {}", text(&o));
    }
    // Training helped: the trained model's forecast scores better than the untrained one's.
    let out_untrained = dir.path().join("fc-untrained");
    let o = forecast(&untrained, &history, &out_untrained, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let (good, bad) = (crps(&out), crps(&out_untrained));
    eprintln!("mean CRPS over the held-out values: trained {good:.4}, untrained {bad:.4}");
    assert!(good < 0.5 * bad, "CRPS trained {good} vs untrained {bad}");

    // Imputation: an empty cell in the window is filled in, the other values kept.
    let gappy = dir.path().join("gappy.csv");
    write_csv(&gappy, ROWS - HELD_OUT, |t| (t == ROWS - HELD_OUT - 5).then(String::new));
    let filled = dir.path().join("filled");
    let o = forecast(&trained, &gappy, &filled, &["--horizon", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 missing value(s) filled in"), "{}", text(&o));
    let p = rows(&filled.join("paths.csv"));
    assert_eq!(p.len(), 1 + 32, "horizon 0: the whole window comes from the series");
    let gap = p.iter().find(|r| r[0] == (ROWS - HELD_OUT - 5 + 2).to_string()).unwrap();
    assert_eq!(gap[1], "");
    let values: Vec<f64> = gap[2..].iter().map(|v| v.parse().unwrap()).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((mean - sine(ROWS - HELD_OUT - 5)).abs() < 1.0, "imputed mean {mean} vs {}", sine(ROWS - HELD_OUT - 5));

    // Bad input to a trained model.
    let o = forecast(&trained, &history, &dir.path().join("x"), &["--horizon", "9"]);
    assert_fails(&o, &["forecast"], &["--horizon", "at most 8"]);
    let short = dir.path().join("short.csv");
    write_csv(&short, 20, |_| None);
    let o = forecast(&trained, &short, &dir.path().join("x"), &[]);
    assert_fails(&o, &["forecast short"], &["20 rows", "24"]);
    let word = dir.path().join("word.csv");
    write_csv(&word, 100, |t| (t == 50).then(|| "n/a".to_string()));
    let o = forecast(&trained, &word, &dir.path().join("x"), &[]);
    assert_fails(&o, &["forecast word"], &["row 52", "not a number"]);
    assert!(!dir.path().join("x").exists(), "nothing half-written");
}

#[test]
fn rerun_regenerates_the_same_paths_from_the_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sine.csv");
    write_csv(&csv, 100, |_| None);
    let run = dir.path().join("run");
    assert!(train(&csv, &run, 2).status.success());
    let out = dir.path().join("fc");
    let o = forecast(&run, &csv, &out, &["--sampler", "euler_ancestral", "--seed", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    // From the sidecar (into fc.rerun by default) and from the fan chart: the same paths.
    let o = stipple().arg("rerun").arg(out.join("forecast.json")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let again = dir.path().join("fc.rerun");
    let o = stipple().arg("rerun").arg(out.join("fan_chart.png")).arg("-o").arg(dir.path().join("chart")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for folder in [again, dir.path().join("chart")] {
        for file in ["paths.csv", "quantiles.csv", "quantiles.json", "fan_chart.png", "forecast.json"] {
            assert_eq!(std::fs::read(folder.join(file)).unwrap(), std::fs::read(out.join(file)).unwrap(), "{} differs", folder.join(file).display());
        }
    }
    // Other data, or another model, would give another forecast: refused.
    let other = dir.path().join("other.csv");
    write_csv(&other, 100, |t| (t == 99).then(|| "9".into()));
    let o = stipple().arg("rerun").arg(out.join("forecast.json")).arg("--data").arg(&other).arg("-o").arg(dir.path().join("x")).output().unwrap();
    assert_fails(&o, &["rerun with other data"], &["--data", "SHA-256", "same CSV file"]);
    let retrained = dir.path().join("retrained");
    assert!(train(&csv, &retrained, 3).status.success());
    let o = stipple().arg("rerun").arg(out.join("forecast.json")).arg("--model").arg(&retrained).arg("-o").arg(dir.path().join("x")).output().unwrap();
    assert_fails(&o, &["rerun with another model"], &["--model", "SHA-256", "force"]);
    assert!(!dir.path().join("x").exists(), "nothing written");
}

#[test]
fn repaint_resampling_forecasts_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sine.csv");
    write_csv(&csv, 100, |_| None);
    let run = dir.path().join("run");
    assert!(train(&csv, &run, 2).status.success());
    let (plain, resampled) = (dir.path().join("plain"), dir.path().join("resampled"));
    assert!(forecast(&run, &csv, &plain, &["--seed", "4"]).status.success());
    // The observed history is the known part: RePaint needs no image mask here.
    let o = forecast(&run, &csv, &resampled, &["--seed", "4", "--resample", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let paths = |d: &Path| std::fs::read(d.join("paths.csv")).unwrap();
    assert_ne!(paths(&plain), paths(&resampled), "resampling changes the paths");
    let o = stipple().arg("rerun").arg(resampled.join("forecast.json")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(paths(&dir.path().join("resampled.rerun")), paths(&resampled), "the rerun resamples again");
    let o = forecast(&run, &csv, &dir.path().join("x"), &["--resample", "0"]);
    assert_fails(&o, &["resample 0"], &["resample", "between 1 (off)"]);
}

/// A model of the log, seasonally differenced series: its paths come back in the series'
/// units around the history it continues, the transform is recorded in the model file and
/// the recipe, and `rerun` repeats the forecast bit for bit.
#[test]
fn a_transformed_series_model_forecasts_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sine.csv");
    write_csv(&csv, 100, |_| None);
    let run = dir.path().join("run");
    let o = stipple()
        .args(["train", "--quiet", "--context", "24", "--horizon", "8", "--channels", "16,32", "--layers-per-block", "1"])
        .args(["--batch-size", "8", "--warmup", "1", "--sample-every", "0", "--steps", "2", "--log", "--difference", "12", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = stipple().arg("inspect").arg(&run).output().unwrap();
    for needle in ["format_version: 3", r#""transform": {"#, r#""log": true"#] {
        assert!(text(&o).contains(needle), "{needle} not in {}", text(&o));
    }
    let out = dir.path().join("fc");
    let o = forecast(&run, &csv, &out, &["--seed", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let table = rows(&out.join("paths.csv"));
    for (t, row) in table[1..].iter().enumerate() {
        let observed = &row[1];
        for path in &row[2..] {
            let v: f64 = path.parse().unwrap();
            if t < 24 {
                assert_eq!(path, observed, "the history is kept exactly");
            } else {
                // exp of anything: positive, whatever an untrained model draws.
                assert!(v > 0.0 && v.is_finite(), "row {t}: {v}");
            }
        }
    }
    let recipe = std::fs::read_to_string(out.join("forecast.json")).unwrap();
    assert!(recipe.contains(r#""transform": {"#), "{recipe}");
    let o = stipple().arg("rerun").arg(out.join("forecast.json")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(dir.path().join("fc.rerun/paths.csv")).unwrap(), std::fs::read(out.join("paths.csv")).unwrap());
    // Forecasting needs the 12 rows before the window that the difference reaches back to.
    let short = dir.path().join("short.csv");
    write_csv(&short, 30, |_| None);
    let o = forecast(&run, &short, &dir.path().join("x"), &[]);
    assert_fails(&o, &["forecast of a short series"], &["has 30 rows", "the last 24 values", "the 12 before them", "36 rows in all"]);
    // Training: the log of a value that is not positive, and too few rows for the difference.
    let zero = dir.path().join("zero.csv");
    write_csv(&zero, 100, |t| (t == 30).then(|| "0".into()));
    let short_train = dir.path().join("short_train.csv");
    write_csv(&short_train, 40, |_| None);
    for (csv, flags, wanted) in [
        (&zero, &["--log"][..], &["row 32", "0 is not positive", "--log"][..]),
        (&short_train, &["--difference", "12"][..], &["has 40 rows", "at least 44 rows", "12 consumed by the differences"][..]),
    ] {
        let o = stipple()
            .args(["train", "--quiet", "--steps", "1", "--context", "24", "--horizon", "8", "--data"])
            .arg(csv)
            .args(flags)
            .arg("--out")
            .arg(dir.path().join("bad"))
            .output()
            .unwrap();
        assert_fails(&o, &[flags[0]], wanted);
    }
}

/// What a test CSV holds at a row instead of the sine (`None`: the sine).
type Cell = Box<dyn Fn(usize) -> Option<String>>;

#[test]
fn bad_training_series_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, usize, Cell, &[&str]); 3] = [
        ("missing", 100, Box::new(|t| (t == 7).then(String::new)), &["row 9", "missing value"]),
        ("word", 100, Box::new(|t| (t == 3).then(|| "oops".into())), &["row 5", "not a number"]),
        ("short", 20, Box::new(|_| None), &["one window", "32", "20"]),
    ];
    for (name, n, cell, wanted) in cases {
        let csv: PathBuf = dir.path().join(format!("{name}.csv"));
        write_csv(&csv, n, cell);
        let o = stipple()
            .args(["train", "--quiet", "--steps", "1", "--context", "24", "--horizon", "8", "--column", "y", "--data"])
            .arg(&csv)
            .arg("--out")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert_fails(&o, &[name], wanted);
    }
    // A length the network cannot halve is refused before any data is read.
    let csv = dir.path().join("ok.csv");
    write_csv(&csv, 100, |_| None);
    let o = stipple().args(["train", "--quiet", "--context", "25", "--horizon", "8", "--data"]).arg(&csv).output().unwrap();
    assert_fails(&o, &["odd"], &["multiple of 4"]);
}

/// Mean absolute error of the per-step median of the forecast in `out` against the sine
/// continued from row `from`.
fn median_error(out: &Path, from: usize) -> f64 {
    let r = rows(&out.join("paths.csv"));
    let forecast_rows = &r[r.len() - HELD_OUT..];
    let mut total = 0.0;
    for (k, row) in forecast_rows.iter().enumerate() {
        let mut samples: Vec<f64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
        samples.sort_by(f64::total_cmp);
        total += (stipple_series::quantile(&samples, 0.5).unwrap() - sine(from + k)).abs();
    }
    total / HELD_OUT as f64
}

/// A model conditioned as in CSDI (`--conditioning csdi`) reads the history as input: from
/// histories cut at three phases of the sine it continues each one's own phase, far closer
/// than the same network untrained; the history stays exact in every path, and a gap in it
/// is imputed.
#[test]
fn a_csdi_model_follows_the_history_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("sine.csv");
    write_csv(&full, ROWS, |_| None);
    let (trained, untrained) = (dir.path().join("csdi"), dir.path().join("csdi-untrained"));
    let csdi = |run: &Path, steps: usize| {
        let o = stipple()
            .args(["train", "--quiet", "--conditioning", "csdi", "--context", "24", "--horizon", "8", "--channels", "16,32", "--layers-per-block", "1"])
            .args(["--batch-size", "32", "--warmup", "10", "--sample-every", "0", "--checkpoint-every", "1000", "--steps", &steps.to_string()])
            .arg("--data")
            .arg(&full)
            .arg("--out")
            .arg(run)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    };
    csdi(&trained, 300);
    csdi(&untrained, 1);
    for cut in [ROWS - HELD_OUT, ROWS - HELD_OUT - 3, ROWS - HELD_OUT - 7] {
        let history = dir.path().join(format!("history-{cut}.csv"));
        write_csv(&history, cut, |_| None);
        let (out, out_untrained) = (dir.path().join(format!("fc-{cut}")), dir.path().join(format!("fc-untrained-{cut}")));
        for (run, out) in [(&trained, &out), (&untrained, &out_untrained)] {
            let o = forecast(run, &history, out, &[]);
            assert!(o.status.success(), "{}", text(&o));
        }
        let paths = rows(&out.join("paths.csv"));
        for (k, row) in paths[1..25].iter().enumerate() {
            assert!(row[2..].iter().all(|v| v.parse::<f64>().unwrap() == sine(cut - 24 + k)), "history row {k}: {row:?}");
        }
        let (good, bad) = (median_error(&out, cut), median_error(&out_untrained, cut));
        eprintln!("history to row {cut}: median absolute error {good:.3} (untrained {bad:.3})");
        assert!(good < 0.5 && good < 0.25 * bad, "cut {cut}: median error {good}, untrained {bad}");
    }
    // Imputation of a gap in the history, which the random training masks teach.
    let gappy = dir.path().join("gappy.csv");
    let gap = ROWS - HELD_OUT - 5;
    write_csv(&gappy, ROWS - HELD_OUT, |t| (t == gap).then(String::new));
    let filled = dir.path().join("filled");
    let o = forecast(&trained, &gappy, &filled, &["--horizon", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let p = rows(&filled.join("paths.csv"));
    let row = p.iter().find(|r| r[0] == (gap + 2).to_string()).unwrap();
    let values: Vec<f64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((mean - sine(gap)).abs() < 1.0, "imputed mean {mean} vs {}", sine(gap));
}
