//! Time (noise-level) embeddings.
//!
//! Source: diffusers `src/diffusers/models/embeddings.py` (`get_timestep_embedding`,
//! `Timesteps`, `TimestepEmbedding`), itself the transformer positional encoding of
//! Vaswani et al. 2017, §3.5, as used by DDPM (Ho et al. 2020, Appendix B).

use candle_core::{DType, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// The frequencies `exp(−ln(max_period) · i / (half − shift))`, `i = 0 … half−1`, computed in
/// f32 in the same order of operations as diffusers' `get_timestep_embedding`.
fn frequencies(half: usize, shift: f64, max_period: f64) -> Vec<f32> {
    let neg_log = -(max_period.ln()) as f32;
    let denom = half as f32 - shift as f32;
    (0..half).map(|i| ((neg_log * i as f32) / denom).exp()).collect()
}

/// Sinusoidal embedding of continuous timesteps (diffusers `get_timestep_embedding` with
/// `scale = 1`, `max_period = 10000`):
/// `emb = [sin(t·f), cos(t·f)]` with `f_i = exp(−ln 10000 · i / (half − downscale_freq_shift))`,
/// halves swapped to `[cos, sin]` when `flip_sin_to_cos`, a zero column appended for odd `dim`.
///
/// # Shapes
/// - `timesteps`: `(B,)`, any float dtype (continuous values such as EDM's `ln σ / 4` are fine)
/// - returns `(B, dim)` in f32
pub fn timestep_embedding(
    timesteps: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    downscale_freq_shift: f64,
) -> Result<Tensor> {
    let b = timesteps.dims1()?;
    let half = dim / 2;
    let freqs = frequencies(half, downscale_freq_shift, 10000.0);
    let freqs = Tensor::from_vec(freqs, (1, half), timesteps.device())?;
    let args = timesteps
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs)?; // (B, half)
    let (sin, cos) = (args.sin()?, args.cos()?);
    let emb = if flip_sin_to_cos {
        Tensor::cat(&[&cos, &sin], 1)?
    } else {
        Tensor::cat(&[&sin, &cos], 1)?
    };
    if dim % 2 == 1 {
        let pad = Tensor::zeros((b, 1), DType::F32, timesteps.device())?;
        Tensor::cat(&[&emb, &pad], 1)
    } else {
        Ok(emb)
    }
}

/// The learned MLP on top of the sinusoidal embedding (diffusers `TimestepEmbedding` with
/// `act_fn = "silu"`): `linear_2(SiLU(linear_1(e)))`.
#[derive(Debug, Clone)]
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    /// Parameters `linear_1.{weight,bias}` `(time_embed_dim, in_dim)` and
    /// `linear_2.{weight,bias}` `(time_embed_dim, time_embed_dim)`.
    pub fn new(vb: VarBuilder, in_dim: usize, time_embed_dim: usize) -> Result<Self> {
        Ok(Self {
            linear_1: candle_nn::linear(in_dim, time_embed_dim, vb.pp("linear_1"))?,
            linear_2: candle_nn::linear(time_embed_dim, time_embed_dim, vb.pp("linear_2"))?,
        })
    }

    /// # Shapes
    /// - `emb`: `(B, in_dim)`
    /// - returns `(B, time_embed_dim)`
    pub fn forward(&self, emb: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&self.linear_1.forward(emb)?.silu()?)
    }
}
