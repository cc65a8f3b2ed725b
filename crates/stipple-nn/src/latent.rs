//! candle tensors as sampler latents.

use candle_core::Tensor;
use stipple_sample::{BoxError, Latent};

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
