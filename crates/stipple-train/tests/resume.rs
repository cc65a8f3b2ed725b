//! A run resumed from its checkpoint continues exactly: N steps + resume + N steps give
//! bit-identical weights, EMA and optimizer state, and the same log (smoothed loss
//! included), as 2N uninterrupted steps.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use candle_core::Device;
use stipple_nn::UNetConfig;
use stipple_train::{load_checkpoint, train, DataSource, TrainConfig, TrainOptions, CHECKPOINT_DIR, LOG_FILE};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

fn tiny_config(steps: usize) -> TrainConfig {
    let mut unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    unet.dropout = 0.1; // exercises the seeded dropout masks too
    let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture()), unet);
    cfg.steps = steps;
    cfg.batch_size = 4;
    cfg.checkpoint_every = 1000;
    cfg.sample_every = 0;
    cfg.sample_count = 2;
    cfg.sample_steps = 2;
    cfg.warmup_steps = 2;
    cfg
}

fn opts(run: &Path, resume: bool) -> TrainOptions {
    TrainOptions {
        run: run.to_path_buf(),
        resume,
        device: Device::Cpu,
        stop: Arc::new(AtomicBool::new(false)),
        progress: false,
    }
}

#[test]
fn resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(tiny_config(3), &opts(&a, false)).unwrap();
    let o = train(tiny_config(6), &opts(&a, true)).unwrap();
    assert_eq!((o.step, o.steps_this_session), (6, 3));
    train(tiny_config(6), &opts(&b, false)).unwrap();

    let (ca, cb) = (load_checkpoint(&a, &Device::Cpu).unwrap(), load_checkpoint(&b, &Device::Cpu).unwrap());
    assert_eq!(ca.state, cb.state);
    for (what, ta, tb) in [("weights", &ca.weights, &cb.weights), ("ema", &ca.ema, &cb.ema), ("optimizer", &ca.optimizer, &cb.optimizer)] {
        assert_eq!(ta.len(), tb.len());
        for (name, x) in ta {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = tb[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(x == y, "{what} {name} differs after resume");
        }
    }
    assert_eq!(log_without_timings(&a), log_without_timings(&b));
    // And the run did change the weights.
    let first = train(tiny_config(1), &opts(&dir.path().join("c"), false)).unwrap();
    assert_eq!(first.step, 1);
    let cc = load_checkpoint(&dir.path().join("c"), &Device::Cpu).unwrap();
    let name = "conv_in.weight";
    assert_ne!(
        cc.weights[name].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        ca.weights[name].flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

/// The log lines of `run` without the wall-clock keys, which differ between any two runs.
fn log_without_timings(run: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join(LOG_FILE)).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let fields = v.as_object_mut().unwrap();
            assert!(fields.remove("seconds").is_some() && fields.remove("steps_per_sec").is_some());
            v
        })
        .collect()
}

#[test]
fn checkpoint_without_smoothed_loss_resumes() {
    // Checkpoints written before the smoothed loss was logged lack `loss_smoother`: they
    // still load, and smoothing starts afresh (its first value is the raw loss).
    let dir = tempfile::tempdir().unwrap();
    train(tiny_config(2), &opts(dir.path(), false)).unwrap();
    let state = dir.path().join(CHECKPOINT_DIR).join("state.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("loss_smoother").unwrap();
    std::fs::write(&state, json.to_string()).unwrap();
    train(tiny_config(3), &opts(dir.path(), true)).unwrap();
    let log = log_without_timings(dir.path());
    assert_eq!(log.len(), 3);
    let (raw, smoothed) = (log[2]["loss"].as_f64().unwrap(), log[2]["loss_smoothed"].as_f64().unwrap());
    assert!((raw - smoothed).abs() < 1e-12 * raw, "smoothing did not restart: {raw} vs {smoothed}");
}

#[test]
fn loss_falls_on_small_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(150);
    cfg.model.unet.dropout = 0.0;
    cfg.batch_size = 16;
    cfg.optimizer.lr = 2e-3;
    train(cfg, &opts(dir.path(), false)).unwrap();
    let log = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (early, late) = (mean(&losses[..20]), mean(&losses[130..]));
    assert!(late < 0.7 * early, "loss did not fall: first 20 steps {early:.4}, last 20 {late:.4}");
}
