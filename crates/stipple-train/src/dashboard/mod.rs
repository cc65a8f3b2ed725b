//! What a training run shows while it runs: one JSON line per step in `train.jsonl`,
//! TensorBoard event files in `tensorboard/` (scalars every step, sample grids as images)
//! and, at every checkpoint, `loss.png` beside `samples/latest.png`.

mod crc32c;
mod events;
mod plot;
mod protobuf;
mod smooth;

use std::fs::File;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::DynamicImage;
use stipple_pipeline::write_png_with_text;

pub use plot::LOSS_PLOT_SIZE;
pub use smooth::{LossSmoother, LOSS_SMOOTHING};

use crate::TrainError;
use events::EventWriter;
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

/// What one optimisation step reports.
pub struct StepStats {
    /// Steps completed (1-based).
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub ema_decay: f64,
    /// Seconds of the optimisation step alone.
    pub seconds: f64,
}

/// The log writers of one training session.
pub struct Dashboard {
    run: PathBuf,
    log: File,
    events: EventWriter,
    smoother: LossSmoother,
    last_step_end: Instant,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

impl Dashboard {
    /// Opens (appends to) the log of `run` and starts a new event file; `smoother` is the
    /// smoothed-loss state of the checkpoint resumed from (default for a new run).
    pub fn open(run: &Path, smoother: LossSmoother) -> Result<Self, TrainError> {
        let path = run.join(LOG_FILE);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        let dir = run.join(TENSORBOARD_DIR);
        let events = EventWriter::create(&dir).map_err(io_err(&dir))?;
        Ok(Dashboard { run: run.to_path_buf(), log, events, smoother, last_step_end: Instant::now() })
    }

    /// The smoothed-loss state to store in a checkpoint.
    pub fn smoother(&self) -> &LossSmoother {
        &self.smoother
    }

    /// Logs one step: a JSON line with the raw and smoothed loss (EMA with decay
    /// [`LOSS_SMOOTHING`], debiased), learning rate, gradient norm, EMA decay, seconds of the
    /// step and steps per second (wall clock since the previous step ended, so sampling and
    /// checkpoints show as dips), and the same scalars as TensorBoard events.
    /// Returns the smoothed loss.
    pub fn log_step(&mut self, s: &StepStats) -> Result<f64, TrainError> {
        let smoothed = self.smoother.update(s.loss);
        let now = Instant::now();
        let steps_per_sec = 1.0 / now.duration_since(self.last_step_end).as_secs_f64().max(1e-9);
        self.last_step_end = now;
        let line = format!(
            "{{\"step\":{},\"loss\":{},\"loss_smoothed\":{smoothed},\"lr\":{},\"grad_norm\":{},\"ema_decay\":{},\"seconds\":{},\"steps_per_sec\":{steps_per_sec}}}\n",
            s.step, s.loss, s.lr, s.grad_norm, s.ema_decay, s.seconds
        );
        let log_path = self.run.join(LOG_FILE);
        // One write per line, so a reader never sees half a line.
        self.log.write_all(line.as_bytes()).map_err(io_err(&log_path))?;
        let scalars = [
            ("loss/raw", s.loss),
            ("loss/smoothed", smoothed),
            ("train/lr", s.lr),
            ("train/grad_norm", s.grad_norm),
            ("train/ema_decay", s.ema_decay),
            ("train/steps_per_sec", steps_per_sec),
        ];
        self.events.scalars(s.step, &scalars).map_err(io_err(self.events.path()))?;
        Ok(smoothed)
    }

    /// Adds a sample grid to the TensorBoard images (tag [`SAMPLES_TAG`]).
    pub fn log_samples(&mut self, step: usize, grid: &DynamicImage) -> Result<(), TrainError> {
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
    pub fn plot_loss(&self) -> Result<PathBuf, TrainError> {
        let log_path = self.run.join(LOG_FILE);
        let text = std::fs::read_to_string(&log_path).map_err(io_err(&log_path))?;
        let path = self.run.join(LOSS_PLOT);
        let img = render_loss_plot(&losses_from_log(&text)).map_err(|reason| TrainError::Io { path: path.clone(), reason })?;
        write_png_with_text(&DynamicImage::ImageRgb8(img), &path, &[])?;
        Ok(path)
    }
}
