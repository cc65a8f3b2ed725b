//! Progress bars of training: the steps (an observer of the run), and the long operations
//! inside the trainer (hidden when its progress option is off).

use std::ops::ControlFlow;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use stipple_sample::{Observer, StepInfo};

use crate::trainer::{SampleGrid, StepStats, Trainer};
use crate::{TrainError, TrainObserver, TrainOutcome};

fn styled(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

/// The bar of the optimisation steps, from the step resumed at to the run's total, with the
/// smoothed loss as its message. It steps aside while a sample grid draws its own bar.
#[derive(Default)]
pub struct ProgressBars {
    /// Holds the bar while it is shown; removing the bar from it clears its line.
    shown: MultiProgress,
    bar: Option<ProgressBar>,
}

impl ProgressBars {
    fn bar(&mut self, trainer: &Trainer) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let template = "{bar:30} {pos}/{len} steps · {per_sec} · {msg} · {elapsed} elapsed, {eta} left";
            let bar = styled(trainer.total_steps() as u64, template).with_position(trainer.steps_done() as u64);
            bar.reset_eta();
            self.shown.add(bar)
        })
    }
}

impl TrainObserver for ProgressBars {
    fn on_start(&mut self, trainer: &Trainer) -> Result<(), TrainError> {
        self.bar(trainer);
        Ok(())
    }

    fn on_step(&mut self, trainer: &Trainer, stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        let bar = self.bar(trainer);
        bar.set_message(format!("loss {:.4} (smoothed)", stats.loss_smoothed));
        bar.inc(1);
        Ok(ControlFlow::Continue(()))
    }

    fn on_sample_grid_start(&mut self, trainer: &Trainer) {
        let bar = self.bar(trainer).clone();
        self.shown.remove(&bar);
    }

    fn on_sample_grid(&mut self, trainer: &Trainer, _grid: &SampleGrid) -> Result<(), TrainError> {
        let bar = self.bar(trainer).clone();
        self.shown.add(bar).tick();
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
