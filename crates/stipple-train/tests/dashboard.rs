//! A training run leaves a readable dashboard: JSON lines with the smoothed loss, TensorBoard
//! event files whose records parse back to the logged scalars and sample grids, and a loss
//! plot. With `STIPPLE_TENSORBOARD_PYTHON` pointing at a Python that has the `tensorboard`
//! package, the run is also read by TensorBoard's own loader
//! (`tests/reference/check_tensorboard.py`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use stipple_nn::UNetConfig;
use stipple_train::{
    train, Checkpoints, Dashboard, DataSource, SampleGrids, TrainConfig, TrainOptions, LOG_FILE, LOSS_PLOT, LOSS_PLOT_SIZE, LOSS_SMOOTHING, SAMPLES_TAG,
    TENSORBOARD_DIR,
};
use support::tfevents::{self, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny_run(run: &Path) {
    let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[]).unwrap();
    let mut cfg = TrainConfig::for_data(DataSource::Folder(repo().join("tests/fixtures/emoji16")), unet);
    cfg.steps = 6;
    cfg.batch_size = 4;
    cfg.checkpoint_every = 3;
    cfg.sample_every = 3;
    cfg.sample_count = 4;
    cfg.sample_steps = 2;
    cfg.warmup_steps = 2;
    let opts = TrainOptions { run: run.to_path_buf(), resume: false, steps: None, device: Device::Cpu, progress: false };
    let (mut dashboard, mut checkpoints, mut grids) = (Dashboard::default(), Checkpoints, SampleGrids);
    train(cfg, &opts, &mut [&mut dashboard, &mut checkpoints, &mut grids]).unwrap();
}

fn log_lines(run: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join(LOG_FILE)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn run_folder_holds_readable_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    tiny_run(run);

    // JSON lines: the old keys, plus the debiased EMA of the loss and steps/s.
    let lines = log_lines(run);
    assert_eq!(lines.len(), 6);
    let (mut m, mut t) = (0.0f64, 0);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"].as_u64(), Some(i as u64 + 1));
        for key in ["loss", "loss_smoothed", "lr", "grad_norm", "ema_decay", "seconds", "steps_per_sec"] {
            assert!(l[key].as_f64().is_some_and(f64::is_finite), "line {i} lacks {key}: {l}");
        }
        m = LOSS_SMOOTHING * m + (1.0 - LOSS_SMOOTHING) * l["loss"].as_f64().unwrap();
        t += 1;
        let expected = m / (1.0 - LOSS_SMOOTHING.powi(t));
        assert!((l["loss_smoothed"].as_f64().unwrap() - expected).abs() < 1e-12);
        assert!(l["steps_per_sec"].as_f64().unwrap() > 0.0);
    }

    // TensorBoard: one event file, CRCs valid, the file-version event first, then the
    // scalars of every step (equal to the JSON lines, in f32) and the grids at steps 3, 6.
    let files: Vec<_> = std::fs::read_dir(run.join(TENSORBOARD_DIR)).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."));
    let events: Vec<_> = tfevents::records(&std::fs::read(&files[0]).unwrap()).iter().map(|r| tfevents::event(r)).collect();
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(events.iter().all(|e| e.wall_time > 1.6e9));
    let mut scalars: BTreeMap<&str, Vec<(i64, f32)>> = BTreeMap::new();
    let mut images = Vec::new();
    for e in &events[1..] {
        for (tag, v) in &e.values {
            match v {
                Value::Scalar(x) => scalars.entry(tag.as_str()).or_default().push((e.step, *x)),
                Value::Image { height, width, colorspace, png } => {
                    assert_eq!(tag, SAMPLES_TAG);
                    let img = image::load_from_memory(png).unwrap();
                    assert_eq!((img.width() as u64, img.height() as u64), (*width, *height));
                    assert_eq!(*colorspace, img.color().channel_count() as u64);
                    images.push((e.step, img));
                }
            }
        }
    }
    let keys = [
        ("loss/raw", "loss"),
        ("loss/smoothed", "loss_smoothed"),
        ("train/lr", "lr"),
        ("train/grad_norm", "grad_norm"),
        ("train/ema_decay", "ema_decay"),
        ("train/steps_per_sec", "steps_per_sec"),
    ];
    assert_eq!(scalars.keys().copied().collect::<Vec<_>>(), { let mut k: Vec<_> = keys.iter().map(|k| k.0).collect(); k.sort(); k });
    for (tag, key) in keys {
        let expected: Vec<(i64, f32)> = lines.iter().map(|l| (l["step"].as_i64().unwrap(), l[key].as_f64().unwrap() as f32)).collect();
        assert_eq!(scalars[tag], expected, "{tag}");
    }
    assert_eq!(images.iter().map(|i| i.0).collect::<Vec<_>>(), vec![3, 6]);
    let latest = image::open(run.join("samples/latest.png")).unwrap();
    assert_eq!(images[1].1.to_rgb8(), latest.to_rgb8(), "the last TensorBoard image is samples/latest.png");

    // The loss plot: a PNG of the documented size, white background, a curve on it.
    let plot = image::open(run.join(LOSS_PLOT)).unwrap().to_rgb8();
    assert_eq!(plot.dimensions(), LOSS_PLOT_SIZE);
    assert_eq!(plot.get_pixel(0, 0).0, [255, 255, 255]);
    let curve = plot.pixels().filter(|p| p.0[2] > 100 && p.0[0] < 60).count();
    assert!(curve > 200, "the smoothed curve is missing ({curve} dark-blue pixels)");
    assert!(!run.join("loss.png.tmp").exists());

    // TensorBoard's own loader, when a Python with it is configured.
    match std::env::var_os("STIPPLE_TENSORBOARD_PYTHON") {
        None => eprintln!("skipped the TensorBoard check: set STIPPLE_TENSORBOARD_PYTHON to a Python with `tensorboard`"),
        Some(python) => {
            let out = std::process::Command::new(python)
                .arg(repo().join("tests/reference/check_tensorboard.py"))
                .arg(run)
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "check_tensorboard.py failed:\n{text}");
            eprintln!("{text}");
        }
    }
}
