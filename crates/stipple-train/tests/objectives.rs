//! Every objective (ε, v, x₀ prediction × L2, L1 loss; uniform and min-SNR weighting) trains, and the model file records
//! the parameterisation that sampling must use.

use std::path::Path;

use candle_core::Device;
use stipple_math::Prediction;
use stipple_nn::{read_model_config, UNetConfig};
use stipple_train::{train, Checkpoints, Dashboard, DataSource, LossKind, LossWeighting, SampleGrids, TrainConfig, TrainOptions};

#[test]
fn each_prediction_and_loss_trains() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16");
    for prediction in [Prediction::Epsilon, Prediction::VPrediction, Prediction::Sample] {
        for loss in [LossKind::L2, LossKind::L1] {
            let dir = tempfile::tempdir().unwrap();
            let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[]).unwrap();
            let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture.clone()), unet);
            cfg.model.diffusion.prediction_type = prediction;
            cfg.loss = loss;
            // Both weightings: uniform with L1, min-SNR-5 (the default) with L2.
            if loss == LossKind::L1 {
                cfg.loss_weighting = LossWeighting::Uniform;
            }
            cfg.steps = 40;
            cfg.batch_size = 8;
            cfg.optimizer.lr = 3e-3;
            cfg.warmup_steps = 0;
            cfg.sample_count = 2;
            cfg.sample_steps = 2;
            let opts = TrainOptions { run: dir.path().to_path_buf(), resume: false, steps: None, device: Device::Cpu, progress: false };
            let (mut dashboard, mut checkpoints, mut grids) = (Dashboard::default(), Checkpoints, SampleGrids);
            let out = train(cfg, &opts, &mut [&mut dashboard, &mut checkpoints, &mut grids]).unwrap();
            let log = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
            let losses: Vec<f64> =
                log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()).collect();
            let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
            let (early, late) = (mean(&losses[..10]), mean(&losses[30..]));
            assert!(late < early, "{prediction:?}/{loss:?}: loss {early:.4} → {late:.4}");
            let (saved, _) = read_model_config(&out.model_file).unwrap();
            assert_eq!(saved.diffusion.prediction_type, prediction);
        }
    }
}
