//! The domain feature network: it learns a labelled toy set, round-trips through its file,
//! and refuses images of another shape and files of another network.

use candle_core::{Device, Tensor};
use stipple_eval::{frechet_distance_of, DomainFeatureNet, EvalError, FeatureNetConfig, LabelledImages, TrainOptions};

/// `n` 8×8 grey images per class: class 0 a horizontal bar, class 1 a vertical one, at
/// varying positions, in [−1, 1].
fn bars(n: usize) -> (Tensor, Vec<u32>) {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        for class in 0..2u32 {
            let pos = (i * 3 + class as usize) % 8;
            for y in 0..8 {
                for x in 0..8 {
                    let on = if class == 0 { y == pos } else { x == pos };
                    pixels.push(if on { 1.0f32 } else { -1.0 });
                }
            }
            labels.push(class);
        }
    }
    (Tensor::from_vec(pixels, (2 * n, 1, 8, 8), &Device::Cpu).unwrap(), labels)
}

fn config() -> FeatureNetConfig {
    FeatureNetConfig { size: 8, channels: 1, classes: vec!["horizontal".into(), "vertical".into()] }
}

#[test]
fn learns_bars_and_reloads_to_the_same_features() {
    let (images, labels) = bars(16);
    let mut net = DomainFeatureNet::new(config(), 1, &Device::Cpu).unwrap();
    let before = net.accuracy(LabelledImages { images: &images, labels: &labels }).unwrap();
    let after = net.train(LabelledImages { images: &images, labels: &labels }, TrainOptions { steps: 150, batch_size: 16, learning_rate: 3e-3, seed: 0 }).unwrap();
    assert!(after >= 0.95, "training accuracy {after} (before: {before})");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.safetensors");
    net.save(&path).unwrap();
    let back = DomainFeatureNet::load(&path, &Device::Cpu).unwrap();
    assert_eq!(back.config, config());
    let (a, b) = (net.embed_tensor(&images).unwrap(), back.embed_tensor(&images).unwrap());
    assert_eq!(a, b);
    // The two classes are apart in the learnt space, a set against itself is not.
    let h: Vec<usize> = (0..32).step_by(2).collect();
    let v: Vec<usize> = (1..32).step_by(2).collect();
    assert!(frechet_distance_of(&a.select(&h), &a.select(&v)).unwrap() > 1e-3);
    assert!(frechet_distance_of(&a.select(&h), &a.select(&h)).unwrap().abs() < 1e-9);
}

#[test]
fn images_of_another_shape_are_refused() {
    let net = DomainFeatureNet::new(config(), 1, &Device::Cpu).unwrap();
    let rgb = Tensor::zeros((2, 3, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = net.embed_tensor(&rgb).unwrap_err();
    assert!(matches!(err, EvalError::ImageShape { .. }), "{err}");
    assert!(err.to_string().contains("8×8 with 1 channel"), "{err}");
}

#[test]
fn other_files_are_refused_as_the_wrong_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inception.safetensors");
    let t = Tensor::zeros((32, 3, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("Conv2d_1a_3x3.conv.weight".to_string(), t)]), &path).unwrap();
    let err = DomainFeatureNet::load(&path, &Device::Cpu).err().unwrap();
    assert!(matches!(err, EvalError::WrongArchitecture { .. }), "{err}");
    let err = DomainFeatureNet::new(FeatureNetConfig { size: 8, channels: 1, classes: vec!["one".into()] }, 0, &Device::Cpu).err().unwrap();
    assert!(matches!(err, EvalError::BadSetting { setting: "labels", .. }), "{err}");
}
