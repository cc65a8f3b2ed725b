//! The Inception-v3 of pytorch-fid on candle against pytorch-fid itself, with deterministic
//! formula weights both sides compute (the real weights cannot be committed), on two small
//! committed image sets of different sizes. Reference values and the weight formula:
//! tests/reference/make_eval_inception_reference.py.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::Value;
use stipple_eval::{frechet_distance_of, kid, load_folder, EvalError, FeatureNet, FidInception, KidOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inception")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
}

fn splitmix64(x: u64) -> u64 {
    let z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The script's `formula_tensor`, bit for bit.
fn formula_tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    let numel: usize = shape.iter().product();
    let seed = fnv1a64(name);
    let u = (0..numel as u64).map(|i| ((splitmix64(seed.wrapping_add(i)) >> 40) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0);
    if name.ends_with("conv.weight") {
        let fan_in: usize = shape[1..].iter().product();
        let s = (6.0f64 / fan_in as f64).sqrt() as f32;
        u.map(|v| v * s).collect()
    } else if name.ends_with("bn.weight") {
        u.map(|v| 1.0 + 0.2 * v).collect()
    } else if name.ends_with("bn.bias") || name.ends_with("bn.running_mean") {
        u.map(|v| 0.1 * v).collect()
    } else if name.ends_with("bn.running_var") {
        u.map(|v| 1.5 + 0.5 * v).collect()
    } else {
        u.map(|v| 0.01 * v).collect()
    }
}

/// Writes the formula weights of every tensor of the reference state dict to `path`.
fn write_formula_weights(path: &Path) {
    let mut tensors = HashMap::new();
    for k in json("keys.json").as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        let shape: Vec<usize> = k["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        tensors.insert(name.to_string(), Tensor::from_vec(formula_tensor(name, &shape), shape, &Device::Cpu).unwrap());
    }
    candle_core::safetensors::save(&tensors, path).unwrap();
}

fn relative(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn features_fid_and_kid_agree_with_pytorch_fid() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("pt_inception-formula.safetensors");
    write_formula_weights(&weights);
    let net = FidInception::load(&weights, &Device::Cpu).unwrap();
    let a = net.embed(&load_folder(&fixtures().join("a")).unwrap()).unwrap();
    let b = net.embed(&load_folder(&fixtures().join("b")).unwrap()).unwrap();
    let reference = json("reference.json");
    for (got, key) in [(a.row(0), "features_a0"), (b.row(0), "features_b0")] {
        let want: Vec<f64> = reference[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        println!("{key}: largest difference {worst:e} against a largest feature of {scale:e}");
        assert!(worst <= 1e-4 * scale, "{key}: {worst:e} vs scale {scale:e}");
    }
    let fid = frechet_distance_of(&a, &b).unwrap();
    let (fid_tool, fid_exact) = (reference["fid_pytorch_fid"].as_f64().unwrap(), reference["fid_exact"].as_f64().unwrap());
    println!("FID {fid} (pytorch-fid {fid_tool}, exact {fid_exact}): relative {:e} / {:e}", relative(fid, fid_tool), relative(fid, fid_exact));
    assert!(relative(fid, fid_tool) < 1e-3);
    assert!(relative(fid, fid_exact) < 1e-3);
    let k = kid(&a, &b, KidOptions { subsets: 2, subset_size: a.len(), seed: 0 }).unwrap();
    let kid_tool = reference["kid_torch_fidelity"].as_f64().unwrap();
    println!("KID {} (torch-fidelity {kid_tool}): relative {:e}", k.mean, relative(k.mean, kid_tool));
    assert!(relative(k.mean, kid_tool) < 1e-3);
}

#[test]
fn a_weights_file_of_another_network_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    let t = Tensor::zeros((32, 3, 5, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&HashMap::from([("Conv2d_1a_3x3.conv.weight".to_string(), t)]), &path).unwrap();
    let err = FidInception::load(&path, &Device::Cpu).err().unwrap();
    assert!(matches!(err, EvalError::WrongArchitecture { .. }), "{err}");
    assert!(err.to_string().contains("Conv2d_1a_3x3.conv.weight"), "{err}");
    std::fs::write(&path, b"not safetensors").unwrap();
    let err = FidInception::load(&path, &Device::Cpu).err().unwrap();
    assert!(matches!(err, EvalError::WrongArchitecture { .. }), "{err}");
}
