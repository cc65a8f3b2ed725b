//! The Stable Diffusion U-Net as Stipple's denoiser `D(x; σ)`, with classifier-free guidance.
//!
//! The U-Net is a discrete VP network: it sees `c_in(σ)·x` and the (fractional) training
//! timestep whose σ matches by log-σ interpolation (k-diffusion `DiscreteSchedule.sigma_to_t`),
//! and its ε or v output becomes `D` through [`stipple_sample::Preconditioned`] (k-diffusion
//! `DiscreteEpsDDPMDenoiser` / `DiscreteVDDPMDenoiser`). Guidance combines the two branches'
//! network outputs as `u + s·(c − u)` (Ho & Salimans 2022, eq. 6, diffusers'
//! `noise_pred_uncond + guidance_scale · (noise_pred_text − noise_pred_uncond)`), which for a
//! fixed σ equals combining the denoised estimates since `D` is affine in the output. Both
//! branches run as one batched call.

use candle_core::{DType, Tensor};
use stipple_math::{DiscreteSchedule, Prediction};
use stipple_nn::TensorLatent;
use stipple_sample::{BoxError, Denoiser, Network, Preconditioned};

use crate::UNet2DConditionModel;

/// The U-Net with its text conditioning: the raw network `F(c_in·x, t)` of the denoiser.
pub struct GuidedUNet<'a> {
    unet: &'a UNet2DConditionModel,
    /// `(1 or B, tokens, dim)` states of the prompt.
    cond: Tensor,
    /// `(1 or B, tokens, dim)` states of the negative prompt; `None` = no guidance.
    uncond: Option<Tensor>,
    scale: f64,
}

/// `states` repeated to `b` rows when it has one.
fn batch(states: &Tensor, b: usize) -> candle_core::Result<Tensor> {
    match states.dim(0)? {
        n if n == b => Ok(states.clone()),
        1 => states.repeat((b, 1, 1)),
        n => candle_core::bail!("text states have batch {n}, the latents {b} (give 1 or {b} prompts)"),
    }
}

impl Network<TensorLatent> for GuidedUNet<'_> {
    /// # Shapes
    /// `x_in`: `(B, C, H, W)`; one U-Net call of batch 2B when guiding.
    fn predict(&mut self, x_in: &TensorLatent, c_noise: f64) -> Result<TensorLatent, BoxError> {
        let x = &x_in.0;
        let b = x.dim(0)?;
        let cond = batch(&self.cond, b)?;
        let call = |x: &Tensor, ctx: &Tensor| -> candle_core::Result<Tensor> {
            let t = Tensor::full(c_noise as f32, x.dim(0)?, x.device())?.to_dtype(DType::F32)?;
            self.unet.forward(x, &t, ctx)
        };
        let out = match &self.uncond {
            Some(uncond) if self.scale != 1.0 => {
                let both = call(&Tensor::cat(&[x, x], 0)?, &Tensor::cat(&[&cond, &batch(uncond, b)?], 0)?)?;
                let (c, u) = (both.narrow(0, 0, b)?, both.narrow(0, b, b)?);
                (&u + ((&c - &u)? * self.scale)?)?
            }
            _ => call(x, &cond)?,
        };
        Ok(TensorLatent(out))
    }
}

/// `D(x; σ)` of a Stable Diffusion U-Net (see the module documentation).
pub struct SdDenoiser<'a> {
    inner: Preconditioned<GuidedUNet<'a>, Box<dyn FnMut(f64) -> f64 + 'a>>,
}

impl<'a> SdDenoiser<'a> {
    /// `cond`/`uncond`: text states of the prompt and of the negative prompt (the empty
    /// prompt for plain guidance; `None` for none); `scale`: the guidance scale s.
    pub fn new(
        unet: &'a UNet2DConditionModel,
        schedule: DiscreteSchedule,
        prediction: Prediction,
        cond: Tensor,
        uncond: Option<Tensor>,
        scale: f64,
    ) -> Self {
        let net = GuidedUNet { unet, cond, uncond, scale };
        let c_noise: Box<dyn FnMut(f64) -> f64 + 'a> = Box::new(move |sigma| schedule.timestep_for(sigma));
        Self { inner: Preconditioned::new(net, prediction, c_noise) }
    }
}

impl Denoiser<TensorLatent> for SdDenoiser<'_> {
    fn denoise(&mut self, x: &TensorLatent, sigma: f64) -> Result<TensorLatent, BoxError> {
        self.inner.denoise(x, sigma)
    }
}
