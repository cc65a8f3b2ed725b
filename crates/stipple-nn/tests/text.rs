//! Text conditioning: the prompt tokenizer, the CLIP text encoder against transformers on a
//! tiny random-weight checkpoint, and model files that carry a text encoder.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use stipple_nn::text::{load_clip_folder, PromptTokenizer, TextEncoder, TextEncoderConfig};
use stipple_nn::{load_model_file, save_model_file, DiffusionConfig, ModelConfig, NetworkConfig, NnError, UNet2D, UNetCond, UNetConfig, TEXT_ENCODER_PREFIX};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-clip")
}

/// `reference.json` of the fixture, made by `tests/reference/make_clip_fixture.py`
/// (transformers 5.24.0 `CLIPTokenizer` and `CLIPTextModel`, float32).
struct Reference {
    prompts: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    shape: Vec<usize>,
    last_hidden_state: Vec<f32>,
}

fn reference() -> Reference {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).unwrap()).unwrap();
    let strings = |k: &str| v[k].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    Reference {
        prompts: strings("prompts"),
        input_ids: v["input_ids"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()).collect(),
        shape: v["shape"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect(),
        last_hidden_state: v["last_hidden_state"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect(),
    }
}

#[test]
fn pretrained_clip_folder_matches_transformers() {
    let r = reference();
    let clip = load_clip_folder(&fixture(), &Device::Cpu).unwrap();
    let prompts: Vec<&str> = r.prompts.iter().map(String::as_str).collect();
    let ids = clip.token_ids(&prompts, &Device::Cpu).unwrap();
    assert_eq!(ids.to_vec2::<u32>().unwrap(), r.input_ids, "token ids differ from CLIPTokenizer's");
    let hidden = clip.encode(&prompts, &Device::Cpu).unwrap();
    assert_eq!(hidden.dims(), r.shape.as_slice());
    let want = Tensor::from_vec(r.last_hidden_state.clone(), hidden.shape(), &Device::Cpu).unwrap();
    // float32 on both sides; the sums differ in order (fused kernels vs ours), ~1e-6 relative.
    let worst = common::max_abs_diff(&hidden, &want).unwrap();
    assert!(worst < 2e-5, "last hidden state differs from transformers' by {worst}");
}

#[test]
fn broken_clip_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).unwrap();
    }
    let plain = load_clip_folder(dir.path(), &Device::Cpu).unwrap().encode(&["red cat"], &Device::Cpu).unwrap();
    // transformers 4 and whole-CLIP checkpoints name the weights `text_model.…`, beside others.
    let renamed: Vec<(String, Tensor)> = stipple_nn::load_tensors(&fixture().join("model.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (format!("text_model.{k}"), v))
        .chain([("vision_model.post_layernorm.weight".to_string(), Tensor::ones(4, DType::F32, &Device::Cpu).unwrap())])
        .collect();
    stipple_nn::save_safetensors(&dir.path().join("model.safetensors"), &renamed, &Default::default()).unwrap();
    let prefixed = load_clip_folder(dir.path(), &Device::Cpu).unwrap().encode(&["red cat"], &Device::Cpu).unwrap();
    assert_eq!(common::flat(&plain), common::flat(&prefixed));
    // A cut-off weights file.
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = load_clip_folder(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::copy(fixture().join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    // A config that does not match the weights.
    let cfg = std::fs::read_to_string(fixture().join("config.json")).unwrap().replace("\"intermediate_size\": 64", "\"intermediate_size\": 48");
    std::fs::write(dir.path().join("config.json"), cfg).unwrap();
    let err = load_clip_folder(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, NnError::WeightsMismatch { .. }), "{err}");
    assert!(err.to_string().contains("fc1"), "{err}");
    // No tokenizer.
    std::fs::copy(fixture().join("config.json"), dir.path().join("config.json")).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_clip_folder(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

fn captions() -> Vec<String> {
    ["red apple", "green apple", "alien monster", "red heart", "cat face", "grinning face", "woman mage", "red car"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn trained_tokenizer_frames_pads_and_round_trips() {
    let a = PromptTokenizer::train(&captions(), 300).unwrap();
    let b = PromptTokenizer::train(&captions(), 300).unwrap();
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap(), "training must be deterministic");
    assert!(a.vocab_size() <= 300);
    let ids = a.encode("Red Apple", 8).unwrap();
    assert_eq!(ids.len(), 8);
    let again = PromptTokenizer::from_json(&a.to_json().unwrap()).unwrap();
    assert_eq!(again.encode("red apple", 8).unwrap(), ids, "lower-casing and JSON round trip");
    let empty = a.encode("", 8).unwrap();
    assert_eq!(empty[0], ids[0]); // BOS
    assert_eq!(&empty[1..], &[empty[1]; 7]); // EOS then EOS padding
    assert_ne!(ids[1], empty[1]);
    // Byte-level: unseen characters still tokenize.
    assert!(a.encode("🍎 pomme", 16).is_ok());
    // Too long: an error that says the limit.
    let err = a.encode("red apple red apple red apple", 6).unwrap_err().to_string();
    assert!(err.contains("at most 4"), "{err}");
    assert!(PromptTokenizer::train(&captions(), 100).is_err());
}

#[test]
fn token_texts_name_each_token_of_a_prompt() {
    let a = PromptTokenizer::train(&captions(), 300).unwrap();
    for prompt in ["Red Apple", "alien zebra"] {
        let texts = a.token_texts(prompt).unwrap();
        let ids = a.encode(prompt, 16).unwrap();
        let eos = a.encode("", 16).unwrap()[1];
        assert_eq!(texts.len(), ids.iter().skip(1).take_while(|&&i| i != eos).count(), "{prompt}: {texts:?}");
        assert_eq!(texts.concat(), prompt.replace(' ', ""), "the pieces spell the prompt");
    }
    // Trained on "red apple": whole words are single tokens.
    assert_eq!(a.token_texts("red apple").unwrap(), vec!["red", "apple"]);
    assert!(a.token_texts("").unwrap().is_empty());
}

#[test]
fn text_model_file_round_trip() {
    let dev = Device::Cpu;
    let tokenizer = PromptTokenizer::train(&captions(), 300).unwrap();
    let text = TextEncoderConfig::small(300, 16, 8);
    let unet = UNetConfig::tiny().with_text(16).unwrap();
    let config = ModelConfig { text_encoder: Some(text.clone()), ..ModelConfig::new(NetworkConfig::UNet2D(unet.clone()), DiffusionConfig::default()) };
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let net = UNet2D::new(vb.clone(), &unet).unwrap();
    let enc = TextEncoder::new(vb.pp(TEXT_ENCODER_PREFIX), &text).unwrap();
    let tensors = common::named_tensors(&vm);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    assert!(save_model_file(&path, &tensors, &config, None, &[]).is_err(), "a text model needs its tokenizer");
    save_model_file(&path, &tensors, &config, Some(&tokenizer), &[]).unwrap();
    let loaded = load_model_file(&path, &dev).unwrap();
    let prompt_encoder = loaded.text.as_ref().unwrap();
    let states = prompt_encoder.encode(&["red apple", ""], &dev).unwrap();
    let ids = Tensor::new(vec![tokenizer.encode("red apple", 8).unwrap(), tokenizer.encode("", 8).unwrap()], &dev).unwrap();
    let direct = enc.forward(&ids).unwrap();
    // The loaded encoder holds plain tensors and normalises with the fused LayerNorm, the one
    // built here holds variables and takes candle's ops: equal to f32 rounding.
    let diff = (&states - &direct).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-5, "loaded vs built encoder: off by {diff}");
    let x = Tensor::ones((2, 3, 8, 8), DType::F32, &dev).unwrap();
    let t = Tensor::new(&[5f32, 500.0], &dev).unwrap();
    let cond = UNetCond { class_labels: None, encoder_hidden_states: Some(states), observed: None };
    let y1 = net.forward_cond(&x, &t.ones_like().unwrap(), &cond).unwrap();
    let y2 = loaded.net.forward_cond(&x, &t.ones_like().unwrap(), &cond).unwrap();
    // The same LayerNorm paths in its transformer blocks as above.
    let diff = common::max_abs_diff(&y1, &y2).unwrap();
    assert!(diff < 1e-5, "loaded vs built U-Net: off by {diff}");
    // Same image and noise level, different prompts: different outputs.
    assert!(common::max_abs_diff(&y1.get(0).unwrap(), &y1.get(1).unwrap()).unwrap() > 1e-6);
    // A text network refuses to run without text.
    let err = loaded.net.forward(&x, &t, None).unwrap_err().to_string();
    assert!(err.contains("encoder_hidden_states"), "{err}");
}
