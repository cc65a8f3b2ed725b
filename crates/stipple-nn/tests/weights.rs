//! Weights I/O: round trip, metadata, and every failure mode as a typed error.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use common::*;
use stipple_nn::{load_tensors, load_unet, read_metadata, save_safetensors, unet_from_tensors, NnError, UNetConfig};

fn saved_tiny(dir: &Path) -> (std::path::PathBuf, stipple_nn::UNet2D, Vec<(String, Tensor)>) {
    let cfg = UNetConfig { num_class_embeds: Some(4), ..UNetConfig::tiny() };
    let (net, vm) = fresh(&cfg);
    let tensors = named_tensors(&vm);
    let path = dir.join("model.safetensors");
    let meta = HashMap::from([
        ("config".to_string(), serde_json::to_string(&cfg).unwrap()),
        ("format_version".to_string(), "1".to_string()),
    ]);
    save_safetensors(&path, &tensors, &meta).unwrap();
    (path, net, tensors)
}

#[test]
fn save_load_gives_bitwise_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let (path, net, _) = saved_tiny(dir.path());
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.safetensors")]);

    let meta = read_metadata(&path).unwrap();
    assert_eq!(meta["format_version"], "1");
    let cfg: UNetConfig = serde_json::from_str(&meta["config"]).unwrap();
    let loaded = unet_from_tensors(load_tensors(&path, &Device::Cpu).unwrap(), &cfg, &Device::Cpu).unwrap();
    let loaded2 = load_unet(&path, &cfg, &Device::Cpu).unwrap();

    let x = input(2, 3, 8, 9);
    let t = timesteps(&[0.5, 900.0]);
    let labels = Tensor::new(&[3u32, 0], &Device::Cpu).unwrap();
    let a = flat(&net.forward(&x, &t, Some(&labels)).unwrap());
    let b = flat(&loaded.forward(&x, &t, Some(&labels)).unwrap());
    let c = flat(&loaded2.forward(&x, &t, Some(&labels)).unwrap());
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    assert!(a.iter().zip(&c).all(|(p, q)| p.to_bits() == q.to_bits()));
}

#[test]
fn saving_over_an_existing_file_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let t = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    save_safetensors(&path, &[("a".into(), t.clone())], &HashMap::new()).unwrap();
    save_safetensors(&path, &[("b".into(), t)], &HashMap::new()).unwrap();
    let loaded = load_tensors(&path, &Device::Cpu).unwrap();
    assert!(loaded.contains_key("b") && !loaded.contains_key("a"));
    assert!(read_metadata(&path).unwrap().is_empty());
}

#[test]
fn truncated_file_is_not_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = saved_tiny(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_tensors(&cut, &Device::Cpu).unwrap_err();
    assert!(matches!(err, NnError::NotSafetensors { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cut.safetensors") && msg.contains("not a valid .safetensors"), "{msg}");
    // Cut inside the header: read_metadata fails the same way.
    std::fs::write(&cut, &bytes[..40]).unwrap();
    let err = read_metadata(&cut).unwrap_err();
    assert!(matches!(err, NnError::NotSafetensors { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.safetensors"));
    std::fs::write(&cut, &bytes[..3]).unwrap();
    assert!(matches!(read_metadata(&cut).unwrap_err(), NnError::NotSafetensors { .. }));
}

#[test]
fn random_bytes_are_not_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.bin");
    let bytes: Vec<u8> = values(4096, 3).iter().map(|v| ((v + 1.0) * 127.0) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    for err in [load_tensors(&path, &Device::Cpu).unwrap_err(), read_metadata(&path).unwrap_err()] {
        assert!(matches!(err, NnError::NotSafetensors { .. }), "{err:?}");
        assert!(err.to_string().contains("noise.bin"), "{err}");
    }
    // A small header length followed by non-JSON.
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"PNG\x00 not json at all..");
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(read_metadata(&path).unwrap_err(), NnError::NotSafetensors { .. }));
    assert!(matches!(load_tensors(&path, &Device::Cpu).unwrap_err(), NnError::NotSafetensors { .. }));
}

#[test]
fn missing_file_is_io_error_with_path() {
    let err = load_tensors(Path::new("/nonexistent/dir/m.safetensors"), &Device::Cpu).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/dir/m.safetensors"));
}

#[test]
fn wrong_shape_missing_and_unexpected_tensors_are_weights_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = UNetConfig::tiny();
    let (_, vm) = fresh(&cfg);
    let mut tensors = named_tensors(&vm);
    let name = "down_blocks.1.attentions.0.to_q.weight";
    let i = tensors.iter().position(|(n, _)| n == name).unwrap();
    tensors[i].1 = Tensor::zeros((16, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
    let path = dir.path().join("bad_shape.safetensors");
    save_safetensors(&path, &tensors, &HashMap::new()).unwrap();
    let err = load_unet(&path, &cfg, &Device::Cpu).unwrap_err();
    assert!(matches!(err, NnError::WeightsMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("bad_shape.safetensors"), "{msg}");
    assert!(msg.contains(&format!("{name}: expected [16, 16], found [16, 8]")), "{msg}");

    // Missing and unexpected names.
    let mut tensors = named_tensors(&vm);
    tensors.retain(|(n, _)| n != "conv_out.bias");
    tensors.push(("up_blocks.9.resnets.0.norm1.weight".into(), Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap()));
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    let err = unet_from_tensors(map, &cfg, &Device::Cpu).unwrap_err();
    assert!(matches!(err, NnError::WeightsMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("1 missing (conv_out.bias [3])"), "{msg}");
    assert!(msg.contains("1 unexpected (up_blocks.9.resnets.0.norm1.weight [4])"), "{msg}");

    // Weights of another config: many problems, listed briefly.
    let other = UNetConfig { block_out_channels: vec![16, 32], ..UNetConfig::tiny() };
    let map: HashMap<String, Tensor> = named_tensors(&vm).into_iter().collect();
    let msg = unet_from_tensors(map, &other, &Device::Cpu).unwrap_err().to_string();
    assert!(msg.contains("more"), "{msg}");
    assert!(msg.len() < 2000, "{msg}");
}

#[test]
fn duplicate_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tensor::new(&[1f32], &Device::Cpu).unwrap();
    let err = save_safetensors(&dir.path().join("d.safetensors"), &[("a".into(), t.clone()), ("a".into(), t)], &HashMap::new())
        .unwrap_err();
    assert!(err.to_string().contains("\"a\""), "{err}");
}
