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

/// The CSDI objective (Tashiro et al. 2021, Alg. 1) trains on the values the observation mask
/// hides only: the noise drawn at the observed positions changes neither the network's input
/// (it reads x·(1 − m)) nor the loss, while the noise at a hidden one changes the loss.
#[test]
fn the_csdi_loss_ignores_the_observed_values_noise() {
    use candle_core::Tensor;
    use stipple_nn::{observation_channels, Net, NetworkConfig, UNet1DConfig, UNetCond, OBSERVATION_CHANNELS};
    use stipple_train::{diffusion_loss, NoiseDraw};

    let (b, context, horizon) = (2, 12, 4);
    let l = context + horizon;
    let net_cfg = UNet1DConfig { cond_channels: OBSERVATION_CHANNELS, ..UNet1DConfig::tiny(l, 1) };
    let cfg = TrainConfig::for_series("s.csv".into(), vec!["y".into()], context, horizon, NetworkConfig::UNet1D(net_cfg.clone()));
    let vm = candle_nn::VarMap::new();
    let net = Net::new(candle_nn::VarBuilder::from_varmap(&vm, candle_core::DType::F32, &Device::Cpu), &NetworkConfig::UNet1D(net_cfg)).unwrap();
    let schedule = cfg.model.diffusion.schedule();
    let x0: Vec<f32> = (0..b * l).map(|i| (i as f32 * 0.37).sin()).collect();
    let x0 = Tensor::from_vec(x0, (b, 1, l), &Device::Cpu).unwrap();
    let keep: Vec<f32> = (0..b * l).map(|i| if i % l < context { 1.0 } else { 0.0 }).collect();
    let keep = Tensor::from_vec(keep, (b, 1, l), &Device::Cpu).unwrap();
    let cond = UNetCond { observed: Some(observation_channels(&x0, &keep).unwrap()), ..Default::default() };
    let eps: Vec<f32> = (0..b * l).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    let loss = |eps: Vec<f32>| {
        let draw = NoiseDraw { timesteps: vec![300, 700], eps, dropout_seed: 1 };
        diffusion_loss(&net, &cfg, &schedule, &x0, &draw, &cond).unwrap().to_scalar::<f32>().unwrap()
    };
    let base = loss(eps.clone());
    let mut observed_changed = eps.clone();
    observed_changed[3] += 2.0; // sample 0, a context value
    observed_changed[l + 5] -= 1.5; // sample 1, a context value
    assert_eq!(loss(observed_changed), base);
    let mut hidden_changed = eps;
    hidden_changed[l - 1] += 2.0; // sample 0, the last forecast value
    assert_ne!(loss(hidden_changed), base);
}
