//! The U-Net as the raw network `F(c_in·x, c_noise)` of the denoiser contract.

use candle_core::{DType, Tensor};
use stipple_math::DiscreteSchedule;
use stipple_sample::{BoxError, Network, Preconditioned};

use crate::{DiffusionConfig, TensorLatent, UNet2D};

/// A U-Net called with one noise level for the whole batch and, optionally, class labels.
pub struct UNetNetwork<'a> {
    pub unet: &'a UNet2D,
    pub class_labels: Option<Tensor>,
}

impl Network<TensorLatent> for UNetNetwork<'_> {
    fn predict(&mut self, x_in: &TensorLatent, c_noise: f64) -> Result<TensorLatent, BoxError> {
        let b = x_in.0.dim(0)?;
        let t = Tensor::full(c_noise as f32, b, x_in.0.device())?.to_dtype(DType::F32)?;
        let out = self.unet.forward(&x_in.0, &t, self.class_labels.as_ref())?;
        Ok(TensorLatent(out))
    }
}

/// Noise conditioning of a discrete VP model: the (fractional) training timestep whose σ
/// matches, by log-σ interpolation (k-diffusion `DiscreteSchedule.sigma_to_t`).
pub struct TimestepConditioning(pub DiscreteSchedule);

impl stipple_sample::NoiseConditioning for TimestepConditioning {
    fn c_noise(&self, sigma: f64) -> f64 {
        self.0.timestep_for(sigma)
    }
}

/// `D(x; σ)` for a U-Net trained with `diffusion`.
pub fn denoiser<'a>(
    unet: &'a UNet2D,
    diffusion: &DiffusionConfig,
    class_labels: Option<Tensor>,
) -> Preconditioned<UNetNetwork<'a>, TimestepConditioning> {
    Preconditioned {
        net: UNetNetwork { unet, class_labels },
        prediction: diffusion.prediction_type,
        c_noise: TimestepConditioning(diffusion.schedule()),
    }
}
