//! The denoising trajectory: the noisy latent x_t entering each recorded step and the
//! model's prediction x̂₀ = D(x_t; σ) made from it, for every image of a request.

use std::ops::ControlFlow;

use candle_core::Tensor;
use serde::Serialize;
use stipple_nn::TensorLatent;
use stipple_sample::{Observer, StepInfo};

use crate::PipelineError;

/// One recorded step for all images.
pub struct TrajectoryFrame {
    /// 0-based step index and the number of steps.
    pub step: usize,
    pub steps: usize,
    /// The noise level of `x`.
    pub sigma: f64,
    /// The latent entering the step, `(N, C, H, W)` in variance-exploding coordinates.
    pub x: Tensor,
    /// D(x; σ), `(N, C, H, W)`.
    pub denoised: Tensor,
}

/// Records every `every`-th step (and always the last) across the batches of a request.
pub struct TrajectoryRecorder {
    every: usize,
    /// Frames of the finished batches, then of the current one.
    batches: Vec<Vec<TrajectoryFrame>>,
    last_x: Option<Tensor>,
}

impl TrajectoryRecorder {
    /// Records steps 0, K, 2K, … and the last; `every` 0 is taken as 1.
    pub fn new(every: usize) -> Self {
        Self { every: every.max(1), batches: Vec::new(), last_x: None }
    }

    /// The frames, with the batches joined along the image axis.
    pub fn finish(self) -> Result<Vec<TrajectoryFrame>, PipelineError> {
        let Some(first) = self.batches.first() else { return Ok(vec![]) };
        let mut frames = Vec::with_capacity(first.len());
        for (k, f) in first.iter().enumerate() {
            let xs: Vec<&Tensor> = self.batches.iter().map(|b| &b[k].x).collect();
            let ds: Vec<&Tensor> = self.batches.iter().map(|b| &b[k].denoised).collect();
            frames.push(TrajectoryFrame {
                step: f.step,
                steps: f.steps,
                sigma: f.sigma,
                x: Tensor::cat(&xs, 0)?,
                denoised: Tensor::cat(&ds, 0)?,
            });
        }
        Ok(frames)
    }
}

impl Observer<TensorLatent> for TrajectoryRecorder {
    fn on_start(&mut self, x: &TensorLatent, _sigma: f64) {
        self.batches.push(Vec::new());
        self.last_x = Some(x.0.clone());
    }

    fn on_step(&mut self, info: &StepInfo<'_, TensorLatent>) -> ControlFlow<()> {
        let x_in = self.last_x.replace(info.x.0.clone()).expect("on_start precedes on_step");
        if info.step.is_multiple_of(self.every) || info.step + 1 == info.steps {
            let batch = self.batches.last_mut().expect("on_start precedes on_step");
            batch.push(TrajectoryFrame {
                step: info.step,
                steps: info.steps,
                sigma: info.sigma,
                x: x_in,
                denoised: info.denoised.0.clone(),
            });
        }
        ControlFlow::Continue(())
    }
}

/// Per-step statistics for people who plot trajectories themselves.
#[derive(Debug, Serialize)]
pub struct StepStats {
    pub step: usize,
    pub sigma: f64,
    /// Mean and standard deviation of x_t over all images and pixels.
    pub x_mean: f64,
    pub x_std: f64,
    /// Mean and standard deviation of x̂₀.
    pub denoised_mean: f64,
    pub denoised_std: f64,
    /// Root-mean-square distance of x̂₀ (clamped to [−1, 1] as the images are) from the
    /// final images.
    pub denoised_rms_to_final: f64,
}

fn mean_std(t: &Tensor) -> Result<(f64, f64), PipelineError> {
    let v = t.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Ok((mean, var.sqrt()))
}

/// Statistics of every frame against the final images `(N, C, H, W)`.
pub fn trajectory_stats(frames: &[TrajectoryFrame], final_images: &Tensor) -> Result<Vec<StepStats>, PipelineError> {
    frames
        .iter()
        .map(|f| {
            let (x_mean, x_std) = mean_std(&f.x)?;
            let (denoised_mean, denoised_std) = mean_std(&f.denoised)?;
            let rms = (f.denoised.clamp(-1f32, 1f32)? - final_images)?.sqr()?.mean_all()?.to_dtype(candle_core::DType::F64)?;
            Ok(StepStats {
                step: f.step,
                sigma: f.sigma,
                x_mean,
                x_std,
                denoised_mean,
                denoised_std,
                denoised_rms_to_final: rms.to_scalar::<f64>()?.sqrt(),
            })
        })
        .collect()
}
