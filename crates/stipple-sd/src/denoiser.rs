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

use candle_core::Tensor;
use stipple_math::{DiscreteSchedule, Prediction};
use stipple_nn::{CrossAttentionRecorder, TensorLatent};
use stipple_sample::{BoxError, Denoiser, Network, Preconditioned};

use crate::{default_time_ids, AddedCond, Conditioning, UNet2DConditionModel};

/// The U-Net with its text conditioning: the raw network `F(c_in·x, t)` of the denoiser.
pub struct GuidedUNet<'a> {
    unet: &'a UNet2DConditionModel,
    /// The prompt's conditioning, batch 1 or B.
    cond: Conditioning,
    /// The negative prompt's; `None` = no guidance.
    uncond: Option<Conditioning>,
    scale: f64,
    /// Image pixels per latent pixel (for SDXL's size conditioning).
    pixels_per_latent: usize,
    /// An inpainting U-Net's extra input channels `[mask, masked image latents]`, batch 1 or B.
    inpainting: Option<Tensor>,
    /// Per-token cross-attention maps of the prompt's branch (DAAM), when asked for.
    recorder: Option<&'a CrossAttentionRecorder>,
}

/// `t` repeated along its first axis to `b` rows when it has one.
fn batch(t: &Tensor, b: usize) -> candle_core::Result<Tensor> {
    match t.dim(0)? {
        n if n == b => Ok(t.clone()),
        1 => {
            let mut reps = vec![1; t.rank()];
            reps[0] = b;
            t.repeat(reps)
        }
        n => candle_core::bail!("text conditioning has batch {n}, the latents {b} (give 1 or {b} prompts)"),
    }
}

impl GuidedUNet<'_> {
    /// One U-Net call on `x` with the conditionings `parts` stacked along the batch.
    fn call(&self, x: &Tensor, t: f32, parts: &[&Conditioning]) -> candle_core::Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let per = b / parts.len();
        // diffusers `StableDiffusionInpaintPipeline`: the extra channels follow the scaled
        // latents (`torch.cat([latent_model_input, mask, masked_image_latents], dim=1)`).
        let x = match &self.inpainting {
            Some(extra) => {
                let e = batch(extra, per)?;
                Tensor::cat(&[x, &Tensor::cat(&vec![&e; parts.len()], 0)?], 1)?
            }
            None => x.clone(),
        };
        let x = &x;
        let ctx = parts.iter().map(|c| batch(&c.context, per)).collect::<candle_core::Result<Vec<_>>>()?;
        let timesteps = Tensor::full(t, b, x.device())?;
        // SDXL: every branch carries its pooled embedding (a branch without one leaves the
        // U-Net without its additional conditioning, which it reports).
        let pooled: Option<candle_core::Result<Vec<Tensor>>> =
            parts.iter().map(|c| c.pooled.as_ref().map(|p| batch(p, per))).collect();
        let added = match pooled.transpose()? {
            Some(p) => {
                let f = self.pixels_per_latent;
                let time_ids = default_time_ids(b, h * f, w * f, x.device()).map_err(candle_core::Error::wrap)?;
                Some(AddedCond { text_embeds: Tensor::cat(&p, 0)?, time_ids })
            }
            None => None,
        };
        self.unet.forward_recorded(x, &timesteps, &Tensor::cat(&ctx, 0)?, added.as_ref(), self.recorder)
    }
}

impl Network<TensorLatent> for GuidedUNet<'_> {
    /// # Shapes
    /// `x_in`: `(B, C, H, W)`; one U-Net call of batch 2B when guiding.
    fn predict(&mut self, x_in: &TensorLatent, c_noise: f64) -> Result<TensorLatent, BoxError> {
        let x = &x_in.0;
        let b = x.dim(0)?;
        let t = c_noise as f32;
        let out = match &self.uncond {
            Some(uncond) if self.scale != 1.0 => {
                let both = self.call(&Tensor::cat(&[x, x], 0)?, t, &[&self.cond, uncond])?;
                let (c, u) = (both.narrow(0, 0, b)?, both.narrow(0, b, b)?);
                (&u + ((&c - &u)? * self.scale)?)?
            }
            _ => self.call(x, t, &[&self.cond])?,
        };
        Ok(TensorLatent(out))
    }
}

/// `D(x; σ)` of a Stable Diffusion U-Net (see the module documentation).
pub struct SdDenoiser<'a> {
    inner: Preconditioned<GuidedUNet<'a>, Box<dyn FnMut(f64) -> f64 + 'a>>,
}

impl<'a> SdDenoiser<'a> {
    /// `cond`/`uncond`: conditioning of the prompt and of the negative prompt (the empty
    /// prompt for plain guidance; `None` for none); `scale`: the guidance scale s;
    /// `pixels_per_latent`: the autoencoder's size ratio (SDXL's size conditioning).
    pub fn new(
        unet: &'a UNet2DConditionModel,
        schedule: DiscreteSchedule,
        prediction: Prediction,
        cond: Conditioning,
        uncond: Option<Conditioning>,
        scale: f64,
        pixels_per_latent: usize,
    ) -> Self {
        let net = GuidedUNet { unet, cond, uncond, scale, pixels_per_latent, inpainting: None, recorder: None };
        let c_noise: Box<dyn FnMut(f64) -> f64 + 'a> = Box::new(move |sigma| schedule.timestep_for(sigma));
        Self { inner: Preconditioned::new(net, prediction, c_noise) }
    }
}

impl<'a> SdDenoiser<'a> {
    /// Hands every cross-attention layer of the prompt's branch (the first rows of each
    /// batched call) to `recorder`; the denoiser's output is unchanged.
    pub fn with_recorder(mut self, recorder: &'a CrossAttentionRecorder) -> Self {
        self.inner.net.recorder = Some(recorder);
        self
    }

    /// For an inpainting U-Net (9 input channels): `mask` `(1 or B, 1, h, w)` at latent
    /// resolution, 1 where to paint, and `masked_image_latents` `(1 or B, 4, h, w)`, the
    /// scaled latents of the image with the painted region zeroed (in [−1, 1]), are appended to
    /// every U-Net input.
    pub fn with_inpainting(mut self, mask: &Tensor, masked_image_latents: &Tensor) -> Result<Self, candle_core::Error> {
        self.inner.net.inpainting = Some(Tensor::cat(&[mask, masked_image_latents], 1)?);
        Ok(self)
    }
}

impl Denoiser<TensorLatent> for SdDenoiser<'_> {
    fn denoise(&mut self, x: &TensorLatent, sigma: f64) -> Result<TensorLatent, BoxError> {
        self.inner.denoise(x, sigma)
    }
}
