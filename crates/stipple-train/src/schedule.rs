//! Observers that decide when a run writes checkpoints and sample grids, and one that stops
//! it on request (Ctrl-C, a cancel button).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::trainer::{StepStats, Trainer};
use crate::{TrainError, TrainObserver};

/// A checkpoint every `checkpoint_every` steps of the run's configuration (the last step
/// always writes one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Checkpoints;

impl TrainObserver for Checkpoints {
    fn wants_checkpoint(&self, trainer: &Trainer) -> bool {
        trainer.steps_done().is_multiple_of(trainer.config().checkpoint_every)
    }
}

/// A sample grid every `sample_every` steps of the run's configuration (0: only at the end)
/// and at the last step.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleGrids;

impl TrainObserver for SampleGrids {
    fn wants_sample_grid(&self, trainer: &Trainer) -> bool {
        let (done, every) = (trainer.steps_done(), trainer.config().sample_every);
        done == trainer.total_steps() || (every > 0 && done.is_multiple_of(every))
    }
}

/// Stops the run after the current step once its flag is set (from a signal handler or
/// another thread).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(pub Arc<AtomicBool>);

impl TrainObserver for StopFlag {
    fn on_step(&mut self, _trainer: &Trainer, _stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        Ok(if self.0.load(Ordering::SeqCst) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    }
}
