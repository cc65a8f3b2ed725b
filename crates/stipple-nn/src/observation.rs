//! The conditional observation of a forecaster conditioned as in CSDI (Tashiro et al. 2021:
//! the "conditional observations" and their mask as inputs of the denoiser ε_θ): the observed
//! values, zero where nothing is observed, and the observation mask, two channels that the
//! network reads beside the noisy sequence (`UNet1DConfig::cond_channels`).

use candle_core::{Result, Tensor};

/// Channels of the observation: the observed values and the mask.
pub const OBSERVATION_CHANNELS: usize = 2;

/// `(B, 2, L)`: `known · keep` and `keep` (1 = observed), from `known` `(B, 1, L)` (any values
/// where `keep` is 0) and `keep` `(B, 1, L)` (u8 or float, 0 or 1), in `known`'s dtype.
pub fn observation_channels(known: &Tensor, keep: &Tensor) -> Result<Tensor> {
    let (_, c, _) = known.dims3()?;
    if c != 1 || keep.dims() != known.dims() {
        candle_core::bail!("an observation is one channel of values and a mask of its shape, got {:?} and {:?}", known.dims(), keep.dims());
    }
    let mask = keep.to_dtype(known.dtype())?;
    Tensor::cat(&[&(known * &mask)?, &mask], 1)
}
