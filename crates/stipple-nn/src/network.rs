//! The U-Net as the raw network `F(c_in·x, c_noise)` of the denoiser contract.

use candle_core::{DType, Tensor};
use stipple_sample::{BoxError, Network, Preconditioned};

use crate::{DiffusionConfig, Net, TensorLatent};

/// A U-Net called with one noise level for the whole batch and, optionally, class labels.
pub struct UNetNetwork<'a> {
    pub net: &'a Net,
    pub class_labels: Option<Tensor>,
}

impl Network<TensorLatent> for UNetNetwork<'_> {
    fn predict(&mut self, x_in: &TensorLatent, c_noise: f64) -> Result<TensorLatent, BoxError> {
        let b = x_in.0.dim(0)?;
        let t = Tensor::full(c_noise as f32, b, x_in.0.device())?.to_dtype(DType::F32)?;
        let out = self.net.forward(&x_in.0, &t, self.class_labels.as_ref())?;
        Ok(TensorLatent(out))
    }
}

/// `D(x; σ)` for a U-Net trained with `diffusion`. Its noise conditioning is the
/// (fractional) training timestep whose σ matches, by log-σ interpolation (k-diffusion
/// `DiscreteSchedule.sigma_to_t`).
pub fn denoiser<'a>(
    net: &'a Net,
    diffusion: &DiffusionConfig,
    class_labels: Option<Tensor>,
) -> Preconditioned<UNetNetwork<'a>, impl FnMut(f64) -> f64> {
    let schedule = diffusion.schedule();
    Preconditioned::new(UNetNetwork { net, class_labels }, diffusion.prediction_type, move |sigma| {
        schedule.timestep_for(sigma)
    })
}
