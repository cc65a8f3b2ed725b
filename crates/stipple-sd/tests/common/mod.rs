//! Shared helpers of the conformance tests: the fixture made by
//! `tests/reference/make_sd_fixture.py` and its golden outputs.

#![allow(dead_code)] // each test file uses a subset

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tiny SD 1.x diffusers folder.
pub fn folder() -> PathBuf {
    repo().join("tests/fixtures/sd/tiny-sd15")
}

/// The same weights as an original-layout single file.
pub fn single_file() -> PathBuf {
    repo().join("tests/fixtures/sd/tiny-sd15.safetensors")
}

/// The tiny SD 2.x-shaped diffusers folder and its single file.
pub fn folder_sd2() -> PathBuf {
    repo().join("tests/fixtures/sd/tiny-sd2")
}

pub fn single_file_sd2() -> PathBuf {
    repo().join("tests/fixtures/sd/tiny-sd2.safetensors")
}

/// `goldens.safetensors`: diffusers' / transformers' outputs (f32) for the SD 1.x fixture.
pub fn goldens() -> HashMap<String, Tensor> {
    goldens_named("goldens")
}

/// `goldens.json`: prompts, token ids and the pipeline's schedule.
pub fn meta() -> serde_json::Value {
    meta_named("goldens")
}

/// `tests/reference/sd/{name}.safetensors`.
pub fn goldens_named(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(repo().join(format!("tests/reference/sd/{name}.safetensors")), &Device::Cpu).unwrap()
}

/// `tests/reference/sd/{name}.json`.
pub fn meta_named(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(format!("tests/reference/sd/{name}.json"))).unwrap()).unwrap()
}

/// max |a − b| over all elements (shapes must match).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// max |b|, the scale a tolerance is relative to.
pub fn max_abs(b: &Tensor) -> f32 {
    b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// Asserts max |a − b| ≤ rel · max(1, max |b|) and prints the error seen.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, rel: f32) {
    let (err, scale) = (max_abs_diff(a, b), max_abs(b).max(1.0));
    eprintln!("{what}: max abs error {err:.3e} (reference max |x| {:.3e})", max_abs(b));
    assert!(err <= rel * scale, "{what}: max abs error {err:e} > {rel:e} × {scale}");
}
