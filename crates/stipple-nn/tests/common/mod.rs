#![allow(dead_code)]
//! Helpers shared by the integration tests.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use stipple_nn::{UNet2D, UNetConfig};

/// A freshly initialised network and its variables.
pub fn fresh(cfg: &UNetConfig) -> (UNet2D, VarMap) {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let net = UNet2D::new(vb, cfg).expect("build");
    (net, vm)
}

/// Deterministic pseudo-random values in [-1, 1) (an LCG; tests need no RNG crate).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn input(b: usize, c: usize, hw: usize, seed: u64) -> Tensor {
    Tensor::from_vec(values(b * c * hw * hw, seed), (b, c, hw, hw), &Device::Cpu).unwrap()
}

pub fn timesteps(ts: &[f32]) -> Tensor {
    Tensor::from_vec(ts.to_vec(), ts.len(), &Device::Cpu).unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The variables of a VarMap as a sorted (name, tensor) list.
pub fn named_tensors(vm: &VarMap) -> Vec<(String, Tensor)> {
    let data = vm.data().lock().unwrap();
    let mut v: Vec<(String, Tensor)> =
        data.iter().map(|(k, var)| (k.clone(), var.as_tensor().clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Deterministic values in [-1, 1) (a 64-bit LCG), so failures reproduce.
pub fn det(shape: &[usize], seed: u64, dtype: DType) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    assert_eq!(a.dims(), b.dims());
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()
}

pub fn max_abs(a: &Tensor) -> candle_core::Result<f64> {
    a.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()
}
