//! Generation with a model of sequences: samples of the model's shape, not clamped like
//! pixels, independent of the batch size; known values imposed exactly wherever the mask
//! keeps them; a forecast's paths hold the history and its quantiles are ordered; a model of
//! a transformed series forecasts the transformed history and inverts its paths.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::{DiffusionConfig, LoadedModel, ModelConfig, Net, NetworkConfig, SeriesWindow, UNet1DConfig};
use stipple_pipeline::{forecast, generate, generate_known, GenerateRequest, SeriesInput};
use stipple_series::SeriesTransform;

/// An untrained tiny model of windows of 12 + 4 values.
fn model() -> LoadedModel {
    model_of(SeriesTransform::default())
}

/// The same model (the same weights) of the series transformed by `transform`.
fn model_of(transform: SeriesTransform) -> LoadedModel {
    let net_cfg = UNet1DConfig::tiny(16, 1);
    let vm = VarMap::new();
    let net = Net::new(seeded_var_builder(&vm, 3, &Device::Cpu), &NetworkConfig::UNet1D(net_cfg.clone())).unwrap();
    let mut config = ModelConfig::new(NetworkConfig::UNet1D(net_cfg), DiffusionConfig::default());
    config.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec!["y".into()], transform });
    LoadedModel { config, net, text: None, metadata: HashMap::new() }
}

fn spec(count: usize, batch: usize) -> stipple_pipeline::GenerateSpec {
    seeded(9, count, batch)
}

fn seeded(seed: u64, count: usize, batch: usize) -> stipple_pipeline::GenerateSpec {
    GenerateRequest { steps: Some(4), count: Some(count), batch_size: Some(batch), seed: Some(seed), ..Default::default() }.validate().unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn samples_have_the_model_shape_and_do_not_depend_on_the_batch() {
    let m = model();
    let s = spec(3, 3);
    let sigmas = s.sigmas(&m.config.diffusion).unwrap();
    let all = generate(&m, &s, &sigmas, &Device::Cpu, &mut ()).unwrap();
    assert_eq!(all.dims(), &[3, 1, 16]);
    let one_by_one = generate(&m, &spec(3, 1), &sigmas, &Device::Cpu, &mut ()).unwrap();
    // The same noise, so the same samples up to f32 rounding (the convolutions' GEMMs run over
    // B·L rows, whose blocking changes with the batch); other seeds differ by the values' size.
    let (a, b) = (values(&all), values(&one_by_one));
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= 1e-5 * scale, "batch of 3 vs 1 by 1: off by {diff} on values up to {scale}");
    let other = generate(&m, &seeded(10, 3, 3), &sigmas, &Device::Cpu, &mut ()).unwrap();
    let moved = a.iter().zip(values(&other)).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(moved > 0.1 * scale, "another seed must give other samples");
    // An untrained net at σ_max ≈ 157 leaves values far outside [−1, 1]: a series is not clamped.
    assert!(values(&all).iter().any(|v| v.abs() > 1.0));
}

#[test]
fn known_values_are_imposed_exactly() {
    let m = model();
    let s = spec(2, 2);
    let sigmas = s.sigmas(&m.config.diffusion).unwrap();
    let known: Vec<f32> = (0..16).map(|i| i as f32 * 0.25 - 2.0).collect();
    let keep: Vec<u8> = (0..16).map(|i| u8::from(i < 12 && i != 5)).collect();
    let known_t = Tensor::from_vec(known.clone(), (1, 1, 16), &Device::Cpu).unwrap();
    let keep_t = Tensor::from_vec(keep.clone(), (1, 1, 16), &Device::Cpu).unwrap();
    let out = generate_known(&m, &s, &sigmas, &known_t, &keep_t, &Device::Cpu, &mut ()).unwrap();
    let out = values(&out);
    for sample in out.chunks(16) {
        for i in 0..16 {
            if keep[i] == 1 {
                assert_eq!(sample[i], known[i], "kept value {i}");
            }
        }
        assert_ne!(sample[5], known[5], "a missing value is drawn, not copied");
    }
    // A mask of another shape is bad input.
    let short = Tensor::zeros((1, 1, 8), DType::U8, &Device::Cpu).unwrap();
    let err = generate_known(&m, &s, &sigmas, &known_t, &short, &Device::Cpu, &mut ()).unwrap_err();
    assert!(err.to_string().contains("[1, 1, 16]"), "{err}");
}

#[test]
fn forecast_paths_hold_the_history_and_quantiles_are_ordered() {
    let m = model();
    let s = spec(8, 8);
    let sigmas = s.sigmas(&m.config.diffusion).unwrap();
    let series = SeriesInput { column: "y".into(), values: (0..30).map(|t| (t != 27).then_some(100.0 + t as f64)).collect() };
    let f = forecast(&m, &series, Some(2), &s, &sigmas, &Device::Cpu, &mut ()).unwrap();
    assert_eq!((f.start, f.context, f.horizon, f.paths.len()), (16, 14, 2, 8));
    for p in &f.paths {
        for (t, o) in f.observed.iter().enumerate() {
            if let Some(v) = o {
                assert_eq!(p[t], *v);
            }
        }
        assert!(p[11].is_finite() && p[15].is_finite());
    }
    assert_eq!(f.observed[11], None, "row 27 is missing");
    for t in 0..16 {
        assert!(f.quantiles.windows(2).all(|q| q[0][t] <= q[1][t]), "step {t}");
    }
    // The window is scaled by its first 12 values, as training windows are.
    let first: Vec<f64> = (16..28).filter(|&t| t != 27).map(|t| 100.0 + t as f64).collect();
    assert_eq!(f.mean, first.iter().sum::<f64>() / first.len() as f64);
    let err = forecast(&m, &series, Some(5), &s, &sigmas, &Device::Cpu, &mut ()).unwrap_err();
    assert!(err.to_string().contains("at most 4"), "{err}");
}

/// A model of the log-differenced series forecasts exactly what the same network forecasts
/// from the log-differenced history, integrated back and exponentiated.
#[test]
fn a_transformed_model_forecasts_the_transformed_history_and_inverts_its_paths() {
    let transform = SeriesTransform { log: true, differences: vec![1] };
    let s = spec(4, 4);
    let plain = model();
    let sigmas = s.sigmas(&plain.config.diffusion).unwrap();
    // A growing seasonal series (airline-like), positive.
    let x: Vec<f64> = (0..30).map(|t| (100.0 + 3.0 * t as f64) * (1.0 + 0.2 * (t as f64 * 0.5).sin())).collect();
    let series = SeriesInput { column: "y".into(), values: x.iter().copied().map(Some).collect() };
    let f = forecast(&model_of(transform.clone()), &series, None, &s, &sigmas, &Device::Cpu, &mut ()).unwrap();
    assert_eq!((f.start, f.context, f.horizon, f.observed.len()), (18, 12, 4, 16));
    assert_eq!(f.transform, transform);
    // The same network on the transformed series, untransformed.
    let y = transform.apply(&x).unwrap();
    let direct = forecast(&plain, &SeriesInput { column: "y".into(), values: y.iter().copied().map(Some).collect() }, None, &s, &sigmas, &Device::Cpu, &mut ()).unwrap();
    assert_eq!((direct.mean, direct.scale), (f.mean, f.scale), "the same window, scaled alike");
    let rows: Vec<Option<f64>> = series.values.iter().copied().chain([None; 4]).collect();
    for (p, d) in f.paths.iter().zip(&direct.paths) {
        assert_eq!(p[..12], x[18..], "the history is kept exactly");
        // Integrated by hand: x_t = x_{t−1} · exp(y_t).
        let mut last = x[29];
        for t in 12..16 {
            last *= d[t].exp();
            assert!((p[t] - last).abs() <= 1e-12 * last, "step {t}: {} against {last}", p[t]);
        }
        assert_eq!(*p, transform.invert(&rows, d).unwrap());
    }
    // The differences need the row before the window, and the log positive values.
    let short = SeriesInput { column: "y".into(), values: series.values[..12].to_vec() };
    let e = forecast(&model_of(transform.clone()), &short, None, &s, &sigmas, &Device::Cpu, &mut ()).unwrap_err().to_string();
    assert!(e.contains("has 12 rows") && e.contains("13 rows in all"), "{e}");
    let mut bad = series.clone();
    bad.values[20] = Some(-1.0);
    let e = forecast(&model_of(transform), &bad, None, &s, &sigmas, &Device::Cpu, &mut ()).unwrap_err().to_string();
    assert!(e.contains("row 22, column \"y\": -1 is not positive"), "{e}");
}
