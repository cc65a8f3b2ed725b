//! candle tensors as sampler latents.

use candle_core::{DType, Tensor};
use stipple_sample::{BoxError, ClampLatent, Latent};

/// A batch of latents `(B, C, H, W)` on any device, seen by the samplers as a vector
/// they combine linearly. A newtype because both the trait and `Tensor` live elsewhere.
#[derive(Clone, Debug)]
pub struct TensorLatent(pub Tensor);

impl Latent for TensorLatent {
    fn lincomb(terms: &[(f64, &Self)]) -> Result<Self, BoxError> {
        let ((w0, x0), rest) = terms.split_first().ok_or("lincomb needs at least one term")?;
        let mut acc = (&x0.0 * *w0)?;
        for (w, x) in rest {
            if *w != 0.0 {
                acc = (acc + (&x.0 * *w)?)?;
            }
        }
        Ok(TensorLatent(acc))
    }
}

/// A sample is one item of the batch (dimension 0), as in diffusers' `_threshold_sample`.
/// The thresholds s are found on the host (a quantile needs a sort); the clamping and the
/// division stay on the tensor's device.
impl ClampLatent for TensorLatent {
    fn clamp_abs(&self, bound: f64) -> Result<Self, BoxError> {
        Ok(TensorLatent(self.0.clamp(-bound, bound)?))
    }

    /// # Shapes
    /// `(B, …)` with at least two dimensions → B vectors of the other dimensions' size.
    fn sample_values(&self) -> Result<Vec<Vec<f64>>, BoxError> {
        if self.0.rank() < 2 {
            return Err(format!("a batch of samples needs (B, …) with 2 or more dimensions, got {:?}", self.0.dims()).into());
        }
        Ok(self.0.flatten_from(1)?.to_dtype(DType::F64)?.to_vec2::<f64>()?)
    }

    fn clamp_scale_samples(&self, s: &[f64]) -> Result<Self, BoxError> {
        let x = &self.0;
        let b = x.dim(0)?;
        if s.len() != b {
            return Err(format!("{} thresholds for a batch of {b}", s.len()).into());
        }
        let mut shape = vec![1; x.rank()];
        shape[0] = b;
        let s = Tensor::from_slice(s, b, x.device())?.to_dtype(x.dtype())?.reshape(shape)?;
        Ok(TensorLatent(x.broadcast_maximum(&s.neg()?)?.broadcast_minimum(&s)?.broadcast_div(&s)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn lincomb_weights_each_term() -> Result<(), BoxError> {
        let a = TensorLatent(Tensor::new(&[1f32, 2.0], &Device::Cpu)?);
        let b = TensorLatent(Tensor::new(&[10f32, 20.0], &Device::Cpu)?);
        let c = TensorLatent::lincomb(&[(2.0, &a), (0.5, &b)])?;
        assert_eq!(c.0.to_vec1::<f32>()?, vec![7.0, 14.0]);
        assert!(TensorLatent::lincomb(&[]).is_err());
        Ok(())
    }
}
