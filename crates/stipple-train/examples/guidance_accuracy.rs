//! Measures that classifier-free guidance works: trains a small CNN digit classifier on a
//! labelled folder, then generates class-conditioned samples from a Stipple model at
//! several guidance scales and reports how often the classifier agrees with the class asked
//! for (docs/GUIDANCE.md has the numbers and the commands).
//!
//! cargo run -p stipple-train --example guidance_accuracy -- TRAIN_DIR TEST_DIR MODEL [PER_CLASS] [STEPS]
//! (folders of images with a labels.csv `label` column; MODEL a class-conditional model file)

use std::path::PathBuf;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Conv2dConfig, Optimizer, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use stipple_pipeline::{generate, GenerateRequest};
use stipple_train::data::{load_folder, load_labels, ColorMode, LabelSource};

/// conv(1→16) → pool → conv(16→32) → pool → linear(→10): ~98% on 16×16 MNIST.
struct Classifier {
    c1: candle_nn::Conv2d,
    c2: candle_nn::Conv2d,
    fc: candle_nn::Linear,
}

impl Classifier {
    fn new(vb: VarBuilder, size: usize, classes: usize) -> candle_core::Result<Self> {
        let pad = Conv2dConfig { padding: 1, ..Default::default() };
        Ok(Self {
            c1: candle_nn::conv2d(1, 16, 3, pad, vb.pp("c1"))?,
            c2: candle_nn::conv2d(16, 32, 3, pad, vb.pp("c2"))?,
            fc: candle_nn::linear(32 * (size / 4) * (size / 4), classes, vb.pp("fc"))?,
        })
    }

    /// `(B, 1, S, S)` in [−1, 1] → logits `(B, classes)`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.c1.forward(x)?.relu()?.max_pool2d(2)?;
        let h = self.c2.forward(&h)?.relu()?.max_pool2d(2)?;
        self.fc.forward(&h.flatten_from(1)?)
    }

    fn predict(&self, x: &Tensor) -> candle_core::Result<Vec<u32>> {
        self.forward(x)?.argmax(D::Minus1)?.to_vec1()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: guidance_accuracy TRAIN_DIR TEST_DIR MODEL [PER_CLASS] [STEPS]".into());
    }
    let (train_dir, test_dir, model_path) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]), PathBuf::from(&args[3]));
    let per_class: usize = args.get(4).map_or(Ok(20), |s| s.parse())?;
    let steps: usize = args.get(5).map_or(Ok(20), |s| s.parse())?;
    let dev = Device::Cpu;
    let model = stipple_nn::load_model_file(&model_path, &dev)?;
    let size = model.config.image_size();
    let source = LabelSource::Csv { column: "label".into() };
    type Loaded = Result<(Tensor, Vec<u32>, Vec<String>), Box<dyn std::error::Error>>;
    let load = |dir: &PathBuf| -> Loaded {
        let (set, _) = load_folder(dir, size, ColorMode::Grey, false)?;
        let labels = load_labels(dir, &set.names, &source)?.ok_or("no labels")?;
        let x = Tensor::from_vec(set.pixels, (set.names.len(), 1, size, size), &dev)?;
        Ok((x, labels.per_image, labels.classes))
    };
    let (xtr, ytr, classes) = load(&train_dir)?;
    let (xte, yte, test_classes) = load(&test_dir)?;
    assert_eq!(classes, test_classes, "train and test sets have other classes");
    assert_eq!(classes, model.config.classes, "the model was trained on other classes");

    // 1. The classifier: AdamW, 6 epochs of batch 64, fixed seed.
    let varmap = VarMap::new();
    let clf = Classifier::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), size, classes.len())?;
    let mut opt = candle_nn::AdamW::new_lr(varmap.all_vars(), 2e-3)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = ytr.len();
    for _epoch in 0..6 {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        for chunk in order.chunks(64) {
            let idx = Tensor::from_vec(chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(), chunk.len(), &dev)?;
            let (x, y) = (xtr.index_select(&idx, 0)?, Tensor::from_vec(chunk.iter().map(|&i| ytr[i]).collect::<Vec<_>>(), chunk.len(), &dev)?);
            let loss = candle_nn::loss::cross_entropy(&clf.forward(&x)?, &y)?;
            opt.backward_step(&loss)?;
        }
    }
    let pred = clf.predict(&xte)?;
    let test_acc = pred.iter().zip(&yte).filter(|(p, y)| p == y).count() as f64 / yte.len() as f64;
    println!("classifier accuracy on {} held-out digits: {:.1}%", yte.len(), 100.0 * test_acc);

    // 2. Class-conditioned samples at each guidance scale, same seeds for every scale.
    println!("\n| guidance scale | accuracy ({} samples) |", per_class * classes.len());
    println!("|---|---|");
    for scale in [0.0, 1.0, 2.0, 4.0, 7.0] {
        let mut right = 0;
        for (k, class) in classes.iter().enumerate() {
            let spec = GenerateRequest {
                steps: Some(steps),
                count: Some(per_class),
                batch_size: Some(per_class),
                seed: Some(1000 * k as u64),
                class: Some(class.clone()),
                guidance_scale: Some(scale),
                ..GenerateRequest::default()
            }
            .validate()?;
            let sigmas = spec.sigmas(&model.config.diffusion)?;
            let images = generate(&model, &spec, &sigmas, &dev, &mut ())?;
            right += clf.predict(&images)?.iter().filter(|&&p| p == k as u32).count();
        }
        println!("| {scale} | {:.1}% |", 100.0 * right as f64 / (per_class * classes.len()) as f64);
    }
    println!("\n(chance: {:.1}%)", 100.0 / classes.len() as f64);
    Ok(())
}
