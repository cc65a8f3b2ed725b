//! The layers of the 1-D U-Net: a time-conditioned residual block, stride-2 down- and
//! nearest ×2 up-sampling, and self-attention over the positions of a sequence.
//!
//! Sources: the ResBlock is diffusers `ResnetBlock2D` (`resnet.py`, DDPM's Wide-ResNet block,
//! Ho et al. 2020, Appendix B) with 1-D convolutions, as lucidrains' `ResnetBlock` in
//! `denoising_diffusion_pytorch_1d.py`; the samplers are diffusers' `Downsample2D`
//! (conv k=3, stride 2, padding 1) and `Upsample2D` (nearest ×2, then conv k=3) in 1-D.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv1dConfig, Linear, VarBuilder};

use crate::attention::SpatialAttention;
use crate::dropout::{Dropout, Mode};
use crate::ops::GroupNorm;

/// The 1-D convolution of the network (one place to swap the implementation; any layer
/// with `candle_nn::Conv1d`'s `new(weight, bias, config)` and `Module::forward` fits):
/// Stipple's, whose CPU kernels have their own backward ([`crate::ops::conv1d`]).
pub type Conv1d = crate::Conv1d;

/// A 1-D convolution `cin → cout` with kernel `k`, stride and padding as given, its
/// parameters `weight` `(cout, cin, k)` and `bias` `(cout)` from `vb`, initialised as
/// `candle_nn::conv1d` does.
pub(crate) fn conv1d(cin: usize, cout: usize, k: usize, stride: usize, padding: usize, vb: VarBuilder) -> Result<Conv1d> {
    crate::conv1d::conv1d(cin, cout, k, Conv1dConfig { padding, stride, ..Default::default() }, vb)
}

/// Hyper-parameters shared by every block of one network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSpec1D {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub dropout: f64,
    pub head_dim: usize,
}

/// `h = conv1(SiLU(norm1(x))) + time_emb_proj(SiLU(temb))[:, :, None]`,
/// `h = conv2(dropout(SiLU(norm2(h))))`, `out = shortcut(x) + h`.
/// Parameters: `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2`, and `conv_shortcut`
/// (k = 1) when the widths differ.
#[derive(Debug, Clone)]
pub(crate) struct ResBlock1D {
    norm1: GroupNorm,
    conv1: Conv1d,
    time_emb_proj: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv1d,
    conv_shortcut: Option<Conv1d>,
}

impl ResBlock1D {
    pub fn new(vb: VarBuilder, s: &BlockSpec1D, cin: usize, cout: usize) -> Result<Self> {
        let conv_shortcut = if cin != cout { Some(conv1d(cin, cout, 1, 1, 0, vb.pp("conv_shortcut"))?) } else { None };
        Ok(Self {
            norm1: GroupNorm::new(vb.pp("norm1"), s.groups, cin, s.eps)?,
            conv1: conv1d(cin, cout, 3, 1, 1, vb.pp("conv1"))?,
            time_emb_proj: candle_nn::linear(s.temb_channels, cout, vb.pp("time_emb_proj"))?,
            norm2: GroupNorm::new(vb.pp("norm2"), s.groups, cout, s.eps)?,
            dropout: Dropout::new(s.dropout, &vb.prefix()),
            conv2: conv1d(cout, cout, 3, 1, 1, vb.pp("conv2"))?,
            conv_shortcut,
        })
    }

    /// # Shapes
    /// - `x`: `(B, cin, L)`, `temb`: `(B, temb_channels)`
    /// - returns `(B, cout, L)`
    pub fn forward(&self, x: &Tensor, temb: &Tensor, mode: Mode) -> Result<Tensor> {
        // The time embedding's (B, C) projection is added as part of conv1's bias.
        let t = self.time_emb_proj.forward(&temb.silu()?)?;
        let h = self.conv1.forward_shifted(&self.norm1.forward_silu(x)?, &t)?;
        let h = self.conv2.forward(&self.norm2.forward_silu_dropout(&h, &self.dropout, mode)?)?;
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        shortcut + h
    }
}

/// Self-attention over the positions of a sequence: the spatial attention of the 2-D U-Net
/// (diffusers `Attention`) on a `(B, C, L, 1)` view.
#[derive(Debug, Clone)]
pub(crate) struct Attention1D(SpatialAttention);

impl Attention1D {
    pub fn new(vb: VarBuilder, s: &BlockSpec1D, channels: usize) -> Result<Self> {
        Ok(Self(SpatialAttention::new(vb, channels, channels / s.head_dim, s.groups, s.eps, 1.0)?))
    }

    /// # Shapes
    /// `x`: `(B, C, L)` → `(B, C, L)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(&x.unsqueeze(3)?)?.squeeze(3)
    }
}

/// Nearest-neighbour ×2 along the length (each value repeated), written with a broadcast so
/// its gradient is the sum over each pair.
///
/// # Shapes
/// `x`: `(B, C, L)` → `(B, C, 2L)`
pub(crate) fn upsample_nearest_2x(x: &Tensor) -> Result<Tensor> {
    let (b, c, l) = x.dims3()?;
    x.unsqueeze(3)?.broadcast_as((b, c, l, 2))?.reshape((b, c, 2 * l))
}
