//! Driving a [`Trainer`] to its total with observers: whatever watches a run (the
//! dashboard, progress bars, a server's progress stream) or decides when to write a
//! checkpoint or a sample grid, or to stop, is a [`TrainObserver`] the front end picks.

use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::trainer::{model_file, SampleGrid, SavedCheckpoint, StepStats, Trainer, TrainOptions};
use crate::{TrainConfig, TrainError};

/// Watches a run and steers it; every method has a default that does nothing.
///
/// Per step, [`Trainer::run`] calls `on_step` on every observer, then writes a checkpoint
/// when any observer wants one, any `on_step` returned `Break`, or the run reached its
/// total (then `on_checkpoint`), then a sample grid when any observer wants one
/// (`on_sample_grid_start`, `on_sample_grid`). `Send`, so a run can go to a worker thread.
pub trait TrainObserver: Send {
    /// Before the first step of this session (the trainer is at its resumed step).
    fn on_start(&mut self, _trainer: &Trainer) -> Result<(), TrainError> {
        Ok(())
    }

    /// After each step. `Break` stops the run after this step, with a checkpoint, as an
    /// interruption.
    fn on_step(&mut self, _trainer: &Trainer, _stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        Ok(ControlFlow::Continue(()))
    }

    /// Whether a checkpoint should be written at the step just taken.
    fn wants_checkpoint(&self, _trainer: &Trainer) -> bool {
        false
    }

    /// Whether a sample grid should be drawn at the step just taken.
    fn wants_sample_grid(&self, _trainer: &Trainer) -> bool {
        false
    }

    /// After a checkpoint (and the model file) was written.
    fn on_checkpoint(&mut self, _trainer: &Trainer, _saved: &SavedCheckpoint) -> Result<(), TrainError> {
        Ok(())
    }

    /// Before a sample grid is sampled (which may draw its own progress bar).
    fn on_sample_grid_start(&mut self, _trainer: &Trainer) {}

    /// After a sample grid was written.
    fn on_sample_grid(&mut self, _trainer: &Trainer, _grid: &SampleGrid) -> Result<(), TrainError> {
        Ok(())
    }

    /// When the run reached its total or was stopped.
    fn on_end(&mut self, _trainer: &Trainer, _outcome: &TrainOutcome) -> Result<(), TrainError> {
        Ok(())
    }
}

/// What a run did.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Step reached (total, including earlier sessions).
    pub step: usize,
    /// Steps taken in this session.
    pub steps_this_session: usize,
    /// Seconds spent in optimisation steps this session (without sampling and saving).
    pub train_seconds: f64,
    /// Wall-clock seconds since the trainer was created (data loading included).
    pub wall_seconds: f64,
    /// Whether an observer's `Break` ended the run early.
    pub interrupted: bool,
    pub model_file: PathBuf,
    pub latest_grid: Option<PathBuf>,
    /// Images that could not be read and were skipped.
    pub skipped_images: Vec<(PathBuf, String)>,
    pub last_loss: Option<f64>,
}

/// Trains `config` (replaced by the checkpoint's when resuming) in `opts.run` to its total,
/// watched and steered by `observers`: [`Trainer::new`] then [`Trainer::run`].
pub fn train(config: TrainConfig, opts: &TrainOptions, observers: &mut [&mut dyn TrainObserver]) -> Result<TrainOutcome, TrainError> {
    Trainer::new(config, opts)?.run(observers)
}

impl Trainer {
    /// Steps to the run's total (see [`TrainObserver`] for the order of the calls). The last
    /// step, and a step after which an observer returned `Break`, always write a checkpoint.
    ///
    /// With several data-parallel ranks, the observers run on rank 0 only, and rank 0's
    /// decisions (stop, checkpoint, sample grid) are broadcast to the others, so every rank
    /// takes the same steps; rank 0 alone writes checkpoints and grids.
    pub fn run(&mut self, observers: &mut [&mut dyn TrainObserver]) -> Result<TrainOutcome, TrainError> {
        let root = self.rank() == 0;
        let observers: &mut [&mut dyn TrainObserver] = if root { observers } else { &mut [] };
        for o in observers.iter_mut() {
            o.on_start(self)?;
        }
        let first = self.steps_done();
        let (mut train_seconds, mut latest_grid, mut interrupted) = (0.0, None, false);
        while self.steps_done() < self.total_steps() {
            let stats = self.step()?;
            train_seconds += stats.seconds;
            let mut stop = false;
            for o in observers.iter_mut() {
                stop |= o.on_step(self, &stats)?.is_break();
            }
            let last = self.steps_done() == self.total_steps();
            let wants_checkpoint = stop || last || observers.iter().any(|o| o.wants_checkpoint(self));
            let wants_grid = observers.iter().any(|o| o.wants_sample_grid(self));
            let [stop, wants_checkpoint, wants_grid] = self.agree([stop, wants_checkpoint, wants_grid])?;
            if wants_checkpoint && root {
                let saved = self.save_checkpoint()?;
                for o in observers.iter_mut() {
                    o.on_checkpoint(self, &saved)?;
                }
            }
            if wants_grid && root {
                for o in observers.iter_mut() {
                    o.on_sample_grid_start(self);
                }
                let grid = self.sample_grid()?;
                for o in observers.iter_mut() {
                    o.on_sample_grid(self, &grid)?;
                }
                latest_grid = Some(grid.path);
            }
            if stop {
                interrupted = true;
                break;
            }
        }
        let outcome = TrainOutcome {
            step: self.steps_done(),
            steps_this_session: self.steps_done() - first,
            train_seconds,
            wall_seconds: self.seconds_since_start(),
            interrupted,
            model_file: model_file(self.run_dir()),
            latest_grid,
            skipped_images: self.skipped_images().to_vec(),
            last_loss: self.last_loss(),
        };
        for o in observers.iter_mut() {
            o.on_end(self, &outcome)?;
        }
        Ok(outcome)
    }
}
