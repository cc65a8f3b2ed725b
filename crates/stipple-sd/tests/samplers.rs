//! Every Stipple sampler drives the Stable Diffusion denoiser unchanged.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use stipple_nn::TensorLatent;
use stipple_sample::{euler, samplers::Churn, sample, BoxError, Noise, SamplerKind, SamplerOptions, SigmaSchedule};
use stipple_sd::SdPipeline;

/// Deterministic test noise: a fixed pseudo-random pattern, a new one at every draw.
struct PatternNoise(f64);

impl Noise<TensorLatent> for PatternNoise {
    fn noise_like(&mut self, x: &TensorLatent) -> Result<TensorLatent, BoxError> {
        self.0 += 1.0;
        let n = x.0.elem_count();
        let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.618 + self.0 * 0.37).fract() * 3.4 - 1.7) as f32).collect();
        Ok(TensorLatent(Tensor::from_vec(v, x.0.shape(), x.0.device())?))
    }
}

#[test]
fn all_samplers_run_on_the_sd_denoiser() {
    let sd = SdPipeline::load(&folder(), &Device::Cpu).unwrap();
    let (cond, uncond) = sd.encode_weighted_pair("a lighthouse", "blurry", 1).unwrap();
    let sigmas = SigmaSchedule::Karras.build(&sd.schedule(), 3, sd.scheduler.steps_offset).unwrap();
    let g = goldens();
    let x = (&g["pipeline.latents"] * sigmas.first()).unwrap();
    for kind in SamplerKind::ALL {
        let mut d = sd.denoiser_with(cond.clone(), Some(uncond.clone()), 5.0);
        let out = sample(kind, &mut d, TensorLatent(x.clone()), &sigmas, &SamplerOptions::default(), &mut PatternNoise(0.0), &mut ())
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"))
            .0;
        assert_eq!(out.dims(), x.dims());
        let finite = out.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite());
        assert!(finite, "{kind:?} gave non-finite latents");
    }
}

/// DDIM with η = 0 is Euler over the same σ (DESIGN.md §2), on the real network too.
#[test]
fn ddim_eta_zero_is_euler() {
    let sd = SdPipeline::load(&folder(), &Device::Cpu).unwrap();
    let cond = sd.encode_prompt(&["a lighthouse"], 1).unwrap();
    let uncond = sd.encode_prompt(&[""], 1).unwrap();
    let sigmas = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    let x = (&goldens()["pipeline.latents"] * sigmas.first()).unwrap();
    let mut d = sd.denoiser(cond, Some(uncond), 7.5);
    let a = euler(&mut d, TensorLatent(x.clone()), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    let options = SamplerOptions { eta: Some(0.0), ..Default::default() };
    let b = sample(SamplerKind::Ddim, &mut d, TensorLatent(x), &sigmas, &options, &mut PatternNoise(0.0), &mut ()).unwrap().0;
    assert!(max_abs_diff(&a, &b) < 1e-5 * max_abs(&a).max(1.0), "{}", max_abs_diff(&a, &b));
}
