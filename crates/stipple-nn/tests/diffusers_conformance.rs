//! Conformance with diffusers: a tiny random-weight `UNet2DModel` saved by `save_pretrained`
//! and its output on a fixed input, made by `tests/reference/make_unet_reference.py`
//! (diffusers 0.42.1, torch 2.15.0, CPU f32).

use std::path::PathBuf;

use candle_core::Device;
use stipple_nn::{load_tensors, load_unet, UNetConfig};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn tiny_unet_matches_diffusers() {
    let dir = fixtures();
    let text = std::fs::read_to_string(dir.join("tiny_unet/config.json")).unwrap();
    // The full diffusers config.json (with `_class_name`, `act_fn`, … at their defaults) loads.
    let cfg = UNetConfig::from_diffusers_json(&text).unwrap();
    assert_eq!(cfg, UNetConfig::tiny());
    let net = load_unet(&dir.join("tiny_unet/diffusion_pytorch_model.safetensors"), &cfg, &Device::Cpu).unwrap();

    let r = load_tensors(&dir.join("tiny_unet_reference.safetensors"), &Device::Cpu).unwrap();
    let out = net.forward(&r["x"], &r["timesteps"], None).unwrap();
    assert_eq!(out.dims(), r["out"].dims());
    let got = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let want = r["out"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let max = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("max |stipple − diffusers| = {max:e}");
    assert!(max < 1e-5, "max abs difference {max}");
}

/// The other options: class embedding (i64 labels as torch saves them), `flip_sin_to_cos =
/// false`, `freq_shift = 1`, one head, `center_input_sample`, `mid_block_scale_factor = 2`,
/// three levels with two layers per block.
#[test]
fn tiny_unet_with_classes_matches_diffusers() {
    let dir = fixtures();
    let text = std::fs::read_to_string(dir.join("tiny_unet_classes/config.json")).unwrap();
    let cfg = UNetConfig::from_diffusers_json(&text).unwrap();
    assert_eq!(cfg.num_class_embeds, Some(5));
    assert!(!cfg.flip_sin_to_cos && cfg.center_input_sample && cfg.attention_head_dim.is_none());
    let net = load_unet(&dir.join("tiny_unet_classes/diffusion_pytorch_model.safetensors"), &cfg, &Device::Cpu).unwrap();

    let r = load_tensors(&dir.join("tiny_unet_classes_reference.safetensors"), &Device::Cpu).unwrap();
    let out = net.forward(&r["x"], &r["timesteps"], Some(&r["class_labels"])).unwrap();
    assert_eq!(out.dims(), r["out"].dims());
    let got = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let want = r["out"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let max = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("max |stipple − diffusers| (classes) = {max:e}");
    assert!(max < 1e-5, "max abs difference {max}");
}
