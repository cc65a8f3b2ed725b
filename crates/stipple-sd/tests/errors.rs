//! Bad input gives typed errors that say what was found and what was expected.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::*;
use stipple_nn::NnError;
use stipple_sd::{Architecture, LoadOptions, SdError, SdPipeline};

fn load(path: &Path) -> Result<SdPipeline, SdError> {
    SdPipeline::load(path, &Device::Cpu)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn save(path: &Path, names: &[&str]) {
    let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
    let map: HashMap<String, Tensor> = names.iter().map(|n| (n.to_string(), t.clone())).collect();
    candle_core::safetensors::save(&map, path).unwrap();
}

#[test]
fn not_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    std::fs::write(&file, b"this is not a tensor file").unwrap();
    let e = load(&file).err().unwrap();
    assert!(matches!(e, SdError::NotACheckpoint { .. }), "{e}");
    assert!(e.to_string().contains(".safetensors"), "{e}");
    // A folder without model_index.json.
    let e = load(dir.path()).err().unwrap();
    assert!(matches!(&e, SdError::NotACheckpoint { reason, .. } if reason.contains("model_index.json")), "{e}");
    // A path that does not exist.
    assert!(matches!(load(&dir.path().join("missing")), Err(SdError::Io { .. })));
}

#[test]
fn unknown_architecture_lists_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lora.safetensors");
    save(&file, &["lora_unet_down.alpha", "lora_te_text.weight"]);
    let e = load(&file).err().unwrap();
    match &e {
        SdError::UnknownArchitecture { found, .. } => assert!(found.contains("lora_unet_down.alpha.*"), "{found}"),
        other => panic!("expected UnknownArchitecture, got {other}"),
    }
}

#[test]
fn sdxl_refiner_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let unet = "model.diffusion_model.input_blocks.0.0.weight";
    let arch = Architecture::SdxlRefiner;
    let file = dir.path().join("ckpt.safetensors");
    save(&file, &[unet, "conditioner.embedders.0.model.ln_final.weight"]);
    let e = load(&file).err().unwrap();
    assert!(matches!(&e, SdError::Unsupported { arch: a, .. } if *a == arch), "{e}");
    let supported = "Stable Diffusion 1.x, Stable Diffusion 2.x, Stable Diffusion XL base";
    assert!(e.to_string().contains(arch.name()) && e.to_string().contains(supported), "{e}");
}

#[test]
fn missing_tokenizer_files() {
    let dir = tempfile::tempdir().unwrap();
    // A single file alone: no tokenizer/ beside it.
    let file = dir.path().join("tiny.safetensors");
    std::fs::copy(single_file(), &file).unwrap();
    let e = load(&file).err().unwrap();
    assert!(matches!(&e, SdError::MissingTokenizer { path, .. } if path.ends_with("tokenizer/vocab.json")), "{e}");
    assert!(e.to_string().contains("single file holds no tokenizer"), "{e}");
    // A folder whose tokenizer lost merges.txt.
    let copy = dir.path().join("sd");
    copy_dir(&folder(), &copy);
    std::fs::remove_file(copy.join("tokenizer/merges.txt")).unwrap();
    let e = load(&copy).err().unwrap();
    assert!(matches!(&e, SdError::MissingTokenizer { path, .. } if path.ends_with("merges.txt")), "{e}");
}

#[test]
fn wrong_shaped_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sd");
    copy_dir(&folder(), &copy);
    let weights = copy.join("unet/diffusion_pytorch_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.insert("conv_in.bias".into(), Tensor::zeros(5, DType::F16, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let e = load(&copy).err().unwrap();
    match &e {
        SdError::Weights(NnError::WeightsMismatch { details, .. }) => {
            assert!(details.contains("conv_in.bias: expected [16], found [5]"), "{details}")
        }
        other => panic!("expected a weights mismatch, got {other}"),
    }
}

#[test]
fn single_file_that_does_not_fit_the_sd1_configs() {
    // Without config_dir a single file gets the released SD 1.x sizes: the tiny model's
    // tensors do not fit them, and the message lists the mismatch.
    let options = LoadOptions { tokenizer_dir: Some(folder().join("tokenizer")), ..Default::default() };
    let e = SdPipeline::load_with(&single_file(), &options, &Device::Cpu).err().unwrap();
    assert!(matches!(&e, SdError::Weights(NnError::WeightsMismatch { details, .. }) if details.contains("missing")), "{e}");
}

#[test]
fn unsupported_config_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sd");
    copy_dir(&folder(), &copy);
    let path = copy.join("unet/config.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"time_cond_proj_dim\": null", "\"time_cond_proj_dim\": 256");
    std::fs::write(&path, text).unwrap();
    let e = load(&copy).err().unwrap();
    assert!(matches!(&e, SdError::Config { message, .. } if message.contains("time_cond_proj_dim = 256")), "{e}");
}

/// A sharded U-Net (`diffusion_pytorch_model.safetensors.index.json` and two shards) loads
/// to the same network.
#[test]
fn sharded_weights_load() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sd");
    copy_dir(&folder(), &copy);
    let unet = copy.join("unet");
    let tensors = candle_core::safetensors::load(unet.join("diffusion_pytorch_model.safetensors"), &Device::Cpu).unwrap();
    std::fs::remove_file(unet.join("diffusion_pytorch_model.safetensors")).unwrap();
    let mut shards: [HashMap<String, Tensor>; 2] = Default::default();
    let mut map = serde_json::Map::new();
    for (i, (k, t)) in tensors.into_iter().enumerate() {
        let shard = format!("diffusion_pytorch_model-0000{}-of-00002.safetensors", i % 2 + 1);
        map.insert(k.clone(), serde_json::Value::String(shard));
        shards[i % 2].insert(k, t);
    }
    for (i, s) in shards.iter().enumerate() {
        candle_core::safetensors::save(s, unet.join(format!("diffusion_pytorch_model-0000{}-of-00002.safetensors", i + 1))).unwrap();
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    std::fs::write(unet.join("diffusion_pytorch_model.safetensors.index.json"), index.to_string()).unwrap();
    let sd = load(&copy).unwrap();
    let g = goldens();
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close("sharded U-Net", &out, &g["unet.out"], 1e-5);
}
