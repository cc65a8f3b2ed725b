//! Class-conditional training: the classes land in the model config, and a resumed run with
//! condition dropout continues exactly (the dropout draws come from the step's generator);
//! a labelled folder of sound clips trains a class-conditional 1-D U-Net or DiffWave.

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

/// Writes two "words" of sound under `dir`, each a tone of its own frequency in a few clips:
/// `low/k.wav` at 220 Hz and `high/k.wav` at 660 Hz (8 kHz, 400 samples), and a
/// `labels.csv` naming each clip's word.
fn word_clips(dir: &Path) {
    let mut csv = String::from("file,word\n");
    for (word, hz) in [("low", 220.0f32), ("high", 660.0)] {
        std::fs::create_dir_all(dir.join(word)).unwrap();
        for k in 0..3 {
            let samples = (0..400).map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * (i + 7 * k) as f32 / 8000.0).sin()).collect();
            let wav = stipple_audio::encode_wav(&stipple_audio::Clip { rate: 8000, samples }, "").unwrap();
            std::fs::write(dir.join(word).join(format!("{k}.wav")), wav).unwrap();
            csv += &format!("{word}/{k}.wav,{word}\n");
        }
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
}

#[test]
fn labelled_sound_trains_a_class_conditional_model_with_either_network() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("words");
    word_clips(&data);
    let unet = stipple_nn::UNet1DConfig::tiny(64, 1);
    let diffwave = stipple_nn::DiffWaveNet { sample_size: 64, net: stipple_nn::DiffWaveConfig::tiny() };
    for (name, net, labels) in [
        ("unet1d", stipple_nn::NetworkConfig::from(unet), LabelSource::Folders),
        ("diffwave", stipple_nn::NetworkConfig::from(diffwave), LabelSource::Csv { column: "word".into() }),
    ] {
        let mut cfg = TrainConfig::for_sound(data.clone(), 8000, net);
        cfg.labels = labels;
        cfg.cond_dropout = 0.5;
        (cfg.steps, cfg.batch_size, cfg.checkpoint_every, cfg.sample_every, cfg.sample_count, cfg.sample_steps) = (2, 4, 1000, 0, 2, 2);
        let run = dir.path().join(name);
        run_to(cfg, &run, false);
        let (cfg, _) = read_model_config(&model_file(&run)).unwrap();
        assert_eq!(cfg.classes, vec!["high", "low"], "{name}");
        assert_eq!((cfg.network.num_class_embeds(), cfg.null_class()), (Some(3), Some(2)), "{name}");
        assert!(weights(&run).iter().any(|(n, _)| n.starts_with("class_embedding")), "{name}: no class embedding");
    }
    // A clip outside any sub-folder has no folder label.
    std::fs::copy(data.join("low/0.wav"), data.join("loose.wav")).unwrap();
    let mut cfg = TrainConfig::for_sound(data, 8000, stipple_nn::UNet1DConfig::tiny(64, 1));
    cfg.labels = LabelSource::Folders;
    let opts = TrainOptions { run: dir.path().join("loose"), resume: false, steps: None, device: Device::Cpu, progress: false };
    let Err(e) = train(cfg, &opts, &mut []) else { panic!("an unlabelled clip is refused") };
    let e = e.to_string();
    assert!(e.contains("loose.wav is not in a sub-folder"), "{e}");
}
