//! The U-Net's text-conditioning block: a spatial transformer whose cross-attention reads the
//! text encoder's hidden states (Rombach et al. 2022, §3.3, "latent diffusion").
//!
//! Source: diffusers `src/diffusers/models/transformers/transformer_2d.py` (`Transformer2DModel`
//! with `use_linear_projection=True`, one layer) and `src/diffusers/models/attention.py`
//! (`BasicTransformerBlock`, `FeedForward` with `GEGLU`), names as in their checkpoints:
//! `norm`, `proj_in`, `transformer_blocks.0.{norm1, attn1, norm2, attn2, norm3, ff}`, `proj_out`.
//! `h = proj_in(GroupNorm(x))` over the pixels as tokens; `h += attn1(LN₁ h)` (self);
//! `h += attn2(LN₂ h, context)` (cross); `h += ff(LN₃ h)`; `out = proj_out(h) + x`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::ops::attention;
use crate::layer_norm::LayerNorm;
use crate::linear::TokenLinear;
use crate::ops::GroupNorm;

/// diffusers `Attention` inside a transformer block: bias-free `to_q`, `to_k`, `to_v` and a
/// biased `to_out.0`. Keys and values come from `context` (width `context_dim`) for
/// cross-attention, from the block's own tokens for self-attention.
#[derive(Debug, Clone)]
struct TokenAttention {
    to_q: TokenLinear,
    to_k: TokenLinear,
    to_v: TokenLinear,
    to_out: TokenLinear,
    heads: usize,
}

impl TokenAttention {
    fn new(vb: VarBuilder, dim: usize, context_dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            to_q: TokenLinear::no_bias(vb.pp("to_q"), dim, dim)?,
            to_k: TokenLinear::no_bias(vb.pp("to_k"), context_dim, dim)?,
            to_v: TokenLinear::no_bias(vb.pp("to_v"), context_dim, dim)?,
            to_out: TokenLinear::new(vb.pp("to_out").pp("0"), dim, dim)?,
            heads,
        })
    }

    /// `x`: `(B, N, dim)`; `context`: `(B, M, context_dim)`; returns `(B, N, dim)`.
    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let out = attention(&self.to_q.forward(x)?, &self.to_k.forward(context)?, &self.to_v.forward(context)?, self.heads, None)?;
        self.to_out.forward(&out)
    }
}

/// `FeedForward(dim, activation_fn="geglu")`: `net.2(a · GELU(g))` with `[a, g] = net.0.proj(x)`
/// (Shazeer 2020, GEGLU), inner width `4·dim`.
#[derive(Debug, Clone)]
struct GegluFeedForward {
    proj: TokenLinear,
    out: TokenLinear,
    inner: usize,
}

impl GegluFeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(Self {
            proj: TokenLinear::new(vb.pp("net").pp("0").pp("proj"), dim, 2 * inner)?,
            out: TokenLinear::new(vb.pp("net").pp("2"), inner, dim)?,
            inner,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.proj.forward(x)?;
        let last = h.rank() - 1;
        let (a, g) = (h.narrow(last, 0, self.inner)?, h.narrow(last, self.inner, self.inner)?);
        self.out.forward(&(a * g.gelu_erf()?)?)
    }
}

/// diffusers `BasicTransformerBlock` (LayerNorms with ε = 1e-5).
#[derive(Debug, Clone)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: TokenAttention,
    norm2: LayerNorm,
    attn2: TokenAttention,
    norm3: LayerNorm,
    ff: GegluFeedForward,
}

impl BasicTransformerBlock {
    fn new(vb: VarBuilder, dim: usize, context_dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            norm1: LayerNorm::new(vb.pp("norm1"), dim, 1e-5)?,
            attn1: TokenAttention::new(vb.pp("attn1"), dim, dim, heads)?,
            norm2: LayerNorm::new(vb.pp("norm2"), dim, 1e-5)?,
            attn2: TokenAttention::new(vb.pp("attn2"), dim, context_dim, heads)?,
            norm3: LayerNorm::new(vb.pp("norm3"), dim, 1e-5)?,
            ff: GegluFeedForward::new(vb.pp("ff"), dim)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward(x)?;
        let x = (x + self.attn1.forward(&h, &h)?)?;
        let x = (&x + self.attn2.forward(&self.norm2.forward(&x)?, context)?)?;
        &x + self.ff.forward(&self.norm3.forward(&x)?)?
    }
}

/// diffusers `Transformer2DModel` (linear projections, one block; GroupNorm ε = 1e-6).
#[derive(Debug, Clone)]
pub struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: TokenLinear,
    block: BasicTransformerBlock,
    proj_out: TokenLinear,
}

impl SpatialTransformer {
    /// `heads` must divide `channels` (checked by `UNetConfig::validate`).
    pub fn new(vb: VarBuilder, channels: usize, context_dim: usize, heads: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            norm: GroupNorm::new(vb.pp("norm"), groups, channels, 1e-6)?,
            proj_in: TokenLinear::new(vb.pp("proj_in"), channels, channels)?,
            block: BasicTransformerBlock::new(vb.pp("transformer_blocks").pp(0), channels, context_dim, heads)?,
            proj_out: TokenLinear::new(vb.pp("proj_out"), channels, channels)?,
        })
    }

    /// # Shapes
    /// - `x`: `(B, C, H, W)`; `context`: `(B, M, context_dim)`
    /// - returns `(B, C, H, W)`
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let tokens = self.norm.forward(x)?.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?; // (B, HW, C)
        let t = self.block.forward(&self.proj_in.forward(&tokens)?, context)?;
        let out = self.proj_out.forward(&t)?.transpose(1, 2)?.reshape((b, c, h, w))?;
        out + x
    }
}
