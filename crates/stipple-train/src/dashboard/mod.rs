//! What a training run shows while it runs: one JSON line per step in `train.jsonl`,
//! TensorBoard event files in `tensorboard/` (scalars every step, sample grids as images)
//! and, at every checkpoint, `loss.png` beside `samples/latest.png`.

mod crc32c;
mod events;
mod metrics;
mod plot;
mod protobuf;
mod smooth;

use std::fs::File;
use std::io::{Cursor, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::DynamicImage;
use stipple_pipeline::write_png_with_text;

pub use metrics::{MetricsLog, METRICS_FILE, METRICS_PLOT};
pub use plot::LOSS_PLOT_SIZE;
pub use smooth::{LossSmoother, LOSS_SMOOTHING};

use crate::trainer::{SampleGrid, SavedCheckpoint, StepStats, Trainer};
use crate::{TrainError, TrainObserver};
use events::{drop_events_after, EventWriter};
use plot::{losses_from_log, render_loss_plot};
use protobuf::EncodedImage;

/// The JSON-lines log inside a run folder.
pub const LOG_FILE: &str = "train.jsonl";
/// The folder of TensorBoard event files inside a run folder.
pub const TENSORBOARD_DIR: &str = "tensorboard";
/// The loss plot inside a run folder.
pub const LOSS_PLOT: &str = "loss.png";
/// TensorBoard tag of the sample grids.
pub const SAMPLES_TAG: &str = "samples";

/// The dashboard of a run, as an observer: per step a JSON line in [`LOG_FILE`] and the
/// same scalars as TensorBoard events, the sample grids as TensorBoard images, and the loss
/// plot at every checkpoint. Its files open at the start of the session; the lines and
/// events of steps after the checkpoint resumed from (left by an interrupted session, and
/// about to be replayed) are dropped then, each file rewritten under a temporary name.
#[derive(Default)]
pub struct Dashboard {
    files: Option<DashboardFiles>,
}

/// The open log writers of one training session.
struct DashboardFiles {
    run: PathBuf,
    log: File,
    events: EventWriter,
    last_step_end: Instant,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

impl Dashboard {
    /// The files of `trainer`'s run, opened on first use.
    fn files(&mut self, trainer: &Trainer) -> Result<&mut DashboardFiles, TrainError> {
        let files = match self.files.take() {
            Some(files) => files,
            None => DashboardFiles::open(trainer.run_dir(), trainer.checkpoint_step())?,
        };
        Ok(self.files.insert(files))
    }
}

impl TrainObserver for Dashboard {
    fn on_start(&mut self, trainer: &Trainer) -> Result<(), TrainError> {
        self.files(trainer).map(|_| ())
    }

    fn on_step(&mut self, trainer: &Trainer, stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        self.files(trainer)?.log_step(stats)?;
        Ok(ControlFlow::Continue(()))
    }

    fn on_checkpoint(&mut self, trainer: &Trainer, _saved: &SavedCheckpoint) -> Result<(), TrainError> {
        self.files(trainer)?.plot_loss().map(|_| ())
    }

    fn on_sample_grid(&mut self, trainer: &Trainer, grid: &SampleGrid) -> Result<(), TrainError> {
        self.files(trainer)?.log_samples(grid.step, &grid.image)
    }
}

impl DashboardFiles {
    /// Opens (appends to) the log of `run` and starts a new event file, after dropping the
    /// lines and events of steps after `step`.
    fn open(run: &Path, step: usize) -> Result<Self, TrainError> {
        let path = run.join(LOG_FILE);
        drop_lines_after(&path, step)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        let dir = run.join(TENSORBOARD_DIR);
        drop_events_after(&dir, step).map_err(io_err(&dir))?;
        let events = EventWriter::create(&dir).map_err(io_err(&dir))?;
        Ok(DashboardFiles { run: run.to_path_buf(), log, events, last_step_end: Instant::now() })
    }

    /// Logs one step: a JSON line with the raw and smoothed loss, learning rate, gradient
    /// norm, EMA decay, seconds of the step and steps per second (wall clock since the
    /// previous step ended, so sampling and checkpoints show as dips), and the same scalars
    /// as TensorBoard events.
    fn log_step(&mut self, s: &StepStats) -> Result<(), TrainError> {
        let now = Instant::now();
        let steps_per_sec = 1.0 / now.duration_since(self.last_step_end).as_secs_f64().max(1e-9);
        self.last_step_end = now;
        let line = format!(
            "{{\"step\":{},\"loss\":{},\"loss_smoothed\":{},\"lr\":{},\"grad_norm\":{},\"ema_decay\":{},\"seconds\":{},\"steps_per_sec\":{steps_per_sec}}}\n",
            s.step, s.loss, s.loss_smoothed, s.lr, s.grad_norm, s.ema_decay, s.seconds
        );
        let log_path = self.run.join(LOG_FILE);
        // One write per line, so a reader never sees half a line.
        self.log.write_all(line.as_bytes()).map_err(io_err(&log_path))?;
        let scalars = [
            ("loss/raw", s.loss),
            ("loss/smoothed", s.loss_smoothed),
            ("train/lr", s.lr),
            ("train/grad_norm", s.grad_norm),
            ("train/ema_decay", s.ema_decay),
            ("train/steps_per_sec", steps_per_sec),
        ];
        self.events.scalars(s.step, &scalars).map_err(io_err(self.events.path()))
    }

    /// Adds a sample grid to the TensorBoard images (tag [`SAMPLES_TAG`]).
    fn log_samples(&mut self, step: usize, grid: &DynamicImage) -> Result<(), TrainError> {
        let mut png = Vec::new();
        grid.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| TrainError::Io { path: self.events.path().to_path_buf(), reason: e.to_string() })?;
        let image = EncodedImage {
            width: grid.width(),
            height: grid.height(),
            channels: grid.color().channel_count() as u32,
            png: &png,
        };
        self.events.image(step, SAMPLES_TAG, &image).map_err(io_err(self.events.path()))
    }

    /// Renders the whole loss history of the run (from its log) as `loss.png`, written
    /// under a temporary name and renamed.
    fn plot_loss(&self) -> Result<PathBuf, TrainError> {
        let log_path = self.run.join(LOG_FILE);
        let text = std::fs::read_to_string(&log_path).map_err(io_err(&log_path))?;
        let path = self.run.join(LOSS_PLOT);
        let img = render_loss_plot(&losses_from_log(&text)).map_err(|reason| TrainError::Io { path: path.clone(), reason })?;
        write_png_with_text(&DynamicImage::ImageRgb8(img), &path, &[])?;
        Ok(path)
    }
}

/// Drops the lines of the JSON-lines log `path` whose step is after `step`, and any line
/// that does not parse (one cut short by an interruption); rewrites the log under a
/// temporary name and renames it, only when something is dropped.
fn drop_lines_after(path: &Path, step: usize) -> Result<(), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let line_step = |line: &str| serde_json::from_str::<serde_json::Value>(line).ok()?.get("step")?.as_u64();
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && line_step(l).is_some_and(|s| s <= step as u64))
        .collect();
    if kept.len() < text.len() {
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, kept).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))?;
    }
    Ok(())
}
