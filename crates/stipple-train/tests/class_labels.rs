//! Class-conditional training: the classes land in the model config, and a resumed run with
//! condition dropout continues exactly (the dropout draws come from the step's generator).

use std::path::{Path, PathBuf};

use candle_core::Device;
use stipple_nn::{read_model_config, UNetConfig};
use stipple_train::data::LabelSource;
use stipple_train::{load_checkpoint, model_file, train, Checkpoints, Dashboard, DataSource, SampleGrids, TrainConfig, TrainOptions};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

fn config(steps: usize, cond_dropout: f64) -> TrainConfig {
    let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture()), unet);
    cfg.labels = LabelSource::Csv { column: "category".into() };
    cfg.cond_dropout = cond_dropout;
    cfg.steps = steps;
    cfg.batch_size = 8;
    cfg.checkpoint_every = 1000;
    cfg.sample_every = 0;
    cfg.sample_count = 2;
    cfg.sample_steps = 2;
    cfg
}

/// Trains `cfg` in `run` (resuming it to `cfg.steps` with `resume`) with the command line's observers but the bars.
fn run_to(cfg: TrainConfig, run: &Path, resume: bool) {
    let steps = resume.then_some(cfg.steps);
    let opts = TrainOptions { run: run.to_path_buf(), resume, steps, device: Device::Cpu, progress: false };
    let (mut dashboard, mut checkpoints, mut grids) = (Dashboard::default(), Checkpoints, SampleGrids);
    train(cfg, &opts, &mut [&mut dashboard, &mut checkpoints, &mut grids]).unwrap();
}

fn weights(run: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = load_checkpoint(run, &Device::Cpu).unwrap();
    let mut w: Vec<_> = ck.weights.iter().map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn classes_are_stored_and_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    run_to(config(2, 0.5), &a, false);
    run_to(config(4, 0.5), &a, true);
    run_to(config(4, 0.5), &b, false);
    assert!(weights(&a) == weights(&b), "resumed class-conditional run differs");
    assert!(weights(&a).iter().any(|(n, _)| n.starts_with("class_embedding")));

    let (cfg, _) = read_model_config(&model_file(&a)).unwrap();
    assert_eq!(cfg.classes.len(), 9);
    assert_eq!(cfg.classes[0], "Activities");
    assert_eq!(cfg.network.num_class_embeds(), Some(10));
    assert_eq!(cfg.null_class(), Some(9));
    assert_eq!(cfg.class_index("Flags").unwrap(), 2);

    // The dropout draws matter: another rate trains other weights.
    run_to(config(4, 0.0), &c, false);
    assert!(weights(&a) != weights(&c));
}
