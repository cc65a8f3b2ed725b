//! Progress, previews and cancellation.

use std::ops::ControlFlow;

/// What an observer sees after each step.
#[derive(Debug)]
pub struct StepInfo<'a, L> {
    /// The step just completed, 0-based.
    pub step: usize,
    /// The total number of steps.
    pub steps: usize,
    /// The noise level the step started from.
    pub sigma: f64,
    /// The noise level the step moved to (0 after the last step).
    pub sigma_next: f64,
    /// The latent after the step (at `sigma_next`).
    pub x: &'a L,
    /// The denoised estimate D(x; sigma) made during the step (a preview).
    pub denoised: &'a L,
}

/// Called after every step; `ControlFlow::Break(())` cancels sampling.
pub trait Observer<L> {
    /// Called once by [`crate::sample`] before the first step, with the starting latent at
    /// σ₀ (the default does nothing).
    fn on_start(&mut self, _x: &L, _sigma: f64) {}
    fn on_step(&mut self, info: &StepInfo<'_, L>) -> ControlFlow<()>;
}

/// The silent observer: never cancels.
impl<L> Observer<L> for () {
    fn on_step(&mut self, _info: &StepInfo<'_, L>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<L, O: Observer<L> + ?Sized> Observer<L> for &mut O {
    fn on_start(&mut self, x: &L, sigma: f64) {
        (**self).on_start(x, sigma)
    }
    fn on_step(&mut self, info: &StepInfo<'_, L>) -> ControlFlow<()> {
        (**self).on_step(info)
    }
}

/// An observer that may be absent (e.g. a recorder a request did not ask for).
impl<L, O: Observer<L>> Observer<L> for Option<O> {
    fn on_start(&mut self, x: &L, sigma: f64) {
        if let Some(o) = self {
            o.on_start(x, sigma)
        }
    }
    fn on_step(&mut self, info: &StepInfo<'_, L>) -> ControlFlow<()> {
        match self {
            Some(o) => o.on_step(info),
            None => ControlFlow::Continue(()),
        }
    }
}

/// Two observers in turn (e.g. a progress bar and a trajectory recorder); either may cancel.
impl<L, A: Observer<L>, B: Observer<L>> Observer<L> for (A, B) {
    fn on_start(&mut self, x: &L, sigma: f64) {
        self.0.on_start(x, sigma);
        self.1.on_start(x, sigma);
    }
    fn on_step(&mut self, info: &StepInfo<'_, L>) -> ControlFlow<()> {
        self.0.on_step(info)?;
        self.1.on_step(info)
    }
}
