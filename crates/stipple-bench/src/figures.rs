//! One figure of one preset, timed through the library calls users run.
//!
//! - train: batch 32 of clamped standard-normal "images"; [`stipple_train::diffusion_loss`]
//!   with DDPM's linear-β ε-prediction (t ~ U{0…999}, MSE, dropout as configured), its
//!   backward pass, then one update of the trainer's optimizer [`stipple_train::AdamW`]
//!   (lr 2e-4, β (0.9, 0.999), ε 1e-8, weight decay 0) — the twin's step. The trainer's
//!   gradient clipping and EMA are not part of it (the twin has neither).
//! - forward: batch 16, `UNet2D::forward` on plain (non-variable) weights, so no graph is kept.
//! - sample: [`stipple_pipeline::generate`] of 16 images in one batch with DPM++ 2M over
//!   Karras σ of the DDPM schedule, 20 steps; warm-up = single forwards (not whole samples).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::{num_parameters, DiffusionConfig, LoadedModel, ModelConfig, Net, NetworkConfig, UNet2D, UNetCond, UNetConfig};
use stipple_pipeline::{generate, GenerateRequest};
use stipple_train::{diffusion_loss, AdamW, AdamWConfig, DataSource, LossWeighting, NoiseDraw, TrainConfig};

use crate::timing::timed;
use crate::{forward_flops, median, preset_config, rss_mib, BenchError, Figure};

/// Images per training step.
pub const TRAIN_BATCH: usize = 32;
/// Images per inference forward and per sample.
pub const INFER_BATCH: usize = 16;
/// Sampling steps of the sample figure.
pub const SAMPLE_STEPS: usize = 20;
const SAMPLER: &str = "dpmpp_2m";
const SCHEDULE: &str = "karras";

/// How often to run a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Timed runs of the train and forward figures (the median is reported).
    pub runs: usize,
    /// Untimed runs first (for sample: single forward passes).
    pub warmup: usize,
    /// Timed runs of the sample figure.
    pub sample_runs: usize,
}

/// The timings of one figure, with the keys of the twin's JSON.
#[derive(Clone, Debug, Serialize)]
pub struct FigureRecord {
    pub preset: String,
    pub figure: String,
    pub parameters: usize,
    pub image_size: usize,
    pub forward_gflop_per_image: f64,
    pub batch: usize,
    pub runs: usize,
    pub warmup: usize,
    pub times_s: Vec<f64>,
    pub median_s: f64,
    pub gflop: f64,
    /// `gflop / median_s`; a training step counts 3× its forward.
    pub gflops: f64,
    /// Peak resident set of the process at the end (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Resident set after building the network, before the figure, MiB.
    pub base_rss_mib: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Times `figure` of `preset` on `device` in this process. The peak memory is the process's,
/// so a caller that wants each figure's own runs each in a fresh process.
pub fn measure(preset: &str, figure: Figure, settings: &Settings, device: &Device) -> Result<FigureRecord, BenchError> {
    if settings.runs == 0 || settings.sample_runs == 0 {
        return Err(BenchError::Settings("runs and sample runs must be at least 1".into()));
    }
    let cfg = preset_config(preset)?;
    let size = cfg.sample_size.ok_or_else(|| BenchError::Settings(format!("preset {preset} has no sample_size")))?;
    let varmap = VarMap::new();
    let unet = UNet2D::new(seeded_var_builder(&varmap, 0, device), &cfg)?;
    let parameters = num_parameters(&varmap);
    let fwd1 = forward_flops(&cfg)? as f64;
    // Resident set after building the network, before the figure (the optimizer state and the
    // inference copy of the weights come after, as in the twin).
    let base_rss_mib = rss_mib("VmRSS");
    let mut record = FigureRecord {
        preset: preset.into(),
        figure: figure.name().into(),
        parameters,
        image_size: size,
        forward_gflop_per_image: fwd1 / 1e9,
        batch: 0,
        runs: settings.runs,
        warmup: settings.warmup,
        times_s: vec![],
        median_s: f64::NAN,
        gflop: f64::NAN,
        gflops: f64::NAN,
        peak_rss_mib: f64::NAN,
        base_rss_mib,
        optimizer: None,
        steps: None,
        sampler: None,
        schedule: None,
    };
    let flops = match figure {
        Figure::Train => {
            record.batch = TRAIN_BATCH;
            record.times_s = train_steps(&unet, &varmap, &cfg, settings, device)?;
            record.optimizer = Some("stipple_train::AdamW (lr 2e-4, weight_decay 0)".into());
            3.0 * fwd1 * TRAIN_BATCH as f64
        }
        Figure::Forward | Figure::Sample => {
            let model = LoadedModel {
                config: ModelConfig::new(NetworkConfig::UNet2D(cfg.clone()), DiffusionConfig::default()),
                net: Net::UNet2D(frozen_copy(&varmap, &cfg, device)?),
                text: None,
                metadata: HashMap::new(),
            };
            drop(unet);
            drop(varmap);
            let x = Tensor::randn(0f32, 1f32, (INFER_BATCH, cfg.in_channels, size, size), device)?;
            let t = Tensor::full(500f32, INFER_BATCH, device)?;
            let fwd = || -> Result<(), BenchError> {
                model.net.forward(&x, &t, None)?;
                Ok(device.synchronize()?)
            };
            record.batch = INFER_BATCH;
            if figure == Figure::Forward {
                record.times_s = timed(settings.runs, settings.warmup, fwd, fwd)?;
                fwd1 * INFER_BATCH as f64
            } else {
                let spec = GenerateRequest {
                    sampler: Some(SAMPLER.into()),
                    schedule: Some(SCHEDULE.into()),
                    steps: Some(SAMPLE_STEPS),
                    seed: Some(0),
                    count: Some(INFER_BATCH),
                    batch_size: Some(INFER_BATCH),
                    ..GenerateRequest::default()
                }
                .validate()?;
                let sigmas = spec.sigmas(&model.config.diffusion)?;
                let smp = || -> Result<(), BenchError> {
                    generate(&model, &spec, &sigmas, device, &mut ())?;
                    Ok(device.synchronize()?)
                };
                record.runs = settings.sample_runs;
                record.times_s = timed(settings.sample_runs, settings.warmup, fwd, smp)?;
                record.steps = Some(SAMPLE_STEPS);
                record.sampler = Some(SAMPLER.into());
                record.schedule = Some(SCHEDULE.into());
                SAMPLE_STEPS as f64 * fwd1 * INFER_BATCH as f64
            }
        }
    };
    record.median_s = median(&record.times_s);
    record.gflop = flops / 1e9;
    record.gflops = flops / 1e9 / record.median_s;
    record.peak_rss_mib = rss_mib("VmHWM");
    Ok(record)
}

/// The network rebuilt on plain tensors of `varmap`'s weights: inference keeps no autograd
/// graph, as with a loaded model file.
fn frozen_copy(varmap: &VarMap, cfg: &UNetConfig, device: &Device) -> Result<UNet2D, BenchError> {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| BenchError::Settings("the variable map's lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    Ok(UNet2D::new(VarBuilder::from_tensors(tensors, DType::F32, device), cfg)?)
}

/// `settings.warmup` untimed and `settings.runs` timed training steps of `unet`.
fn train_steps(unet: &UNet2D, varmap: &VarMap, cfg: &UNetConfig, settings: &Settings, device: &Device) -> Result<Vec<f64>, BenchError> {
    let mut train = TrainConfig::for_data(DataSource::EmbeddedEmoji, cfg.clone());
    train.model.diffusion = DiffusionConfig::default();
    train.loss_weighting = LossWeighting::Uniform;
    train.optimizer = AdamWConfig::default();
    train.batch_size = TRAIN_BATCH;
    let schedule = train.model.diffusion.schedule();
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| BenchError::Settings("the variable map's lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut opt = AdamW::new(vars, train.optimizer)?;
    let size = cfg.sample_size.unwrap_or(0);
    let shape = (TRAIN_BATCH, cfg.in_channels, size, size);
    let per_image = cfg.in_channels * size * size;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // The same variables behind the objective's network type (a clone shares them).
    let net = Net::UNet2D(unet.clone());
    let mut step = || -> Result<(), BenchError> {
        let x0 = Tensor::randn(0f32, 1f32, shape, device)?.clamp(-1f32, 1f32)?;
        let draw = NoiseDraw::new(&mut rng, TRAIN_BATCH, per_image, train.model.diffusion.num_train_timesteps);
        let loss = diffusion_loss(&net, &train, &schedule, &x0, &draw, &UNetCond::default())?;
        let grads = loss.backward()?;
        opt.step(&grads, train.optimizer.lr, 1.0)?;
        Ok(device.synchronize()?)
    };
    // One closure serves as warm-up and timed run (`timed` would need two borrows of it).
    for _ in 0..settings.warmup {
        step()?;
    }
    let mut times = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs {
        let t0 = std::time::Instant::now();
        step()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONCE: Settings = Settings { runs: 1, warmup: 0, sample_runs: 1 };

    #[test]
    fn every_figure_of_the_tiny_preset_times_its_runs_and_counts_its_flops() {
        let dev = Device::Cpu;
        let fwd = forward_flops(&preset_config("tiny").unwrap()).unwrap() as f64;
        for (figure, batch, gflop) in [
            (Figure::Train, TRAIN_BATCH, 3.0 * fwd * TRAIN_BATCH as f64 / 1e9),
            (Figure::Forward, INFER_BATCH, fwd * INFER_BATCH as f64 / 1e9),
            (Figure::Sample, INFER_BATCH, SAMPLE_STEPS as f64 * fwd * INFER_BATCH as f64 / 1e9),
        ] {
            let r = measure("tiny", figure, &ONCE, &dev).unwrap();
            assert_eq!((r.figure.as_str(), r.batch, r.times_s.len(), r.image_size), (figure.name(), batch, 1, 8));
            assert_eq!(r.parameters, 45_259);
            assert!((r.gflop - gflop).abs() < 1e-12, "{figure}: {} vs {gflop}", r.gflop);
            assert!(r.median_s > 0.0 && r.gflops > 0.0, "{r:?}");
            assert_eq!(r.sampler.is_some(), figure == Figure::Sample);
            assert_eq!(r.optimizer.is_some(), figure == Figure::Train);
        }
    }

    #[test]
    fn zero_runs_are_refused() {
        let err = measure("tiny", Figure::Forward, &Settings { runs: 0, ..ONCE }, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
