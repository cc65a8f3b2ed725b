//! Progress bars of training: the steps (an observer of the run), and the long operations
//! inside the trainer (hidden when its progress option is off).

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use stipple_sample::{Observer, StepInfo};

use crate::trainer::{SampleGrid, StepStats, Trainer};
use crate::{TrainError, TrainObserver, TrainOutcome};

fn styled(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

/// The bar of the optimisation steps, at `start` of `total`, with the smoothed loss as its
/// message. It steps aside (cleared, its position and time kept) while a sample grid draws
/// its own bar.
#[derive(Default)]
pub struct ProgressBars {
    bar: Option<ProgressBar>,
}

impl ProgressBars {
    fn show(&mut self, trainer: &Trainer, elapsed: std::time::Duration) {
        let template = "{bar:30} {pos}/{len} steps · {per_sec} · {msg} · {elapsed} elapsed, {eta} left";
        let bar = styled(trainer.total_steps() as u64, template)
            .with_position(trainer.steps_done() as u64)
            .with_elapsed(elapsed);
        bar.reset_eta();
        self.bar = Some(bar);
    }
}

impl TrainObserver for ProgressBars {
    fn on_start(&mut self, trainer: &Trainer) -> Result<(), TrainError> {
        self.show(trainer, std::time::Duration::ZERO);
        Ok(())
    }

    fn on_step(&mut self, trainer: &Trainer, stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        if self.bar.is_none() {
            self.show(trainer, std::time::Duration::ZERO);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {:.4} (smoothed)", stats.loss_smoothed));
            bar.set_position(stats.step as u64);
        }
        Ok(ControlFlow::Continue(()))
    }

    fn on_sample_grid_start(&mut self, _trainer: &Trainer) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn on_sample_grid(&mut self, trainer: &Trainer, _grid: &SampleGrid) -> Result<(), TrainError> {
        let elapsed = self.bar.as_ref().map(ProgressBar::elapsed).unwrap_or_default();
        let message = self.bar.as_ref().map(ProgressBar::message).unwrap_or_default();
        self.show(trainer, elapsed);
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
        Ok(())
    }

    fn on_end(&mut self, _trainer: &Trainer, _outcome: &TrainOutcome) -> Result<(), TrainError> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        Ok(())
    }
}

/// A bar over `files` image files being decoded.
pub fn files_bar(show: bool, files: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    styled(files as u64, "loading images {bar:30} {pos}/{len} · {per_sec} · {eta} left")
}

/// A bar over the sampler steps of a sample grid.
pub fn sampling_bar(show: bool, steps: usize) -> SamplingBar {
    if !show {
        return SamplingBar(ProgressBar::hidden());
    }
    SamplingBar(styled(steps as u64, "sampling grid {bar:30} {pos}/{len} sampler steps · {eta} left"))
}

/// Advances its bar once per sampler step.
pub struct SamplingBar(pub ProgressBar);

impl<L> Observer<L> for SamplingBar {
    fn on_step(&mut self, _info: &StepInfo<'_, L>) -> ControlFlow<()> {
        self.0.inc(1);
        ControlFlow::Continue(())
    }
}
