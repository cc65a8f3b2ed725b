//! The U-Net's down, mid and up blocks.
//!
//! Source: diffusers `src/diffusers/models/unets/unet_2d_blocks.py` (`DownBlock2D`,
//! `AttnDownBlock2D`, `UNetMidBlock2D`, `UpBlock2D`, `AttnUpBlock2D`) and
//! `src/diffusers/models/{downsampling,upsampling}.py` (`Downsample2D`: 3×3 conv, stride 2,
//! padding 1; `Upsample2D`: nearest ×2 then 3×3 conv, padding 1).
//! An "Attn" block is the plain one with an attention after every resnet; a "CrossAttn" block
//! has a spatial transformer there (`CrossAttnDownBlock2D`, `CrossAttnUpBlock2D`,
//! `UNetMidBlock2DCrossAttn`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::attention::SpatialAttention;
use crate::attention_maps::CrossAttentionRecorder;
use crate::config::AttentionKind;
use crate::dropout::Mode;
use crate::transformer::SpatialTransformer;
use crate::ops::{self, upsample_nearest, Conv2d};
use crate::resnet::{conv3x3, ResnetBlock2D, ResnetSpec};

/// Shared per-block hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSpec {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub dropout: f64,
    /// `None` = one head.
    pub head_dim: Option<usize>,
    /// Width of the text states of cross-attention blocks.
    pub cross_attention_dim: Option<usize>,
}

/// The layer after each resnet of an attention block.
#[derive(Debug, Clone)]
enum AttentionLayer {
    SelfAttention(SpatialAttention),
    Transformer(SpatialTransformer),
}

impl AttentionLayer {
    /// `context`: the text states `(B, M, cross_attention_dim)`, needed by transformers;
    /// `recorder` watches their cross-attention.
    fn forward(&self, x: &Tensor, context: Option<&Tensor>, recorder: Option<&CrossAttentionRecorder>) -> Result<Tensor> {
        match (self, context) {
            (AttentionLayer::SelfAttention(a), _) => a.forward(x),
            (AttentionLayer::Transformer(t), Some(c)) => t.forward_recorded(x, c, recorder),
            (AttentionLayer::Transformer(_), None) => {
                candle_core::bail!("UNet2D: this text-conditioned network needs encoder_hidden_states")
            }
        }
    }
}

impl BlockSpec {
    fn resnet(&self, cin: usize, cout: usize, scale: f64) -> ResnetSpec {
        ResnetSpec {
            in_channels: cin,
            out_channels: cout,
            temb_channels: self.temb_channels,
            groups: self.groups,
            eps: self.eps,
            dropout: self.dropout,
            output_scale_factor: scale,
        }
    }

    /// The attention layer of `kind` (`None` for [`AttentionKind::None`]).
    fn attention(&self, vb: VarBuilder, kind: AttentionKind, channels: usize, scale: f64) -> Result<Option<AttentionLayer>> {
        let heads = channels / self.head_dim.unwrap_or(channels);
        Ok(match kind {
            AttentionKind::None => None,
            AttentionKind::SelfAttention => {
                Some(AttentionLayer::SelfAttention(SpatialAttention::new(vb, channels, heads, self.groups, self.eps, scale)?))
            }
            AttentionKind::CrossAttention => {
                let Some(context) = self.cross_attention_dim else {
                    candle_core::bail!("cross-attention blocks need cross_attention_dim");
                };
                Some(AttentionLayer::Transformer(SpatialTransformer::new(vb, channels, context, heads, self.groups)?))
            }
        })
    }
}

/// `DownBlock2D` / `AttnDownBlock2D`: resnets (`resnets.M`), optional attentions
/// (`attentions.M`), optional `downsamplers.0.conv`.
#[derive(Debug, Clone)]
pub struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<AttentionLayer>,
    downsampler: Option<Conv2d>,
}

impl DownBlock {
    pub(crate) fn new(
        vb: VarBuilder,
        s: &BlockSpec,
        cin: usize,
        cout: usize,
        layers: usize,
        attention: AttentionKind,
        downsample: bool,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for m in 0..layers {
            let c = if m == 0 { cin } else { cout };
            resnets.push(ResnetBlock2D::new(vb.pp("resnets").pp(m), &s.resnet(c, cout, 1.0))?);
            attentions.extend(s.attention(vb.pp("attentions").pp(m), attention, cout, 1.0)?);
        }
        let downsampler = if downsample {
            Some(conv3x3(cout, cout, 2, vb.pp("downsamplers").pp(0).pp("conv"))?)
        } else {
            None
        };
        Ok(Self { resnets, attentions, downsampler })
    }

    /// Returns the block output and the skip tensors it adds (one per resnet, plus the
    /// downsampled output).
    ///
    /// # Shapes
    /// - `x`: `(B, cin, H, W)`; `temb`: `(B, temb_channels)`; `context`: `(B, M, D)` text states
    /// - returns `(B, cout, H', W')` with `H' = H/2` when downsampling, and skips of
    ///   `(B, cout, H, W)` ×layers then `(B, cout, H', W')`
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: Option<&Tensor>, recorder: Option<&CrossAttentionRecorder>, mode: Mode) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut skips = Vec::with_capacity(self.resnets.len() + 1);
        for (m, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, temb, mode)?;
            if let Some(attn) = self.attentions.get(m) {
                h = attn.forward(&h, context, recorder)?;
            }
            skips.push(h.clone());
        }
        if let Some(down) = &self.downsampler {
            h = down.forward(&h)?;
            skips.push(h.clone());
        }
        Ok((h, skips))
    }
}

/// `UNetMidBlock2D`: `resnets.0`, `attentions.0` (when `add_attention`), `resnets.1`.
#[derive(Debug, Clone)]
pub struct MidBlock {
    resnet_0: ResnetBlock2D,
    attention: Option<AttentionLayer>,
    resnet_1: ResnetBlock2D,
}

impl MidBlock {
    pub(crate) fn new(vb: VarBuilder, s: &BlockSpec, c: usize, attention: AttentionKind, scale: f64) -> Result<Self> {
        let spec = s.resnet(c, c, scale);
        Ok(Self {
            resnet_0: ResnetBlock2D::new(vb.pp("resnets").pp(0), &spec)?,
            attention: s.attention(vb.pp("attentions").pp(0), attention, c, scale)?,
            resnet_1: ResnetBlock2D::new(vb.pp("resnets").pp(1), &spec)?,
        })
    }

    /// # Shapes
    /// - `x`: `(B, C, H, W)`; `temb`: `(B, temb_channels)`; `context`: `(B, M, D)`; returns `(B, C, H, W)`
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: Option<&Tensor>, recorder: Option<&CrossAttentionRecorder>, mode: Mode) -> Result<Tensor> {
        let mut h = self.resnet_0.forward(x, temb, mode)?;
        if let Some(attn) = &self.attention {
            h = attn.forward(&h, context, recorder)?;
        }
        self.resnet_1.forward(&h, temb, mode)
    }
}

/// `UpBlock2D` / `AttnUpBlock2D`: `layers_per_block + 1` resnets on `[h, skip]` concatenated
/// along channels, optional attentions, optional `upsamplers.0.conv`.
#[derive(Debug, Clone)]
pub struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<AttentionLayer>,
    upsampler: Option<Conv2d>,
}

impl UpBlock {
    /// Channel bookkeeping of diffusers `UpBlock2D.__init__`: resnet `m` takes
    /// `(m == 0 ? prev_output_channel : out_channels)` from below plus a skip of
    /// `(m == layers−1 ? in_channels : out_channels)` channels.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        vb: VarBuilder,
        s: &BlockSpec,
        cin: usize,
        cout: usize,
        prev_cout: usize,
        layers: usize,
        attention: AttentionKind,
        upsample: bool,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for m in 0..layers {
            let skip = if m == layers - 1 { cin } else { cout };
            let below = if m == 0 { prev_cout } else { cout };
            resnets.push(ResnetBlock2D::new(vb.pp("resnets").pp(m), &s.resnet(below + skip, cout, 1.0))?);
            attentions.extend(s.attention(vb.pp("attentions").pp(m), attention, cout, 1.0)?);
        }
        let upsampler = if upsample {
            Some(conv3x3(cout, cout, 1, vb.pp("upsamplers").pp(0).pp("conv"))?)
        } else {
            None
        };
        Ok(Self { resnets, attentions, upsampler })
    }

    /// Number of skip tensors this block consumes.
    pub fn num_resnets(&self) -> usize {
        self.resnets.len()
    }

    /// Pops one skip per resnet from the end of `skips` (diffusers takes
    /// `res_hidden_states_tuple[-1]` each time).
    ///
    /// # Shapes
    /// - `x`: `(B, prev_cout, H, W)`; each popped skip `(B, *, H, W)`; `temb`: `(B, temb_channels)`;
    ///   `context`: `(B, M, D)`
    /// - returns `(B, cout, 2H, 2W)` when upsampling, else `(B, cout, H, W)`
    pub fn forward(&self, x: &Tensor, skips: &mut Vec<Tensor>, temb: &Tensor, context: Option<&Tensor>, recorder: Option<&CrossAttentionRecorder>, mode: Mode) -> Result<Tensor> {
        let mut h = x.clone();
        for (m, resnet) in self.resnets.iter().enumerate() {
            let Some(skip) = skips.pop() else {
                candle_core::bail!("up block: ran out of skip connections");
            };
            h = ops::concat_channels(&h, &skip)?;
            h = resnet.forward(&h, temb, mode)?;
            if let Some(attn) = self.attentions.get(m) {
                h = attn.forward(&h, context, recorder)?;
            }
        }
        if let Some(up) = &self.upsampler {
            h = up.forward(&upsample_nearest(&h, 2)?)?;
        }
        Ok(h)
    }
}
