//! The ComfyUI/k-diffusion schedules (VP included) and zero-terminal-SNR rescaling against
//! `tests/reference/make_schedule_reference.py` (SD 1.x betas in f64). Tolerance 1e-12
//! relative: both sides evaluate the same f64 formulas (the beta schedule's timesteps are
//! integers from scipy's `beta.ppf`, matched exactly).

use serde_json::Value;
use stipple_math::*;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn schedules_match_the_reference() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/schedules.json")).unwrap();
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let mut checked = 0;
    for (key, want) in fx["schedules"].as_object().unwrap() {
        let Some((name, n)) = key.rsplit_once('_') else { continue };
        let Ok(kind) = name.parse::<SigmaSchedule>() else { continue };
        let n: usize = n.parse().unwrap();
        let want = floats(want);
        let got = kind.build(&sched, n, 0).unwrap().into_vec();
        assert_eq!(got.len(), want.len(), "{key}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1e-300), "{key}: {got:?} vs {want:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 40);
    let betas = BetaSchedule::ScaledLinear.betas(1000, 0.00085, 0.012);
    let z = rescale_zero_terminal_snr(&betas);
    let want = floats(&fx["schedules"]["zero_snr_betas_pick"]);
    for (i, w) in [0, 1, 10, 100, 500, 998, 999].into_iter().zip(want) {
        assert!((z[i] - w).abs() <= 1e-12 * w.abs(), "zero-SNR β[{i}] = {} vs {w}", z[i]);
    }
    let zs = DiscreteSchedule::zero_terminal_snr(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    assert!((zs.sigma_max() - (16_777_216f64 - 1.0).sqrt()).abs() < 1e-6);
}
