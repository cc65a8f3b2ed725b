//! A run resumed from its checkpoint continues exactly: N steps + resume + N steps give
//! bit-identical weights, EMA and optimizer state, and the same log (smoothed loss
//! included), as 2N uninterrupted steps — whether the first session reached its total, was
//! stopped by an observer, or died after logging steps beyond its last checkpoint.

mod support;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::Device;
use stipple_nn::{DiffWaveConfig, DiffWaveNet, NetworkConfig, UNet1DConfig, UNetConfig};
use stipple_train::{
    load_checkpoint, train, Checkpoints, Dashboard, DataSource, SampleGrids, StepStats, TrainConfig, TrainError, TrainObserver,
    TrainOptions, TrainOutcome, Trainer, CHECKPOINT_DIR, LOG_FILE,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

fn tiny_config(steps: usize) -> TrainConfig {
    let mut unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    unet.dropout = 0.1; // exercises the seeded dropout masks too
    config_of(unet, steps)
}

fn config_of(unet: UNetConfig, steps: usize) -> TrainConfig {
    let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture()), unet);
    cfg.steps = steps;
    cfg.batch_size = 4;
    cfg.checkpoint_every = 1000;
    cfg.sample_every = 0;
    cfg.sample_count = 2;
    cfg.sample_steps = 2;
    cfg.warmup_steps = 2;
    cfg.random_flip = true; // exercises the seeded flips too
    cfg
}

fn opts(run: &Path, resume: bool, steps: Option<usize>) -> TrainOptions {
    TrainOptions { run: run.to_path_buf(), resume, steps, device: Device::Cpu, progress: false }
}

/// Trains with the observers of the command line (but the bars), and `extra` after them.
fn train_with(cfg: TrainConfig, opts: &TrainOptions, extra: &mut dyn TrainObserver) -> Result<TrainOutcome, TrainError> {
    let (mut dashboard, mut checkpoints, mut grids) = (Dashboard::default(), Checkpoints, SampleGrids);
    train(cfg, opts, &mut [&mut dashboard, &mut checkpoints, &mut grids, extra])
}

/// An observer that does nothing.
struct Idle;
impl TrainObserver for Idle {}

fn train_to(cfg: TrainConfig, run: &Path, resume: bool, steps: Option<usize>) -> TrainOutcome {
    train_with(cfg, &opts(run, resume, steps), &mut Idle).unwrap()
}

/// Cancels the run after the step `at` (as a server's cancel button or Ctrl-C would).
struct CancelAt(usize);
impl TrainObserver for CancelAt {
    fn on_step(&mut self, _trainer: &Trainer, stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        Ok(if stats.step == self.0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    }
}

/// The checkpoints of `a` and `b` hold the same state and bit-identical tensors.
fn assert_same_checkpoint(a: &Path, b: &Path) {
    let (ca, cb) = (load_checkpoint(a, &Device::Cpu).unwrap(), load_checkpoint(b, &Device::Cpu).unwrap());
    assert_eq!(ca.state, cb.state);
    assert_eq!(ca.config, cb.config);
    for (what, ta, tb) in [("weights", &ca.weights, &cb.weights), ("ema", &ca.ema, &cb.ema), ("optimizer", &ca.optimizer, &cb.optimizer)] {
        assert_eq!(ta.len(), tb.len());
        for (name, x) in ta {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = tb[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(x == y, "{what} {name} differs after resume");
        }
    }
}

#[test]
fn resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train_to(tiny_config(3), &a, false, None);
    let o = train_to(tiny_config(3), &a, true, Some(6));
    assert_eq!((o.step, o.steps_this_session), (6, 3));
    train_to(tiny_config(6), &b, false, None);

    assert_same_checkpoint(&a, &b);
    assert_eq!(log_without_timings(&a), log_without_timings(&b));
    // And the run did change the weights.
    let first = train_to(tiny_config(1), &dir.path().join("c"), false, None);
    assert_eq!(first.step, 1);
    let ca = load_checkpoint(&a, &Device::Cpu).unwrap();
    let cc = load_checkpoint(&dir.path().join("c"), &Device::Cpu).unwrap();
    let name = "conv_in.weight";
    assert_ne!(
        cc.weights[name].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        ca.weights[name].flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

/// Training gives the same bits on any number of threads (so a run resumed on another machine
/// or with another `--threads` continues exactly): 3 steps of a U-Net wide enough for the
/// direct convolution kernels (16 and 32 channels) on 1 and on 3 threads.
#[test]
fn training_does_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = || config_of(UNetConfig::with_attention_at(16, 3, &[16, 32], 1, &[8]).unwrap(), 3);
    let runs: Vec<PathBuf> = [1, 3]
        .iter()
        .map(|&threads| {
            let run = dir.path().join(format!("threads-{threads}"));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| train_to(config(), &run, false, None));
            run
        })
        .collect();
    assert_same_checkpoint(&runs[0], &runs[1]);
}

/// A forecasting run on windows of a CSV series resumes exactly too, with either 1-D network
/// (and its checkpointed model records the series' window and columns).
#[test]
fn series_run_resumes_exactly() {
    let unet = NetworkConfig::UNet1D(UNet1DConfig { dropout: 0.1, ..UNet1DConfig::tiny(16, 1) });
    let diffwave = NetworkConfig::DiffWave(DiffWaveNet { sample_size: 16, net: DiffWaveConfig::tiny() });
    for net in [unet, diffwave] {
        series_resumes_exactly(net);
    }
}

fn series_resumes_exactly(net: NetworkConfig) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    let rows: String = (0..60).map(|t| format!("{},{}\n", t, (t as f64 * 0.7).sin() * 3.0 + t as f64 * 0.1)).collect();
    std::fs::write(&csv, format!("t,y\n{rows}")).unwrap();
    let config = |steps| {
        let mut cfg = TrainConfig::for_series(csv.clone(), vec![], 12, 4, net.clone());
        cfg.steps = steps;
        cfg.batch_size = 4;
        cfg.checkpoint_every = 1000;
        cfg.sample_every = 0;
        cfg.sample_count = 2;
        cfg.sample_steps = 2;
        cfg
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train_to(config(3), &a, false, None);
    train_to(config(3), &a, true, Some(6));
    train_to(config(6), &b, false, None);
    assert_same_checkpoint(&a, &b);
    assert_eq!(log_without_timings(&a), log_without_timings(&b));
    let ck = load_checkpoint(&a, &Device::Cpu).unwrap();
    assert_eq!(ck.config.model.network, net);
    let w = ck.config.model.series.unwrap();
    assert_eq!((w.context, w.horizon, w.columns), (12, 4, vec!["t".to_string(), "y".to_string()]));
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
    train_to(tiny_config(2), dir.path(), false, None);
    let state = dir.path().join(CHECKPOINT_DIR).join("state.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("loss_smoother").unwrap();
    std::fs::write(&state, json.to_string()).unwrap();
    train_to(tiny_config(2), dir.path(), true, Some(3));
    let log = log_without_timings(dir.path());
    assert_eq!(log.len(), 3);
    let (raw, smoothed) = (log[2]["loss"].as_f64().unwrap(), log[2]["loss_smoothed"].as_f64().unwrap());
    assert!((raw - smoothed).abs() < 1e-12 * raw, "smoothing did not restart: {raw} vs {smoothed}");
}

#[test]
fn loss_falls_on_small_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(150);
    cfg.model.network.unet2d_mut().expect("an image model").dropout = 0.0;
    cfg.batch_size = 16;
    cfg.optimizer.lr = 2e-3;
    train_to(cfg, dir.path(), false, None);
    let log = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (early, late) = (mean(&losses[..20]), mean(&losses[130..]));
    assert!(late < 0.7 * early, "loss did not fall: first 20 steps {early:.4}, last 20 {late:.4}");
}

#[test]
fn a_cancelling_observer_stops_with_a_checkpoint_that_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // checkpoint_every is 1000: the checkpoint at step 2 is the one the cancel writes.
    let o = train_with(tiny_config(5), &opts(&a, false, None), &mut CancelAt(2)).unwrap();
    assert!(o.interrupted);
    assert_eq!((o.step, o.steps_this_session), (2, 2));
    assert_eq!(load_checkpoint(&a, &Device::Cpu).unwrap().state.step, 2);
    let o = train_to(tiny_config(5), &a, true, None);
    assert!(!o.interrupted);
    assert_eq!((o.step, o.steps_this_session), (5, 3));
    train_to(tiny_config(5), &b, false, None);
    assert_same_checkpoint(&a, &b);
    assert_eq!(log_without_timings(&a), log_without_timings(&b));
}

#[test]
fn resume_without_steps_keeps_the_runs_total() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    train_with(tiny_config(4), &opts(run, false, None), &mut CancelAt(1)).unwrap();
    // The configuration handed in says 2,500 steps (the default); the run's own 4 win.
    let o = train_to(tiny_config(2500), run, true, None);
    assert_eq!((o.step, o.steps_this_session), (4, 3));
    assert_eq!(load_checkpoint(run, &Device::Cpu).unwrap().config.steps, 4);
    // A finished run resumed without a total stays finished.
    let o = train_to(tiny_config(2500), run, true, None);
    assert_eq!((o.step, o.steps_this_session), (4, 0));
    // An explicit total extends it, and is stored.
    let o = train_to(tiny_config(2500), run, true, Some(6));
    assert_eq!((o.step, o.steps_this_session), (6, 2));
    assert_eq!(load_checkpoint(run, &Device::Cpu).unwrap().config.steps, 6);
}

#[test]
fn steps_logged_after_the_last_checkpoint_are_not_logged_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // A session that checkpoints at step 2, logs steps 3 and 4 and dies (no final checkpoint),
    // driven step by step as a front end without the driver would.
    let mut trainer = Trainer::new(tiny_config(6), &opts(&a, false, None)).unwrap();
    let mut dashboard = Dashboard::default();
    dashboard.on_start(&trainer).unwrap();
    for _ in 0..4 {
        let stats = trainer.step().unwrap();
        assert!(dashboard.on_step(&trainer, &stats).unwrap().is_continue());
        if stats.step == 2 {
            let saved = trainer.save_checkpoint().unwrap();
            assert_eq!(saved.step, 2);
            dashboard.on_checkpoint(&trainer, &saved).unwrap();
        }
    }
    drop((trainer, dashboard));
    assert_eq!(log_steps(&a), [1, 2, 3, 4]);
    assert_eq!(tensorboard_steps(&a), [1, 2, 3, 4]);
    // Half a line, as a kill during a write could leave.
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(a.join(LOG_FILE)).unwrap().write_all(b"{\"step\":5,\"lo").unwrap();

    train_to(tiny_config(6), &a, true, None);
    train_to(tiny_config(6), &b, false, None);
    assert_eq!(log_steps(&a), [1, 2, 3, 4, 5, 6]);
    assert_eq!(tensorboard_steps(&a), [1, 2, 3, 4, 5, 6]);
    assert_eq!(log_without_timings(&a), log_without_timings(&b));
    assert_same_checkpoint(&a, &b);
}

#[test]
fn random_flips_are_off_by_default_and_a_resumed_run_keeps_its_setting() {
    let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    assert!(!TrainConfig::for_data(DataSource::Folder(fixture()), unet).random_flip);
    assert!(!TrainConfig::emoji_default().random_flip);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train_with(tiny_config(3), &opts(&a, false, None), &mut CancelAt(1)).unwrap();
    let unflipped = TrainConfig { random_flip: false, ..tiny_config(3) };
    train_to(unflipped.clone(), &a, true, None);
    assert!(load_checkpoint(&a, &Device::Cpu).unwrap().config.random_flip);
    // The flag is used: the same run without flips trains other weights.
    train_to(unflipped, &b, false, None);
    let weights = |run: &Path| load_checkpoint(run, &Device::Cpu).unwrap().weights["conv_in.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_ne!(weights(&a), weights(&b));
}

#[test]
fn a_run_can_move_to_a_worker_thread() {
    fn send<T: Send>() {}
    send::<Trainer>();
    send::<Dashboard>();
    send::<stipple_train::ProgressBars>();
    send::<Box<dyn TrainObserver>>();
}

/// The step of each line of the log of `run`.
fn log_steps(run: &Path) -> Vec<u64> {
    log_without_timings(run).iter().map(|l| l["step"].as_u64().unwrap()).collect()
}

/// The steps of the `loss/raw` scalars in all TensorBoard event files of `run`, sorted.
fn tensorboard_steps(run: &Path) -> Vec<i64> {
    let mut steps = vec![];
    for file in std::fs::read_dir(run.join(stipple_train::TENSORBOARD_DIR)).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        for record in support::tfevents::records(&bytes) {
            let event = support::tfevents::event(&record);
            if event.values.iter().any(|(tag, _)| tag == "loss/raw") {
                steps.push(event.step);
            }
        }
    }
    steps.sort();
    steps
}
