//! `UNet2D`: diffusers' `UNet2DModel` (the DDPM U-Net, Ho et al. 2020, Appendix B).
//!
//! Source: diffusers `src/diffusers/models/unets/unet_2d.py` (`UNet2DModel.__init__` and
//! `forward`): time embedding (+ class embedding) → `conv_in` → down blocks collecting skips →
//! mid block → up blocks consuming skips → GroupNorm → SiLU → `conv_out`.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder, VarMap};

use crate::attention_maps::CrossAttentionRecorder;
use crate::blocks::{BlockSpec, DownBlock, MidBlock, UpBlock};
use crate::dropout::Mode;
use crate::ops::{Conv2d, GroupNorm};
use crate::embeddings::{timestep_embedding, TimestepEmbedding};
use crate::resnet::conv3x3;
use crate::shapes::{record_shapes, ParameterShapes};
use crate::{NnError, UNetConfig};

/// The U-Net denoiser network `F(x, t, class)`, parameter names as diffusers' checkpoints.
#[derive(Debug, Clone)]
pub struct UNet2D {
    cfg: UNetConfig,
    conv_in: Conv2d,
    time_embedding: TimestepEmbedding,
    class_embedding: Option<Embedding>,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet2D {
    /// Builds the network, taking every parameter from `vb` (use a `VarMap`-backed builder to
    /// initialise fresh weights, or [`crate::unet_from_tensors`] to load checked weights).
    /// The config is validated first.
    pub fn new(vb: VarBuilder, cfg: &UNetConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = cfg.time_embed_dim();
        let spec = BlockSpec {
            temb_channels: temb,
            groups: cfg.norm_num_groups,
            eps: cfg.norm_eps,
            dropout: cfg.dropout,
            head_dim: cfg.attention_head_dim,
            cross_attention_dim: cfg.cross_attention_dim,
        };
        let conv_in = conv3x3(cfg.in_channels, ch[0], 1, vb.pp("conv_in"))?;
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), ch[0], temb)?;
        let class_embedding = match cfg.num_class_embeds {
            Some(k) => Some(candle_nn::embedding(k, temb, vb.pp("class_embedding"))?),
            None => None,
        };
        let mut down_blocks = Vec::with_capacity(n);
        let mut cout = ch[0];
        for (i, t) in cfg.down_block_types.iter().enumerate() {
            let cin = cout;
            cout = ch[i];
            let vbi = vb.pp("down_blocks").pp(i);
            let last = i == n - 1;
            down_blocks.push(DownBlock::new(vbi, &spec, cin, cout, cfg.layers_per_block, t.attention(), !last)?);
        }
        let mid_block = MidBlock::new(vb.pp("mid_block"), &spec, ch[n - 1], cfg.mid_attention(), cfg.mid_block_scale_factor)?;
        let mut up_blocks = Vec::with_capacity(n);
        let mut cout = ch[n - 1];
        for (i, t) in cfg.up_block_types.iter().enumerate() {
            let prev = cout;
            cout = ch[n - 1 - i];
            let cin = ch[(n - 1).saturating_sub(i + 1)];
            let vbi = vb.pp("up_blocks").pp(i);
            let last = i == n - 1;
            up_blocks.push(UpBlock::new(vbi, &spec, cin, cout, prev, cfg.layers_per_block + 1, t.attention(), !last)?);
        }
        Ok(Self {
            cfg: cfg.clone(),
            conv_in,
            time_embedding,
            class_embedding,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::new(vb.pp("conv_norm_out"), cfg.norm_num_groups, ch[0], cfg.norm_eps)?,
            conv_out: conv3x3(ch[0], cfg.out_channels, 1, vb.pp("conv_out"))?,
        })
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// Inference forward pass (no dropout).
    ///
    /// # Shapes
    /// - `x`: `(B, in_channels, H, W)`, `H` and `W` multiples of 2^(levels−1)
    /// - `timesteps`: `(B,)` (or `(1,)`, broadcast), continuous values, any float dtype
    /// - `class_labels`: `(B,)` u32, required iff `num_class_embeds` is set
    /// - returns `(B, out_channels, H, W)`
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, class_labels: Option<&Tensor>) -> Result<Tensor> {
        let cond = UNetCond { class_labels: class_labels.cloned(), encoder_hidden_states: None, observed: None };
        self.run(x, timesteps, &cond, None, Mode::Inference)
    }

    /// Inference forward pass with every kind of conditioning.
    ///
    /// # Shapes
    /// As [`UNet2D::forward`], and [`UNetCond::encoder_hidden_states`] `(B, M, cross_attention_dim)`.
    pub fn forward_cond(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond) -> Result<Tensor> {
        self.run(x, timesteps, cond, None, Mode::Inference)
    }

    /// [`UNet2D::forward_cond`] with every cross-attention layer handed to `recorder` (DAAM
    /// maps, see [`CrossAttentionRecorder`]); the output is the same as without it.
    pub fn forward_recorded(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, recorder: &CrossAttentionRecorder) -> Result<Tensor> {
        self.run(x, timesteps, cond, Some(recorder), Mode::Inference)
    }

    /// Training forward pass: as [`UNet2D::forward_cond`] with dropout `p = cfg.dropout` whose
    /// masks are a pure function of `dropout_seed` and each layer's name (see [`crate::dropout`]).
    pub fn forward_train(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, dropout_seed: u64) -> Result<Tensor> {
        self.run(x, timesteps, cond, None, Mode::Train { seed: dropout_seed })
    }

    fn run(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, recorder: Option<&CrossAttentionRecorder>, mode: Mode) -> Result<Tensor> {
        if cond.observed.is_some() {
            candle_core::bail!("UNet2D: an observation (CSDI conditioning) is read only by a 1-D U-Net with cond_channels");
        }
        let class_labels = cond.class_labels.as_ref();
        let context = cond.encoder_hidden_states.as_ref();
        if let Some(c) = context {
            let want = self.cfg.cross_attention_dim;
            match (c.dims(), want) {
                (_, None) => candle_core::bail!("UNet2D: encoder_hidden_states given but the model has no text conditioning"),
                ([cb, _, d], Some(w)) if *cb == x.dim(0)? && *d == w => {}
                (dims, Some(w)) => candle_core::bail!("UNet2D: encoder_hidden_states must have shape ({}, tokens, {w}), got {dims:?}", x.dim(0)?),
            }
        }
        let cfg = &self.cfg;
        let (b, c, h, w) = x.dims4()?;
        if c != cfg.in_channels {
            candle_core::bail!("UNet2D: input has {c} channels, the model expects in_channels = {}", cfg.in_channels);
        }
        let f = 1usize << (self.down_blocks.len() - 1);
        if h % f != 0 || w % f != 0 {
            candle_core::bail!("UNet2D: input size {h}×{w} must be a multiple of {f} (2^(levels−1))");
        }
        // 1. time: broadcast a single timestep to the batch, as diffusers does.
        let t = match timesteps.dims() {
            [n] if *n == b => timesteps.clone(),
            [] | [1] => timesteps.reshape(1)?.broadcast_as(b)?.contiguous()?,
            d => candle_core::bail!("UNet2D: timesteps must have shape ({b},), got {d:?}"),
        };
        let t_emb = timestep_embedding(&t, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)?
            .to_dtype(x.dtype())?;
        let mut emb = self.time_embedding.forward(&t_emb)?;
        // 2. class embedding, added to the time embedding.
        match (&self.class_embedding, class_labels) {
            (Some(e), Some(labels)) => {
                if labels.dims() != [b] {
                    candle_core::bail!("UNet2D: class_labels must have shape ({b},), got {:?}", labels.dims());
                }
                emb = (emb + e.forward(&labels.to_dtype(DType::U32)?)?.to_dtype(x.dtype())?)?;
            }
            (Some(_), None) => candle_core::bail!("UNet2D: class_labels are required (num_class_embeds is set)"),
            (None, Some(_)) => {
                candle_core::bail!("UNet2D: class_labels given but the model has no class embedding (num_class_embeds is None)")
            }
            (None, None) => {}
        }
        // 3. pre-process.
        let x = if cfg.center_input_sample { ((x * 2.0)? - 1.0)? } else { x.clone() };
        let mut h = self.conv_in.forward(&x)?;
        // 4. down.
        let mut skips = vec![h.clone()];
        for block in &self.down_blocks {
            let (out, s) = block.forward(&h, &emb, context, recorder, mode)?;
            h = out;
            skips.extend(s);
        }
        // 5. mid.
        h = self.mid_block.forward(&h, &emb, context, recorder, mode)?;
        // 6. up.
        for block in &self.up_blocks {
            h = block.forward(&h, &mut skips, &emb, context, recorder, mode)?;
        }
        // 7. post-process.
        self.conv_out.forward(&self.conv_norm_out.forward_silu(&h)?)
    }

    /// The names and shapes of every parameter of a network with this config, in build order,
    /// without allocating them.
    pub fn parameter_shapes(cfg: &UNetConfig) -> std::result::Result<ParameterShapes, NnError> {
        cfg.validate()?;
        record_shapes(|vb| UNet2D::new(vb, cfg).map(|_| ()))
    }
}

/// What conditions the U-Net besides the noise level (diffusers' `class_labels` and
/// `encoder_hidden_states`; for a 1-D U-Net with `cond_channels`, the conditional
/// observation of CSDI, Tashiro et al. 2021).
#[derive(Debug, Clone, Default)]
pub struct UNetCond {
    /// `(B,)` u32 class labels, required iff `num_class_embeds` is set.
    pub class_labels: Option<Tensor>,
    /// `(B, M, cross_attention_dim)` text-encoder states, required iff `cross_attention_dim` is set.
    pub encoder_hidden_states: Option<Tensor>,
    /// `(B or 1, cond_channels, L)`: the observed values and their mask
    /// ([`crate::observation_channels`]), read beside the noisy sequence by a 1-D U-Net whose
    /// `cond_channels` is set and refused by every other network.
    pub observed: Option<Tensor>,
}

impl UNetCond {
    /// The two conditionings stacked along the batch (for one classifier-free-guidance call).
    pub fn concat(&self, other: &UNetCond) -> Result<UNetCond> {
        let cat = |a: &Option<Tensor>, b: &Option<Tensor>| -> Result<Option<Tensor>> {
            match (a, b) {
                (Some(a), Some(b)) => Ok(Some(Tensor::cat(&[a, b], 0)?)),
                (None, None) => Ok(None),
                _ => candle_core::bail!("UNetCond::concat: both sides need the same kinds of conditioning"),
            }
        };
        Ok(UNetCond {
            class_labels: cat(&self.class_labels, &other.class_labels)?,
            encoder_hidden_states: cat(&self.encoder_hidden_states, &other.encoder_hidden_states)?,
            observed: cat(&self.observed, &other.observed)?,
        })
    }
}

/// Total number of scalars over all variables of a `VarMap`.
pub fn num_parameters(varmap: &VarMap) -> usize {
    varmap.all_vars().iter().map(|v| v.elem_count()).sum()
}

