//! The U-Net's text-conditioning block: a spatial transformer whose cross-attention reads the
//! text encoder's hidden states (Rombach et al. 2022, §3.3, "latent diffusion").
//!
//! Source: diffusers `src/diffusers/models/transformers/transformer_2d.py` (`Transformer2DModel`
//! with linear projections, or 1×1-convolution ones as Stable Diffusion 1.x has them, and
//! `num_layers` blocks) and `src/diffusers/models/attention.py`
//! (`BasicTransformerBlock`, `FeedForward` with `GEGLU`), names as in their checkpoints:
//! `norm`, `proj_in`, `transformer_blocks.0.{norm1, attn1, norm2, attn2, norm3, ff}`, `proj_out`.
//! `h = proj_in(GroupNorm(x))` over the pixels as tokens; per block `h += attn1(LN₁ h)` (self);
//! `h += attn2(LN₂ h, context)` (cross); `h += ff(LN₃ h)`; `out = proj_out(h) + x`. A 1×1
//! convolution over a `(B, C, H, W)` map is the same linear map as a linear layer over its
//! `(B, HW, C)` tokens, so both projection kinds run as [`TokenLinear`] (the convolution's
//! `(C', C, 1, 1)` weight read as `(C', C)`).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::attention_maps::CrossAttentionRecorder;
use crate::ops::{attention, geglu, transpose_last, transpose_last_add};
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

    /// `residual + attention`: `x`: `(B, N, dim)`; `context`: `(B, M, context_dim)`;
    /// `residual`: `(B, N, dim)`; returns `(B, N, dim)`. A `recorder` also gets the queries and
    /// keys of the `N = h·w` pixels (`hw`).
    fn forward_add(&self, x: &Tensor, context: &Tensor, recorder: Option<(&CrossAttentionRecorder, (usize, usize))>, residual: &Tensor) -> Result<Tensor> {
        let (q, k) = (self.to_q.forward(x)?, self.to_k.forward(context)?);
        if let Some((r, hw)) = recorder {
            r.record(&q, &k, self.heads, hw)?;
        }
        let out = attention(&q, &k, &self.to_v.forward(context)?, self.heads, None)?;
        self.to_out.forward_add(&out, residual)
    }
}

/// `FeedForward(dim, activation_fn="geglu")`: `net.2(a · GELU(g))` with `[a, g] = net.0.proj(x)`
/// (Shazeer 2020, GEGLU), inner width `4·dim`.
#[derive(Debug, Clone)]
struct GegluFeedForward {
    proj: TokenLinear,
    out: TokenLinear,
}

impl GegluFeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(Self {
            proj: TokenLinear::new(vb.pp("net").pp("0").pp("proj"), dim, 2 * inner)?,
            out: TokenLinear::new(vb.pp("net").pp("2"), inner, dim)?,
        })
    }

    /// `residual + FeedForward(x)`.
    fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.out.forward_add(&geglu(&self.proj.forward(x)?)?, residual)
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

    /// A `recorder` watches the cross-attention (`attn2`) only.
    fn forward(&self, x: &Tensor, context: &Tensor, recorder: Option<(&CrossAttentionRecorder, (usize, usize))>) -> Result<Tensor> {
        let h = self.norm1.forward(x)?;
        let x = self.attn1.forward_add(&h, &h, None, x)?;
        let x = self.attn2.forward_add(&self.norm2.forward(&x)?, context, recorder, &x)?;
        self.ff.forward_add(&self.norm3.forward(&x)?, &x)
    }
}

/// How a [`SpatialTransformer`] is laid out (diffusers `Transformer2DModel` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerLayout {
    /// `use_linear_projection`: `proj_in`/`proj_out` are linear layers (SD 2.x, SDXL) rather
    /// than 1×1 convolutions (SD 1.x).
    pub linear_projection: bool,
    /// `num_layers`: the number of `BasicTransformerBlock`s (SDXL's
    /// `transformer_layers_per_block`).
    pub layers: usize,
}

impl Default for TransformerLayout {
    /// One block, linear projections (the layout of Stipple's own U-Nets).
    fn default() -> Self {
        Self { linear_projection: true, layers: 1 }
    }
}

/// diffusers `Transformer2DModel` (GroupNorm ε = 1e-6).
#[derive(Debug, Clone)]
pub struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: TokenLinear,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: TokenLinear,
}

impl SpatialTransformer {
    /// One block with linear projections. `heads` must divide `channels` (checked by
    /// `UNetConfig::validate`).
    pub fn new(vb: VarBuilder, channels: usize, context_dim: usize, heads: usize, groups: usize) -> Result<Self> {
        Self::with_layout(vb, channels, context_dim, heads, groups, TransformerLayout::default())
    }

    /// Any [`TransformerLayout`]; `heads` must divide `channels`.
    pub fn with_layout(
        vb: VarBuilder,
        channels: usize,
        context_dim: usize,
        heads: usize,
        groups: usize,
        layout: TransformerLayout,
    ) -> Result<Self> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            candle_core::bail!("transformer: {heads} heads do not divide {channels} channels");
        }
        let projection = |vb: VarBuilder| -> Result<TokenLinear> {
            if layout.linear_projection {
                TokenLinear::new(vb, channels, channels)
            } else {
                let w = vb.get((channels, channels, 1, 1), "weight")?.reshape((channels, channels))?;
                Ok(TokenLinear::from_parts(w, Some(vb.get(channels, "bias")?)))
            }
        };
        let blocks = (0..layout.layers)
            .map(|i| BasicTransformerBlock::new(vb.pp("transformer_blocks").pp(i), channels, context_dim, heads))
            .collect::<Result<_>>()?;
        Ok(Self {
            norm: GroupNorm::new(vb.pp("norm"), groups, channels, 1e-6)?,
            proj_in: projection(vb.pp("proj_in"))?,
            blocks,
            proj_out: projection(vb.pp("proj_out"))?,
        })
    }

    /// # Shapes
    /// - `x`: `(B, C, H, W)`; `context`: `(B, M, context_dim)`
    /// - returns `(B, C, H, W)`
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        self.forward_recorded(x, context, None)
    }

    /// [`SpatialTransformer::forward`], with the cross-attention of every block handed to
    /// `recorder` (see [`CrossAttentionRecorder`]); the output is the same.
    pub fn forward_recorded(&self, x: &Tensor, context: &Tensor, recorder: Option<&CrossAttentionRecorder>) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let tokens = transpose_last(&self.norm.forward(x)?.reshape((b, c, h * w))?)?; // (B, HW, C)
        let mut t = self.proj_in.forward(&tokens)?;
        for block in &self.blocks {
            t = block.forward(&t, context, recorder.map(|r| (r, (h, w))))?;
        }
        transpose_last_add(&self.proj_out.forward(&t)?, &x.reshape((b, c, h * w))?)?.reshape((b, c, h, w))
    }
}
