//! Clipping and dynamic thresholding of the denoised estimate (`ClampedX0`, `X0Clamp`)
//! against diffusers 0.42.1's `DDIMScheduler`.
//!
//! Numbers from tests/reference/make_threshold_reference.py: `_threshold_sample` on a fixed
//! float64 batch (both sides compute the same f64 quantile: 1e-12), and whole 10-step DDIM
//! runs (SD 1.x betas, leading spacing, steps_offset 1, set_alpha_to_one) on the exact
//! ε of Gaussian data N(0.8, 2.5²) with `clip_sample` and with `thresholding`, stepped with
//! `use_clipped_model_output=True` — the noise estimate re-derived from the limited x̂₀,
//! which is what a denoiser wrapper gives every sampler. diffusers keeps ᾱ in f32, hence
//! 1e-5 (as in ddim_conformance.rs).

use serde_json::Value;
use stipple_sample::*;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/diffusers_threshold.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn thresholding(ratio: f64, max: f64) -> X0Clamp {
    X0Clamp { thresholding: true, dynamic_thresholding_ratio: ratio, sample_max_value: max, ..X0Clamp::OFF }
}

#[test]
fn threshold_sample_matches_diffusers() {
    let fx = fixture();
    let t = &fx["threshold_sample"];
    let (x, want) = (floats(&t["x"]), floats(&t["out"]));
    let clamp = thresholding(t["ratio"].as_f64().unwrap(), t["sample_max_value"].as_f64().unwrap());
    let n = x.len() / 3;
    for (b, q) in floats(&t["quantiles"]).into_iter().enumerate() {
        let sample = x[b * n..(b + 1) * n].to_vec();
        let mut abs: Vec<f64> = sample.iter().map(|v| v.abs()).collect();
        assert!((stipple_math::quantile(&mut abs, clamp.dynamic_thresholding_ratio) - q).abs() <= 1e-12 * q);
        let got = clamp.apply(sample).unwrap();
        for (g, w) in got.iter().zip(&want[b * n..(b + 1) * n]) {
            assert!((g - w).abs() <= 1e-12, "sample {b} (quantile {q}): {g} vs {w}");
        }
    }
}

/// The exact denoiser of x₀ ~ N(μ, s²): D(x;σ) = (s²x + σ²μ)/(s²+σ²).
#[derive(Debug)]
struct WideGaussian {
    mu: f64,
    s: f64,
}

impl Denoiser<Vec<f64>> for WideGaussian {
    fn denoise(&mut self, x: &Vec<f64>, sigma: f64) -> Result<Vec<f64>, BoxError> {
        let (s2, v) = (self.s * self.s, sigma * sigma);
        Ok(x.iter().map(|x| (s2 * x + v * self.mu) / (s2 + v)).collect())
    }
}

/// Hands out the fixed variance-noise rows in order.
struct Rows(std::vec::IntoIter<Vec<f64>>);

impl Noise<Vec<f64>> for Rows {
    fn noise_like(&mut self, _x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        self.0.next().ok_or_else(|| "out of recorded noise".into())
    }
}

#[test]
fn ddim_with_clip_sample_and_thresholding_matches_diffusers() {
    let fx = fixture();
    let d = &fx["ddim"];
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let sigmas = SigmaSchedule::Leading.build(&sched, 10, 1).unwrap();
    assert_eq!(sigmas.first(), sched.sigmas()[901]);
    let a_t = sched.alphas_cumprod()[901];
    let x: Vec<f64> = floats(&d["x_T"]).iter().map(|v| v / a_t.sqrt()).collect();
    let rows: Vec<Vec<f64>> = d["variance_noise"].as_array().unwrap().iter().map(floats).collect();
    let mut limits = std::collections::BTreeSet::new();
    for run in d["runs"].as_array().unwrap() {
        let c = &run["config"];
        let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
        let num = |k: &str, default: f64| c.get(k).and_then(Value::as_f64).unwrap_or(default);
        let clamp = X0Clamp {
            clip_sample: flag("clip_sample"),
            clip_sample_range: num("clip_sample_range", 1.0),
            thresholding: flag("thresholding"),
            dynamic_thresholding_ratio: num("dynamic_thresholding_ratio", 0.995),
            sample_max_value: num("sample_max_value", 1.0),
        };
        let model = WideGaussian { mu: d["mu"].as_f64().unwrap(), s: d["s"].as_f64().unwrap() };
        let mut model = ClampedX0::new(model, clamp).unwrap();
        let eta = run["eta"].as_f64().unwrap();
        let mut noise = Rows(rows.clone().into_iter());
        let got = ddim(&mut model, x.clone(), &sigmas, eta, 1.0, &mut noise, &mut ()).unwrap();
        let want = floats(&run["x_out"]);
        let name = run["limits"].as_str().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{name}, η = {eta}: {got:?} vs diffusers {want:?}");
        }
        limits.insert(name);
    }
    assert_eq!(limits.len(), 3, "{limits:?}");
}

/// The largest |D| a sampler reported, over all steps.
#[derive(Default)]
struct MaxDenoised(f64);

impl Observer<Vec<f64>> for MaxDenoised {
    fn on_step(&mut self, info: &StepInfo<'_, Vec<f64>>) -> std::ops::ControlFlow<()> {
        self.0 = info.denoised.iter().fold(self.0, |m, v| m.max(v.abs()));
        std::ops::ControlFlow::Continue(())
    }
}

#[test]
fn every_sampler_sees_the_clipped_estimate() {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let clip = X0Clamp { clip_sample: true, clip_sample_range: 0.5, ..X0Clamp::OFF };
    for kind in SamplerKind::ALL {
        let sigmas = kind.default_schedule().build(&sched, 8, 1).unwrap();
        let x: Vec<f64> = [-2.0, -0.5, 0.1, 1.0, 3.0].iter().map(|v| v * sigmas.first()).collect();
        let mut model = ClampedX0::new(WideGaussian { mu: 0.8, s: 2.5 }, clip).unwrap();
        let mut seen = MaxDenoised::default();
        let out = sample(kind, &mut model, x, &sigmas, &SamplerOptions::default(), &mut Philox4x32::new(1), &mut seen)
            .unwrap();
        assert_eq!(seen.0, 0.5, "{kind}: the clip did not act, or not on every estimate");
        // The last step to σ = 0 returns the clipped estimate (LMS: a combination of the
        // last four, as in k-diffusion).
        if kind != SamplerKind::Lms {
            assert!(out.iter().all(|v| v.abs() <= 0.5), "{kind}: {out:?}");
        }
    }
}

#[test]
fn off_is_the_inner_denoiser_and_thresholding_wins_over_clip() {
    let x = vec![-3.0, -0.2, 0.4, 2.0];
    let inner = WideGaussian { mu: 0.8, s: 2.5 }.denoise(&x, 0.3).unwrap();
    let mut off = ClampedX0::new(WideGaussian { mu: 0.8, s: 2.5 }, X0Clamp::OFF).unwrap();
    assert_eq!(off.denoise(&x, 0.3).unwrap(), inner);
    assert!(!X0Clamp::OFF.is_active() && X0Clamp::default().is_default());
    // diffusers' order: thresholding, else clip_sample.
    let both = X0Clamp { clip_sample: true, clip_sample_range: 0.1, ..thresholding(0.5, 10.0) };
    assert_eq!(both.apply(x.clone()).unwrap(), thresholding(0.5, 10.0).apply(x.clone()).unwrap());
    // |x| sorted 0.2, 0.4, 2, 3: the median is 1.2, so x ↦ clamp(x, ±1.2)/1.2.
    let got = thresholding(0.5, 10.0).apply(x).unwrap();
    let want = [-1.0, -0.2 / 1.2, 0.4 / 1.2, 1.0];
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-15), "{got:?}");
}

#[test]
fn out_of_range_settings_are_rejected() {
    let bad = [
        X0Clamp { clip_sample_range: 0.0, ..X0Clamp::OFF },
        X0Clamp { clip_sample_range: f64::INFINITY, ..X0Clamp::OFF },
        X0Clamp { sample_max_value: -1.0, ..X0Clamp::OFF },
        X0Clamp { dynamic_thresholding_ratio: 1.5, ..X0Clamp::OFF },
        X0Clamp { dynamic_thresholding_ratio: f64::NAN, ..X0Clamp::OFF },
    ];
    for c in bad {
        let e = ClampedX0::new(WideGaussian { mu: 0.0, s: 1.0 }, c).unwrap_err();
        assert!(matches!(e, SampleError::InvalidOption { .. }), "{c:?}: {e}");
    }
    let msg = X0Clamp { dynamic_thresholding_ratio: 1.5, ..X0Clamp::OFF }.validate().unwrap_err().to_string();
    assert!(msg.contains("dynamic_thresholding_ratio") && msg.contains("[0, 1]"), "{msg}");
    assert!(vec![1.0, 2.0].clamp_scale_samples(&[1.0, 2.0]).is_err());
}

#[test]
fn dpmpp_sde_rejects_r_outside_0_1() {
    let sigmas = Sigmas::new(vec![2.0, 1.0, 0.0]).unwrap();
    for r in [0.0, -0.5, 1.5, f64::NAN] {
        let o = SamplerOptions { r: Some(r), ..Default::default() };
        let e = sample(SamplerKind::DpmppSde, &mut WideGaussian { mu: 0.0, s: 1.0 }, vec![1.0], &sigmas, &o, &mut Philox4x32::new(0), &mut ())
            .unwrap_err();
        assert!(matches!(e, SampleError::InvalidOption { name: "r", .. }), "r = {r}: {e}");
    }
}
