//! Classifier-free guidance (Ho & Salimans 2022) and inpainting as denoiser wrappers.

use candle_core::{DType, Tensor};
use stipple_sample::{BoxError, Denoiser, Network, Preconditioned};

use crate::{CrossAttentionRecorder, DiffusionConfig, Net, TensorLatent, UNetCond};

/// How strongly and where classifier-free guidance applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuidanceSettings {
    /// s in `u + s·(c − u)`: 1 = the conditional model, 0 = the unconditional one.
    pub scale: f64,
    /// φ of guidance rescale (Lin et al. 2023, Alg. 2): 0 = off, 0.7 their recommendation.
    pub rescale: f64,
    /// Guide only for σ in `[lo, hi]`; outside, the conditional prediction alone
    /// (Kynkäänniemi et al. 2024). `None` = every σ.
    pub interval: Option<(f64, f64)>,
}

impl Default for GuidanceSettings {
    fn default() -> Self {
        Self { scale: 1.0, rescale: 0.0, interval: None }
    }
}

/// The U-Net with both conditionings; `predict` combines the two branches at `scale`.
pub struct GuidedNetwork<'a> {
    net: &'a Net,
    /// Labels and/or text states of the conditional branch (empty for an unconditional net).
    cond: UNetCond,
    /// The unconditional (or negative) branch; `None` = no guidance.
    uncond: Option<UNetCond>,
    rescale: f64,
    /// The scale at the current σ (set by [`Guided::denoise`]).
    scale_now: f64,
    /// Watches the cross-attention of the conditional branch (see [`Guided::recording`]).
    recorder: Option<&'a CrossAttentionRecorder>,
}

impl GuidedNetwork<'_> {
    /// One network call; `conditional`: the batch starts with the conditional branch, whose
    /// cross-attention the recorder (if any) gets.
    fn forward(&self, x: &Tensor, c_noise: f64, cond: &UNetCond, conditional: bool) -> candle_core::Result<Tensor> {
        let t = Tensor::full(c_noise as f32, x.dim(0)?, x.device())?.to_dtype(DType::F32)?;
        match self.recorder {
            Some(r) if conditional => self.net.forward_recorded(x, &t, cond, r),
            _ => self.net.forward_cond(x, &t, cond),
        }
    }
}

impl Network<TensorLatent> for GuidedNetwork<'_> {
    /// # Shapes
    /// `x_in`: `(B, C, spatial…)`; one network call of batch 2B when guiding.
    fn predict(&mut self, x_in: &TensorLatent, c_noise: f64) -> Result<TensorLatent, BoxError> {
        let s = self.scale_now;
        let cond = &self.cond;
        let Some(uncond) = &self.uncond else {
            return Ok(TensorLatent(self.forward(&x_in.0, c_noise, cond, true)?));
        };
        if s == 1.0 {
            return Ok(TensorLatent(self.forward(&x_in.0, c_noise, cond, true)?));
        }
        if s == 0.0 && self.rescale == 0.0 {
            return Ok(TensorLatent(self.forward(&x_in.0, c_noise, uncond, false)?));
        }
        let b = x_in.0.dim(0)?;
        let both = self.forward(&Tensor::cat(&[&x_in.0, &x_in.0], 0)?, c_noise, &cond.concat(uncond)?, true)?;
        let (c, u) = (both.narrow(0, 0, b)?, both.narrow(0, b, b)?);
        // Ho & Salimans 2022, Eq. 6 in the form u + s·(c − u).
        let guided = (&u + ((&c - &u)? * s)?)?;
        if self.rescale == 0.0 {
            return Ok(TensorLatent(guided));
        }
        // Lin et al. 2023, Alg. 2: match the per-sample std of the conditional prediction, mix by φ.
        let mut column = vec![1; c.rank()];
        column[0] = b;
        let std = |t: &Tensor| -> candle_core::Result<Tensor> {
            let flat = t.flatten_from(1)?;
            let mean = flat.mean_keepdim(1)?;
            flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?.sqrt()?.reshape(column.as_slice())
        };
        let ratio = (std(&c)? / (std(&guided)? + 1e-12)?)?;
        let rescaled = guided.broadcast_mul(&ratio)?;
        Ok(TensorLatent(((rescaled * self.rescale)? + (guided * (1.0 - self.rescale))?)?))
    }
}

/// `D(x; σ)` of a (possibly class-conditional) U-Net with classifier-free guidance: the
/// combination is made on the network output F (ε, v or x₀), which for a fixed σ is the
/// same as combining the denoised estimates (D is affine in F), except for the rescale,
/// which follows the paper on the network output.
pub struct Guided<'a, C> {
    inner: Preconditioned<GuidedNetwork<'a>, C>,
    settings: GuidanceSettings,
}

/// A guided denoiser for `net` trained with `diffusion`. `cond` holds the labels and/or
/// text states of the wanted images, `uncond` those of the unconditional (or negative)
/// branch; with `uncond = None` there is no guidance and `settings` are ignored.
pub fn guided_denoiser<'a>(
    net: &'a Net,
    diffusion: &DiffusionConfig,
    cond: UNetCond,
    uncond: Option<UNetCond>,
    settings: GuidanceSettings,
) -> Guided<'a, impl FnMut(f64) -> f64> {
    let schedule = diffusion.schedule();
    let net = GuidedNetwork { net, cond, uncond, rescale: settings.rescale, scale_now: settings.scale, recorder: None };
    Guided {
        inner: Preconditioned::new(net, diffusion.prediction_type, move |sigma| schedule.timestep_for(sigma)),
        settings,
    }
}

impl<'a, C> Guided<'a, C> {
    /// This denoiser with the cross-attention of its conditional branch handed to `recorder`
    /// at every network call (DAAM maps of the images it denoises; the unconditional branch
    /// is not recorded). The denoised estimates are the same as without it.
    pub fn recording(mut self, recorder: &'a CrossAttentionRecorder) -> Self {
        self.inner.net.recorder = Some(recorder);
        self
    }
}

impl<C: FnMut(f64) -> f64> Denoiser<TensorLatent> for Guided<'_, C> {
    fn denoise(&mut self, x: &TensorLatent, sigma: f64) -> Result<TensorLatent, BoxError> {
        let inside = self.settings.interval.is_none_or(|(lo, hi)| lo <= sigma && sigma <= hi);
        self.inner.net.scale_now = if inside { self.settings.scale } else { 1.0 };
        self.inner.denoise(x, sigma)
    }
}

/// Inpainting: where `keep` is 1 the denoised estimate is the known image `known`, so every
/// sampler moves those pixels along `known + σ·ε` (the known content re-imposed at each
/// noise level); where it is 0 the model paints. The same for any sample shape: the known
/// history of a forecast, or the observed values around missing ones, are imposed alike.
pub struct Inpaint<D> {
    pub inner: D,
    /// `(B, C, spatial…)` clean known sample (an image in [−1, 1], a scaled series).
    pub known: Tensor,
    /// `(B, C, spatial…)` u8: 1 = keep the known value, 0 = repaint.
    pub keep: Tensor,
}

impl<D: Denoiser<TensorLatent>> Denoiser<TensorLatent> for Inpaint<D> {
    fn denoise(&mut self, x: &TensorLatent, sigma: f64) -> Result<TensorLatent, BoxError> {
        let d = self.inner.denoise(x, sigma)?;
        Ok(TensorLatent(self.keep.where_cond(&self.known, &d.0)?))
    }
}
