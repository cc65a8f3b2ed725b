//! Comparing a data-parallel run with one process's: the tiny run both train, and the
//! tolerances (the loss and gradient norm of each step logged, then the saved state).
//!
//! Averaging the ranks' gradients sums in another order than one process's backward pass,
//! so results are not bit-identical. The loss and the gradient norm of every step (logged by
//! rank 0; the norm is that of the averaged gradient, which clipping uses) must agree to a
//! relative [`LOG_RTOL`] (worst seen: 2.3e-7, f32 rounding). The weights, EMA and AdamW
//! moments are compared by [`compare`]: tightly where an element's gradient is above AdamW's
//! ε (worst seen: 0.045 of the tolerance, weights within 1.0e-6); elsewhere AdamW divides
//! rounding noise (~1e-9, e.g. the exactly-zero gradient of a bias that a GroupNorm of one
//! channel per group cancels) by its own magnitude and steps by up to the learning rate
//! whatever the noise, so only that bound is checked (worst seen: 0.14 of it).

use std::path::{Path, PathBuf};

use candle_core::Device;
use stipple_nn::UNetConfig;
use stipple_train::{load_checkpoint, Dashboard, DataSource, TrainConfig, TrainOptions, Trainer, LOG_FILE};

/// Learning rate of the test runs.
pub const LR: f64 = 1e-3;
/// Absolute and relative tolerance of a data-parallel run's weights against one process's.
pub const ATOL: f32 = 1e-5;
pub const RTOL: f32 = 1e-4;
/// Relative tolerance of AdamW's moments.
pub const RTOL_MOMENTS: f32 = 1e-2;
/// Relative tolerance of each step's loss and gradient norm.
pub const LOG_RTOL: f64 = 1e-5;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

/// A tiny model without dropout: each rank draws the dropout masks of its own tensors, so
/// with dropout the ranks' masks differ from one process's (see docs/SCALING.md).
pub fn tiny_config(batch_size: usize, seed: u64) -> TrainConfig {
    let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture()), unet);
    cfg.steps = 2;
    cfg.batch_size = batch_size;
    cfg.checkpoint_every = 1000;
    cfg.sample_every = 0;
    cfg.sample_count = 2;
    cfg.sample_steps = 2;
    cfg.warmup_steps = 2;
    cfg.optimizer.lr = LR;
    cfg.random_flip = true; // each image's flip must follow it to its rank
    cfg.seed = seed;
    cfg
}

pub fn opts(run: &Path, resume: bool, steps: usize) -> TrainOptions {
    TrainOptions { run: run.to_path_buf(), resume, steps: Some(steps), device: Device::Cpu, progress: false }
}

/// Trains `steps` steps in this process alone.
pub fn train_alone(run: &Path, steps: usize) {
    Trainer::new(tiny_config(4, 0), &opts(run, false, steps)).unwrap().run(&mut [&mut Dashboard::default()]).unwrap();
}

/// How far a state is from the reference, as the largest ratio of error to tolerance (≤ 1
/// passes) over the elements whose gradient is above AdamW's ε (`live`) and the others
/// (`noise`), and the largest absolute difference of a live weight.
pub struct Errors {
    pub live: f32,
    pub noise: f32,
    pub live_abs: f32,
}

/// Compares the checkpoint in `a` with the reference in `b` after `steps` steps. Where the
/// reference's bias-corrected √v̂ ≥ ε: weights and EMA within [`ATOL`] + [`RTOL`]·|b|, AdamW's
/// v within [`RTOL_MOMENTS`]·|b| and m within [`RTOL_MOMENTS`]·(|b| + √v). Elsewhere the update
/// follows rounding noise and each step moves a weight by at most about the learning rate, so
/// weights and EMA within LR·steps, and the moments within ε (m) and ε² (v).
pub fn compare(a: &Path, b: &Path, steps: usize) -> Errors {
    let (ca, cb) = (load_checkpoint(a, &Device::Cpu).unwrap(), load_checkpoint(b, &Device::Cpu).unwrap());
    assert_eq!((ca.state.step, ca.state.adam_t), (steps, steps));
    assert_eq!((cb.state.step, cb.state.adam_t), (steps, steps));
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let eps = cb.config.optimizer.eps as f32;
    let bias2 = 1.0 - (cb.config.optimizer.beta2 as f32).powi(steps as i32);
    let mut e = Errors { live: 0.0, noise: 0.0, live_abs: 0.0 };
    for name in cb.weights.keys() {
        let (m, v) = (format!("m.{name}"), format!("v.{name}"));
        let rms: Vec<f32> = values(&cb.optimizer[&v]).iter().map(|v| v.sqrt()).collect();
        let kinds = [
            (&ca.weights[name], &cb.weights[name], false, ATOL, RTOL, LR as f32 * steps as f32),
            (&ca.ema[name], &cb.ema[name], false, ATOL, RTOL, LR as f32 * steps as f32),
            (&ca.optimizer[&m], &cb.optimizer[&m], true, 0.0, RTOL_MOMENTS, eps),
            (&ca.optimizer[&v], &cb.optimizer[&v], false, 0.0, RTOL_MOMENTS, eps * eps),
        ];
        for (i, (x, y, signed_mean, atol, rtol, noise_tol)) in kinds.into_iter().enumerate() {
            for ((p, q), &rms) in values(x).iter().zip(values(y)).zip(&rms) {
                let d = (p - q).abs();
                if rms / bias2.sqrt() >= eps {
                    // m averages gradients of either sign: it may cancel to near 0, so its
                    // error is measured against the gradient's scale √v as well.
                    let scale = if signed_mean { q.abs() + rms } else { q.abs() };
                    e.live = e.live.max(d / (atol + rtol * scale));
                    if i == 0 {
                        e.live_abs = e.live_abs.max(d);
                    }
                } else {
                    e.noise = e.noise.max(d / noise_tol);
                }
            }
        }
    }
    e
}

/// Each logged step's (loss, gradient norm).
pub fn log(run: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(run.join(LOG_FILE)).unwrap();
    let line = |l: &str| -> (f64, f64) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (v["loss"].as_f64().unwrap(), v["grad_norm"].as_f64().unwrap())
    };
    text.lines().map(line).collect()
}

pub fn assert_close(a: &Path, b: &Path, steps: usize, what: &str) {
    let (la, lb) = (log(a), log(b));
    assert_eq!((la.len(), lb.len()), (steps, steps), "{what}: logged steps");
    let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
    let log_worst = la.iter().zip(&lb).map(|(x, y)| rel(x.0, y.0).max(rel(x.1, y.1))).fold(0.0, f64::max);
    let e = compare(a, b, steps);
    eprintln!(
        "{what}: loss and gradient norm within {log_worst:.2e} (relative); state within {:.3} of the tolerance where the \
         gradient is above AdamW's eps (largest weight difference {:.2e}), {:.3} elsewhere",
        e.live, e.live_abs, e.noise
    );
    assert!(log_worst <= LOG_RTOL, "{what}: loss or gradient norm differ by {log_worst:e} (relative)");
    assert!(e.live <= 1.0 && e.noise <= 1.0, "{what}: {} and {} times the tolerances", e.live, e.noise);
    // Not the same computation: 2 ranks sum the gradients in another order.
    assert!(e.live_abs > 0.0, "{what}: bit-identical results are unexpected with 2 ranks");
}
