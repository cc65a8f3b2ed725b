//! Progress bars of the long operations of training (hidden when progress is off).

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use stipple_sample::{Observer, StepInfo};

fn styled(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

/// The bar of the optimisation steps, starting at `start` of `total`.
pub fn steps_bar(show: bool, start: usize, total: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = styled(total as u64, "{bar:30} {pos}/{len} steps · {per_sec} · {msg} · {elapsed} elapsed, {eta} left")
        .with_position(start as u64);
    bar.reset_eta();
    bar
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
