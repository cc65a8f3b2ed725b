//! The stand-alone model file: config in the metadata, weights checked against it, and a
//! clear error for every kind of foreign or mismatched file.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use stipple_nn::{
    load_model_file, read_model_config, save_model_file, save_safetensors, DiffusionConfig, ModelConfig, NetworkConfig, NnError,
    UNetConfig,
};

fn config() -> ModelConfig {
    ModelConfig::new(NetworkConfig::UNet2D(UNetConfig::tiny()), DiffusionConfig::default())
}

#[test]
fn round_trip_keeps_config_metadata_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let (net, vm) = fresh(cfg.network.unet2d().unwrap());
    let path = dir.path().join("m.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[("step", "12".into())]).unwrap();
    let loaded = load_model_file(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, cfg);
    assert_eq!(loaded.metadata["step"], "12");
    assert_eq!(loaded.metadata["format_version"], "1");
    let x = input(2, 3, 8, 1);
    let t = Tensor::new(&[3f32, 700.0], &Device::Cpu).unwrap();
    let a = net.forward(&x, &t, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = loaded.net.forward(&x, &t, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a, b);
}

#[test]
fn config_that_does_not_match_the_weights_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, vm) = fresh(&UNetConfig::tiny());
    let mut wider = config();
    wider.network.unet2d_mut().unwrap().block_out_channels = vec![16, 32];
    let path = dir.path().join("m.safetensors");
    save_model_file(&path, &named_tensors(&vm), &wider, None, &[]).unwrap();
    let Err(err) = load_model_file(&path, &Device::Cpu) else { panic!("mismatch must fail") };
    let msg = err.to_string();
    assert!(matches!(err, NnError::WeightsMismatch { .. }), "{msg}");
    assert!(msg.contains("m.safetensors") && msg.contains("conv_in.weight"), "{msg}");
}

#[test]
fn plain_safetensors_without_stipple_metadata_is_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    let t = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
    save_safetensors(&path, &[("w".into(), t)], &HashMap::new()).unwrap();
    let err = read_model_config(&path).expect_err("foreign file must fail");
    assert!(matches!(err, NnError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("plain.safetensors") && err.to_string().contains("format"), "{err}");
}

#[test]
fn other_format_versions_and_bad_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
    let cases = [
        ("v99", r#"{"unet":{},"diffusion":{}}"#, "99", "version 99"),
        ("junk", "not json", "1", "stored config is invalid"),
        ("no network", r#"{"diffusion":{}}"#, "2", "exactly one network key"),
        ("edm", r#"{"unet":{"sample_size":8},"diffusion":{"prediction_type":{"edm":{"sigma_data":0.5}}}}"#, "1", "edm"),
    ];
    for (name, config, version, needle) in cases {
        let path = dir.path().join(format!("{name}.safetensors"));
        let meta = HashMap::from([
            ("format".to_string(), "stipple-model".to_string()),
            ("format_version".to_string(), version.to_string()),
            ("config".to_string(), config.to_string()),
        ]);
        save_safetensors(&path, &[("w".into(), t.clone())], &meta).unwrap();
        let err = read_model_config(&path).expect_err("must fail");
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
}

/// A file written before models could be 1-D (the shipped prompt model, format version 1)
/// reads as a 2-D U-Net, and its config serialises back under the same `unet` key and to
/// the same JSON value, so rewriting it changes nothing.
#[test]
fn version_1_files_read_unchanged() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/emoji-prompts.safetensors");
    let (cfg, meta) = read_model_config(&path).unwrap();
    assert_eq!(meta["format_version"], "1");
    assert!(matches!(cfg.network, NetworkConfig::UNet2D(_)));
    assert_eq!(cfg.format_version(), 1, "it would be written as version 1 again");
    let stored: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    let again = serde_json::to_value(&cfg).unwrap();
    assert_eq!(again, stored);
    assert!(again.get("unet").is_some() && again.get("unet1d").is_none());
}
