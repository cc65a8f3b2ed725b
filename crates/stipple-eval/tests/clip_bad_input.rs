//! Bad input to CLIP score: folders that are not CLIP folders, weights of the wrong shape,
//! images that do not decode, prompts too long for the text encoder. Each is an error that
//! says what is wrong.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use stipple_eval::{clip_score, load_folder, ClipModel, EvalError};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip/tiny-clip")
}

/// A copy of the tiny CLIP folder to break.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> String {
    ClipModel::load(dir, &Device::Cpu).unwrap_err().to_string()
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn a_folder_without_config_or_weights_lists_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let e = load_err(empty.path());
    assert!(e.contains("missing config.json, model.safetensors, vocab.json, merges.txt, preprocessor_config.json;"), "{e}");
    let dir = copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("missing model.safetensors; a CLIP folder"), "{e}");
}

#[test]
fn a_config_that_is_not_clip_is_refused() {
    let dir = copy();
    std::fs::write(dir.path().join("config.json"), r#"{"_class_name": "UNet2DConditionModel", "sample_size": 64}"#).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("config.json") && e.contains("needs both text_config and vision_config"), "{e}");
    edit_config(dir.path(), |v| *v = serde_json::json!({"model_type": "siglip", "text_config": {}, "vision_config": {}}));
    assert!(load_err(dir.path()).contains("model_type is \"siglip\""));
    std::fs::write(dir.path().join("config.json"), "not json").unwrap();
    assert!(load_err(dir.path()).contains("not a CLIPConfig document"));
}

#[test]
fn a_processor_that_crops_to_another_size_is_refused() {
    let dir = copy();
    let path = dir.path().join("preprocessor_config.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"height\": 16", "\"height\": 24");
    std::fs::write(&path, text).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("crop_size 24×16 is not the vision tower's image_size 16×16"), "{e}");
}

#[test]
fn a_config_whose_end_token_is_not_the_tokenizers_is_refused() {
    let dir = copy();
    edit_config(dir.path(), |v| v["text_config"]["eos_token_id"] = 5.into());
    let e = load_err(dir.path());
    assert!(e.contains("eos_token_id = 5") && e.contains("1013"), "{e}");
}

#[test]
fn weights_of_the_wrong_shape_or_missing_are_named() {
    let dir = copy();
    let path = dir.path().join("model.safetensors");
    let mut tensors = stipple_nn::load_tensors(&path, &Device::Cpu).unwrap();
    tensors.insert("visual_projection.weight".into(), Tensor::zeros((16, 8), DType::F32, &Device::Cpu).unwrap());
    tensors.remove("text_projection.weight");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("visual_projection.weight: expected [16, 32], found [16, 8]"), "{e}");
    assert!(e.contains("text_projection.weight"), "{e}");
    // A config that disagrees with the weights names them too.
    let dir = copy();
    edit_config(dir.path(), |v| v["vision_config"]["patch_size"] = 8.into());
    let e = load_err(dir.path());
    assert!(e.contains("vision_model.embeddings.patch_embedding.weight: expected [32, 3, 8, 8], found [32, 3, 4, 4]"), "{e}");
}

#[test]
fn an_image_that_does_not_decode_is_named() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbImage::new(16, 16).save(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b.png"), b"not a png").unwrap();
    match load_folder(dir.path()) {
        Err(EvalError::BadImage { path, .. }) => assert!(path.ends_with("b.png"), "{}", path.display()),
        other => panic!("expected BadImage, got {:?}", other.map(|v| v.len())),
    }
    // An image without pixels, handed to the library, is refused rather than resized.
    let clip = ClipModel::load(&fixture(), &Device::Cpu).unwrap();
    let empty = stipple_eval::NamedImage { path: "empty.png".into(), image: image::DynamicImage::new_rgb8(0, 4) };
    assert!(matches!(clip.pixel_values(&empty), Err(EvalError::BadImage { .. })));
}

#[test]
fn a_prompt_longer_than_the_text_positions_says_by_how_much() {
    let clip = ClipModel::load(&fixture(), &Device::Cpu).unwrap();
    // 14 tokens: exactly what 16 positions hold between the start and end tokens.
    assert!(clip.token_ids("a watercolor lighthouse at dusk").is_ok());
    let long = "a watercolor lighthouse at dusk by the sea";
    let e = clip.token_ids(long).unwrap_err();
    let EvalError::PromptTooLong { tokens, fits, .. } = &e else { panic!("{e}") };
    assert_eq!(*fits, 14);
    assert!(*tokens > 14);
    assert!(e.to_string().contains(&format!("{tokens} tokens long, {} more than the 14", tokens - 14)), "{e}");
    let images = load_folder(&fixture().join("../images")).unwrap();
    assert!(matches!(clip_score(&clip, &images, &[long.to_string()]), Err(EvalError::PromptTooLong { .. })));
}

#[test]
fn prompts_must_be_one_or_one_per_image() {
    let clip = ClipModel::load(&fixture(), &Device::Cpu).unwrap();
    let images = load_folder(&fixture().join("../images")).unwrap();
    let e = clip_score(&clip, &images, &["a".into(), "b".into()]).unwrap_err().to_string();
    assert!(e.contains("one prompt for all images or one per image (6), got 2"), "{e}");
}
