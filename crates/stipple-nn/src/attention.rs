//! Spatial self-attention over the pixels of a feature map.
//!
//! Source: diffusers `src/diffusers/models/attention_processor.py` `Attention` as built by
//! `AttnDownBlock2D` / `UNetMidBlock2D` (`residual_connection=True`, `bias=True`,
//! `norm_num_groups` set, `_from_deprecated_attn_block=True`) run by `AttnProcessor2_0`:
//! `h = GroupNorm(x)` flattened to `(B, HW, C)`, `q, k, v = to_q(h), to_k(h), to_v(h)` split
//! into `heads` of `d = attention_head_dim`, `softmax(q kᵀ / √d) v` (Vaswani et al. 2017, eq. 1),
//! merged, `to_out.0`, reshaped back, `out = (that + x) / rescale_output_factor`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::linear::TokenLinear;
use crate::ops::{attention, transpose_last, transpose_last_add, GroupNorm};

/// diffusers `Attention` (spatial form). Parameters: `group_norm`, `to_q`, `to_k`, `to_v`,
/// `to_out.0` (`to_out.1` is a parameter-free dropout with p = 0 in these blocks).
#[derive(Debug, Clone)]
pub struct SpatialAttention {
    group_norm: GroupNorm,
    to_q: TokenLinear,
    to_k: TokenLinear,
    to_v: TokenLinear,
    to_out: TokenLinear,
    heads: usize,
    rescale_output_factor: f64,
}

impl SpatialAttention {
    /// `heads · head_dim` must equal `channels` (checked by `UNetConfig::validate`).
    #[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; MSRV is 1.85
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        heads: usize,
        groups: usize,
        eps: f64,
        rescale_output_factor: f64,
    ) -> Result<Self> {
        if heads == 0 || channels % heads != 0 {
            candle_core::bail!("attention: {heads} heads do not divide {channels} channels");
        }
        Ok(Self {
            group_norm: GroupNorm::new(vb.pp("group_norm"), groups, channels, eps)?,
            to_q: TokenLinear::new(vb.pp("to_q"), channels, channels)?,
            to_k: TokenLinear::new(vb.pp("to_k"), channels, channels)?,
            to_v: TokenLinear::new(vb.pp("to_v"), channels, channels)?,
            to_out: TokenLinear::new(vb.pp("to_out").pp("0"), channels, channels)?,
            heads,
            rescale_output_factor,
        })
    }

    /// # Shapes
    /// - `x`: `(B, C, H, W)`
    /// - returns `(B, C, H, W)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = h * w;
        // Contiguous tokens before the Linear layers (`transpose_last` writes them so): candle
        // 0.11.1's batched matmul of a transposed (B, N, C) view against the broadcast weight
        // mixes batch items (seen in tests).
        let hs = transpose_last(&self.group_norm.forward(x)?.reshape((b, c, n))?)?; // (B, N, C)
        let q = self.to_q.forward(&hs)?;
        let out = attention(&q, &self.to_k.forward(&hs)?, &self.to_v.forward(&hs)?, self.heads, None)?;
        let out = transpose_last_add(&self.to_out.forward(&out)?, &x.reshape((b, c, n))?)?.reshape((b, c, h, w))?;
        if self.rescale_output_factor == 1.0 {
            Ok(out)
        } else {
            out / self.rescale_output_factor
        }
    }
}
