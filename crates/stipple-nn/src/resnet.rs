//! The residual block with time conditioning.
//!
//! Source: diffusers `src/diffusers/models/resnet.py` `ResnetBlock2D` with
//! `time_embedding_norm = "default"`, `non_linearity = "silu"` (DDPM, Ho et al. 2020,
//! Appendix B / the Wide-ResNet block of Zagoruyko & Komodakis 2016):
//! `h = conv1(SiLU(norm1(x))) + time_emb_proj(SiLU(temb))[:, :, None, None]`,
//! `h = conv2(dropout(SiLU(norm2(h))))`, `out = (shortcut(x) + h) / output_scale_factor`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::dropout::{Dropout, Mode};
use crate::ops::{self, Conv2d, GroupNorm};

/// A 3×3 convolution with padding 1 (stride as given).
pub(crate) fn conv3x3(cin: usize, cout: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    Conv2d::new(vb, cin, cout, 3, stride, 1)
}

/// diffusers `ResnetBlock2D`. Parameters: `norm1`, `conv1`, `time_emb_proj` (absent in a block
/// without time conditioning, diffusers `temb_channels=None`, as in the VAE), `norm2`, `conv2`,
/// and `conv_shortcut` (1×1) when `in_channels ≠ out_channels`.
#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

/// Hyper-parameters of one [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy)]
pub struct ResnetSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub dropout: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock2D {
    pub fn new(vb: VarBuilder, s: &ResnetSpec) -> Result<Self> {
        let time_emb_proj = candle_nn::linear(s.temb_channels, s.out_channels, vb.pp("time_emb_proj"))?;
        Self::build(vb, s, Some(time_emb_proj))
    }

    /// A block without time conditioning (`s.temb_channels` is ignored): diffusers
    /// `ResnetBlock2D(temb_channels=None)`, whose `h = conv1(SiLU(norm1(x)))` has no time term.
    pub fn without_time(vb: VarBuilder, s: &ResnetSpec) -> Result<Self> {
        Self::build(vb, s, None)
    }

    fn build(vb: VarBuilder, s: &ResnetSpec, time_emb_proj: Option<Linear>) -> Result<Self> {
        let conv_shortcut = if s.in_channels != s.out_channels {
            Some(Conv2d::new(vb.pp("conv_shortcut"), s.in_channels, s.out_channels, 1, 1, 0)?)
        } else {
            None
        };
        Ok(Self {
            norm1: GroupNorm::new(vb.pp("norm1"), s.groups, s.in_channels, s.eps)?,
            conv1: conv3x3(s.in_channels, s.out_channels, 1, vb.pp("conv1"))?,
            time_emb_proj,
            norm2: GroupNorm::new(vb.pp("norm2"), s.groups, s.out_channels, s.eps)?,
            dropout: Dropout::new(s.dropout, &vb.prefix()),
            conv2: conv3x3(s.out_channels, s.out_channels, 1, vb.pp("conv2"))?,
            conv_shortcut,
            output_scale_factor: s.output_scale_factor,
        })
    }

    /// # Shapes
    /// - `x`: `(B, in_channels, H, W)`
    /// - `temb`: `(B, temb_channels)`
    /// - returns `(B, out_channels, H, W)`
    pub fn forward(&self, x: &Tensor, temb: &Tensor, mode: Mode) -> Result<Tensor> {
        let Some(proj) = &self.time_emb_proj else {
            candle_core::bail!("ResnetBlock2D: this block has no time conditioning (built without_time)");
        };
        // The time embedding's (B, C) projection is added as part of conv1's bias.
        let t = proj.forward(&temb.silu()?)?;
        let h = self.conv1.forward_after_norm(&self.norm1, x, Some(&t))?;
        self.finish(x, h, mode)
    }

    /// Inference forward pass of a block built [`ResnetBlock2D::without_time`].
    ///
    /// # Shapes
    /// - `x`: `(B, in_channels, H, W)`
    /// - returns `(B, out_channels, H, W)`
    pub fn forward_without_time(&self, x: &Tensor) -> Result<Tensor> {
        if self.time_emb_proj.is_some() {
            candle_core::bail!("ResnetBlock2D: this block is time-conditioned and needs temb");
        }
        let h = self.conv1.forward_after_norm(&self.norm1, x, None)?;
        self.finish(x, h, Mode::Inference)
    }

    /// `norm2` → SiLU → dropout → `conv2`, the shortcut, and the output scale.
    fn finish(&self, x: &Tensor, h: Tensor, mode: Mode) -> Result<Tensor> {
        let h = match self.dropout.mask(mode) {
            None => self.conv2.forward_after_norm(&self.norm2, &h, None)?,
            Some(_) => self.conv2.forward(&self.norm2.forward_silu_dropout(&h, &self.dropout, mode)?)?,
        };
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        // `h` is the fresh output of conv2: at inference the shortcut is added into it.
        let out = ops::add_to_fresh(h, &shortcut)?;
        if self.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out / self.output_scale_factor
        }
    }
}
