//! Dynamic thresholding and clipping of batched tensor latents (`ClampLatent` for
//! `TensorLatent`): each batch item is one sample, as in diffusers' `_threshold_sample`.
//!
//! Numbers from tests/reference/make_threshold_reference.py (diffusers 0.42.1
//! `DDIMScheduler._threshold_sample`, ratio 0.9, sample_max_value 1.5, on a (3, 2, 4, 4)
//! float64 batch whose items fall below 1, between 1 and the maximum, and above it): in f64
//! the same arithmetic (1e-12), in f32 to f32 rounding (1e-6).

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use stipple_nn::TensorLatent;
use stipple_sample::{ClampLatent, ClampedX0, Denoiser, X0Clamp, BoxError};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn batched_thresholding_matches_diffusers() {
    let fx: Value =
        serde_json::from_str(include_str!("../../stipple-sample/tests/fixtures/diffusers_threshold.json")).unwrap();
    let t = &fx["threshold_sample"];
    let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let clamp = X0Clamp {
        thresholding: true,
        dynamic_thresholding_ratio: t["ratio"].as_f64().unwrap(),
        sample_max_value: t["sample_max_value"].as_f64().unwrap(),
        ..X0Clamp::OFF
    };
    let want = floats(&t["out"]);
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-6)] {
        let x = Tensor::from_vec(floats(&t["x"]), shape.as_slice(), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        let got = clamp.apply(TensorLatent(x)).unwrap();
        assert_eq!(got.0.dims(), shape.as_slice());
        assert_eq!(got.0.dtype(), dtype);
        let got: Vec<f64> = got.0.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= tol, "{dtype:?} element {i}: {g} vs {w}");
        }
    }
}

struct Identity;
impl Denoiser<TensorLatent> for Identity {
    fn denoise(&mut self, x: &TensorLatent, _sigma: f64) -> Result<TensorLatent, BoxError> {
        Ok(x.clone())
    }
}

#[test]
fn the_wrapper_clips_tensors_and_rejects_mismatched_batches() {
    let x = TensorLatent(Tensor::new(&[[[-3f32, 0.2], [0.7, 1.4]]], &Device::Cpu).unwrap());
    let clip = X0Clamp { clip_sample: true, clip_sample_range: 1.0, ..X0Clamp::OFF };
    let mut d = ClampedX0::new(Identity, clip).unwrap();
    let got: Vec<f32> = d.denoise(&x, 2.0).unwrap().0.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got, [-1.0, 0.2, 0.7, 1.0]);
    assert!(x.clamp_scale_samples(&[1.0, 2.0]).is_err());
    let flat = TensorLatent(Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap());
    assert!(flat.sample_values().is_err());
}
