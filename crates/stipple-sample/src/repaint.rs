//! RePaint resampling (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion
//! Probabilistic Models", Algorithm 1 with jump length 1): every step σᵢ → σᵢ₊₁ is taken `r`
//! times; between takes the latent goes back to σᵢ by the forward process in σ
//! coordinates, `x ← x + √(σᵢ² − σᵢ₊₁²)·ε` with fresh ε. Used with an inpainting denoiser,
//! this lets the painted region agree with the known one instead of only being pasted next
//! to it.
//!
//! Each take is a one-step run of the chosen sampler, so a multistep sampler (DPM++ 2M,
//! UniPC, LMS, …) starts its history afresh at every step and acts at first order here.

use std::ops::ControlFlow;

use crate::{sample, Denoiser, Latent, Noise, Observer, SampleError, SamplerKind, SamplerOptions, Sigmas, StepInfo};

/// [`sample`] with each step taken `resample` times (1 = plain sampling). The observer sees
/// the start and the last take of every step, numbered as in a plain run.
#[allow(clippy::too_many_arguments)]
pub fn sample_resampled<L: Latent>(
    kind: SamplerKind,
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    options: &SamplerOptions,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
    resample: usize,
) -> Result<L, SampleError> {
    if resample <= 1 {
        return sample(kind, model, x, sigmas, options, noise, observer);
    }
    let s = sigmas.as_slice();
    let steps = s.len() - 1;
    observer.on_start(&x, s[0]);
    let mut x = x;
    for i in 0..steps {
        let segment = Sigmas::new(vec![s[i], s[i + 1]]).expect("a slice of a valid schedule");
        for take in 0..resample {
            let mut last = Renumbered { inner: &mut *observer, step: i, steps, report: take + 1 == resample };
            x = sample(kind, model, x, &segment, options, noise, &mut last).map_err(|e| match e {
                SampleError::Cancelled { .. } => SampleError::Cancelled { step: i },
                other => other,
            })?;
            if take + 1 < resample {
                let eps = noise.noise_like(&x).map_err(SampleError::Noise)?;
                let up = (s[i] * s[i] - s[i + 1] * s[i + 1]).sqrt();
                x = L::lincomb(&[(1.0, &x), (up, &eps)]).map_err(SampleError::Latent)?;
            }
        }
    }
    Ok(x)
}

/// Forwards the one step of a one-step run as step `step` of `steps`, when `report` is set.
struct Renumbered<'a, O> {
    inner: &'a mut O,
    step: usize,
    steps: usize,
    report: bool,
}

impl<L, O: Observer<L>> Observer<L> for Renumbered<'_, O> {
    fn on_step(&mut self, info: &StepInfo<'_, L>) -> ControlFlow<()> {
        if !self.report {
            return ControlFlow::Continue(());
        }
        self.inner.on_step(&StepInfo { step: self.step, steps: self.steps, ..*info })
    }
}
