//! The scores against the reference tools on fixed inputs: `properscoring.crps_ensemble`,
//! `numpy.quantile`, and the MASE and seasonal naive forecast as numpy computes them
//! (tests/reference/make_forecast_scores_reference.py → tests/reference/series/).

use stipple_series::{crps_ensemble, interval_coverage, mase, quantile, seasonal_naive, SeriesError};

fn cases() -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/series/forecast_scores.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn scores_match_properscoring_and_numpy() {
    for case in cases() {
        let paths: Vec<Vec<f64>> = case["paths"].as_array().unwrap().iter().map(floats).collect();
        let (obs, history) = (floats(&case["obs"]), floats(&case["history"]));
        let season = case["season"].as_u64().unwrap() as usize;
        for (t, want) in floats(&case["crps"]).into_iter().enumerate() {
            let ensemble: Vec<f64> = paths.iter().map(|p| p[t]).collect();
            let got = crps_ensemble(&ensemble, obs[t]).unwrap();
            assert!(close(got, want), "m = {}, step {t}: CRPS {got} vs properscoring {want}", paths.len());
        }
        let mut column: Vec<f64> = paths.iter().map(|p| p[1 % obs.len()]).collect();
        column.sort_by(f64::total_cmp);
        for (q, want) in case["quantiles"].as_object().unwrap() {
            let got = quantile(&column, q.parse().unwrap()).unwrap();
            assert!(close(got, want.as_f64().unwrap()), "quantile {q}: {got} vs numpy {want}");
        }
        for (level, want) in case["coverage"].as_object().unwrap() {
            assert_eq!(interval_coverage(&paths, &obs, level.parse().unwrap()).unwrap(), want.as_f64().unwrap(), "coverage {level}");
        }
        let median = floats(&case["median"]);
        assert!(close(mase(&median, &obs, &history, season).unwrap(), case["mase"].as_f64().unwrap()));
        assert_eq!(seasonal_naive(&history, season, obs.len()).unwrap(), floats(&case["seasonal_naive"]));
    }
}

#[test]
fn known_answers_and_bad_input() {
    // One sample: the absolute error. A perfect point ensemble scores 0.
    assert_eq!(crps_ensemble(&[2.0], 5.0).unwrap(), 3.0);
    assert_eq!(crps_ensemble(&[1.0, 1.0, 1.0], 1.0).unwrap(), 0.0);
    // Season 3 of 1..=7: the next values repeat 5, 6, 7, 5.
    assert_eq!(seasonal_naive(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3, 4).unwrap(), [5.0, 6.0, 7.0, 5.0]);
    assert_eq!(seasonal_naive(&[1.0, 2.0], 1, 2).unwrap(), [2.0, 2.0]);
    // The naive forecast of a random walk scores MASE 1 in-sample by construction of its scale.
    assert_eq!(mase(&[3.0], &[4.0], &[0.0, 1.0, 2.0], 1).unwrap(), 1.0);

    assert_eq!(crps_ensemble(&[], 1.0).unwrap_err(), SeriesError::TooShort { what: "the CRPS", needed: 1, got: 0 });
    assert_eq!(crps_ensemble(&[1.0, f64::NAN], 1.0).unwrap_err(), SeriesError::NonFinite { what: "the ensemble", index: 1 });
    assert!(mase(&[1.0], &[1.0], &[2.0, 2.0, 2.0], 1).unwrap_err().to_string().contains("scale is 0"));
    assert!(mase(&[1.0], &[1.0], &[1.0, 2.0], 2).unwrap_err().to_string().contains("needs at least 3 values, got 2"));
    assert!(seasonal_naive(&[1.0], 0, 2).unwrap_err().to_string().starts_with("season: "));
    assert!(interval_coverage(&[vec![1.0]], &[1.0, 2.0], 0.5).unwrap_err().to_string().contains("1 against 2"));
    assert!(interval_coverage(&[vec![1.0]], &[1.0], 1.0).unwrap_err().to_string().starts_with("level: "));
}
