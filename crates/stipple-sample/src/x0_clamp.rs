//! Limits on the denoised estimate x̂₀ = D(x; σ) — static clipping and dynamic
//! thresholding — as a denoiser wrapper, so every sampler can use them (what changes what
//! the model says at a noise level is a wrapper).

use crate::{BoxError, Denoiser, Latent, SampleError};
use stipple_math::dynamic_threshold;

/// How the denoised estimate is limited, with the keys and defaults of diffusers'
/// `DDIMScheduler` (`clip_sample`, `clip_sample_range`, `thresholding`,
/// `dynamic_thresholding_ratio`, `sample_max_value`), except that both limits are off by
/// default. As in diffusers, `thresholding` takes precedence over `clip_sample`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct X0Clamp {
    /// Clamp x̂₀ to [−clip_sample_range, clip_sample_range] (the DDPM reference code's
    /// `clip_denoised`, for pixel data scaled to [−1, 1] as in Ho et al. 2020, §3.3).
    pub clip_sample: bool,
    /// The bound of `clip_sample` (default 1).
    pub clip_sample_range: f64,
    /// Dynamic thresholding (Saharia et al. 2022, "Imagen", §2.3): per sample,
    /// s = clamp(quantile(|x̂₀|, dynamic_thresholding_ratio), 1, sample_max_value) and
    /// x̂₀ ← clamp(x̂₀, −s, s)/s ([`stipple_math::dynamic_threshold`]).
    pub thresholding: bool,
    /// The quantile of |x̂₀| that sets s, in [0, 1] (default 0.995, as in diffusers; Imagen
    /// takes a "certain percentile").
    pub dynamic_thresholding_ratio: f64,
    /// The largest s, > 0 (default 1, as in diffusers; DeepFloyd IF uses 1.5).
    pub sample_max_value: f64,
}

impl Default for X0Clamp {
    fn default() -> Self {
        X0Clamp::OFF
    }
}

impl X0Clamp {
    /// Neither limit, with diffusers' default parameters.
    pub const OFF: X0Clamp = X0Clamp {
        clip_sample: false,
        clip_sample_range: 1.0,
        thresholding: false,
        dynamic_thresholding_ratio: 0.995,
        sample_max_value: 1.0,
    };

    /// Whether this is [`X0Clamp::OFF`] (then it is left out of serialised options).
    pub fn is_default(&self) -> bool {
        *self == X0Clamp::OFF
    }

    /// Whether x̂₀ is changed at all.
    pub fn is_active(&self) -> bool {
        self.clip_sample || self.thresholding
    }

    /// Checks the ranges: `clip_sample_range` and `sample_max_value` finite and > 0,
    /// `dynamic_thresholding_ratio` in [0, 1].
    pub fn validate(&self) -> Result<(), SampleError> {
        let positive = |name, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(SampleError::InvalidOption { name, value, expected: "a finite value > 0" })
            }
        };
        positive("clip_sample_range", self.clip_sample_range)?;
        positive("sample_max_value", self.sample_max_value)?;
        let ratio = self.dynamic_thresholding_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(SampleError::InvalidOption {
                name: "dynamic_thresholding_ratio",
                value: ratio,
                expected: "a quantile in [0, 1]",
            });
        }
        Ok(())
    }

    /// Limits `x0` as configured (diffusers `DDIMScheduler.step`, stage 4: `_threshold_sample`
    /// if `thresholding`, else `clamp` if `clip_sample`).
    pub fn apply<L: ClampLatent>(&self, x0: L) -> Result<L, BoxError> {
        if self.thresholding {
            let s: Vec<f64> = x0
                .sample_values()?
                .into_iter()
                .map(|mut v| dynamic_threshold(&mut v, self.dynamic_thresholding_ratio, self.sample_max_value))
                .collect();
            x0.clamp_scale_samples(&s)
        } else if self.clip_sample {
            x0.clamp_abs(self.clip_sample_range)
        } else {
            Ok(x0)
        }
    }
}

/// A latent whose values [`ClampedX0`] can limit, sample by sample of a batch.
pub trait ClampLatent: Latent {
    /// Every value clamped to [−bound, bound].
    fn clamp_abs(&self, bound: f64) -> Result<Self, BoxError>;
    /// The values of each sample of the batch, one vector per sample, as f64.
    fn sample_values(&self) -> Result<Vec<Vec<f64>>, BoxError>;
    /// Sample b clamped to [−s_b, s_b] and divided by s_b (`s` holds one s_b > 0 per sample).
    fn clamp_scale_samples(&self, s: &[f64]) -> Result<Self, BoxError>;
}

/// A flat vector is one sample.
impl ClampLatent for Vec<f64> {
    fn clamp_abs(&self, bound: f64) -> Result<Self, BoxError> {
        Ok(self.iter().map(|v| v.clamp(-bound, bound)).collect())
    }
    fn sample_values(&self) -> Result<Vec<Vec<f64>>, BoxError> {
        Ok(vec![self.clone()])
    }
    fn clamp_scale_samples(&self, s: &[f64]) -> Result<Self, BoxError> {
        let [s] = s else {
            return Err(format!("a vector is one sample, got {} thresholds", s.len()).into());
        };
        Ok(self.iter().map(|v| v.clamp(-s, *s) / s).collect())
    }
}

/// `D(x; σ)` of `inner` with the denoised estimate limited by [`X0Clamp`]; with the limits
/// off it returns the inner estimate untouched.
///
/// Since samplers derive their noise estimate from D, ε̂ = (x − x̂₀)/σ, the limited x̂₀ also
/// sets ε̂: this is diffusers' `DDIMScheduler.step(..., use_clipped_model_output=True)`
/// (GLIDE's choice, "the pred_epsilon is always re-derived from the clipped x_0"); diffusers'
/// default keeps the network's own ε in the direction term. Insert it around the model,
/// inside an inpainting wrapper (diffusers thresholds the model's x̂₀ before blending in the
/// known image).
#[derive(Debug, Clone)]
pub struct ClampedX0<D> {
    inner: D,
    clamp: X0Clamp,
}

impl<D> ClampedX0<D> {
    /// Wraps `inner`; fails if `clamp` is out of range ([`X0Clamp::validate`]).
    pub fn new(inner: D, clamp: X0Clamp) -> Result<Self, SampleError> {
        clamp.validate()?;
        Ok(ClampedX0 { inner, clamp })
    }

    /// The wrapped denoiser.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<L: ClampLatent, D: Denoiser<L>> Denoiser<L> for ClampedX0<D> {
    fn denoise(&mut self, x: &L, sigma: f64) -> Result<L, BoxError> {
        let d = self.inner.denoise(x, sigma)?;
        self.clamp.apply(d)
    }
}
