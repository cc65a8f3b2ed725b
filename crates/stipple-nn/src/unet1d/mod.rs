//! `UNet1D`: the DDPM U-Net for sequences (time series, waveforms).
//!
//! The layout is diffusers' `UNet2DModel` (`unets/unet_2d.py`) with 1-D convolutions, the
//! design of lucidrains' `Unet1D` (`denoising_diffusion_pytorch_1d.py`) and of diffusers'
//! `UNet1DModel`: time embedding (+ class embedding) → `conv_in` → down levels (ResBlocks,
//! optional self-attention, a stride-2 downsampler except at the last level) collecting
//! skips → mid block (ResBlock, attention, ResBlock) → up levels (one more ResBlock per
//! level, each on its input concatenated with a skip, nearest ×2 up-sampling) → GroupNorm →
//! SiLU → `conv_out`.

mod blocks;
mod config;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

pub use blocks::Conv1d;
pub use config::UNet1DConfig;

use crate::dropout::Mode;
use crate::embeddings::{timestep_embedding, TimestepEmbedding};
use crate::ops::GroupNorm;
use crate::shapes::{record_shapes, ParameterShapes};
use crate::{NnError, UNetCond};
use blocks::{conv1d, upsample_nearest_2x, Attention1D, BlockSpec1D, ResBlock1D};

/// One resolution level: its ResBlocks, their attentions (if the level has any), and the
/// length change at its end (down: stride-2 conv; up: nearest ×2 + conv).
#[derive(Debug, Clone)]
struct Level {
    resnets: Vec<ResBlock1D>,
    attentions: Vec<Attention1D>,
    sampler: Option<Conv1d>,
}

impl Level {
    fn block(&self, j: usize, h: &Tensor, emb: &Tensor, mode: Mode) -> Result<Tensor> {
        let h = self.resnets[j].forward(h, emb, mode)?;
        match self.attentions.get(j) {
            Some(a) => a.forward(&h),
            None => Ok(h),
        }
    }
}

/// The 1-D denoiser network `F(x, t, class)`.
#[derive(Debug, Clone)]
pub struct UNet1D {
    cfg: UNet1DConfig,
    conv_in: Conv1d,
    time_embedding: TimestepEmbedding,
    class_embedding: Option<Embedding>,
    down: Vec<Level>,
    mid: (ResBlock1D, Attention1D, ResBlock1D),
    up: Vec<Level>,
    conv_norm_out: GroupNorm,
    conv_out: Conv1d,
}

impl UNet1D {
    /// Builds the network, every parameter from `vb` (validated config first). Parameter
    /// names: `conv_in`, `time_embedding.linear_{1,2}`, `class_embedding`,
    /// `down_blocks.{i}.resnets.{j}`, `down_blocks.{i}.attentions.{j}`,
    /// `down_blocks.{i}.downsamplers.0.conv`, `mid_block.{resnets.0, attentions.0, resnets.1}`,
    /// `up_blocks.{i}.…`, `up_blocks.{i}.upsamplers.0.conv`, `conv_norm_out`, `conv_out`.
    pub fn new(vb: VarBuilder, cfg: &UNet1DConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = cfg.time_embed_dim();
        let spec = BlockSpec1D {
            temb_channels: temb,
            groups: cfg.norm_num_groups,
            eps: cfg.norm_eps,
            dropout: cfg.dropout,
            head_dim: cfg.attention_head_dim,
        };
        let class_embedding = match cfg.num_class_embeds {
            Some(k) => Some(candle_nn::embedding(k, temb, vb.pp("class_embedding"))?),
            None => None,
        };
        // Widths of the skips, pushed on the way down, popped on the way up.
        let mut skips = vec![ch[0]];
        let mut down = Vec::with_capacity(n);
        let mut cin = ch[0];
        for (i, &width) in ch.iter().enumerate() {
            let vbi = vb.pp("down_blocks").pp(i);
            let (mut resnets, mut attentions) = (vec![], vec![]);
            for j in 0..cfg.layers_per_block {
                resnets.push(ResBlock1D::new(vbi.pp("resnets").pp(j), &spec, if j == 0 { cin } else { width }, width)?);
                if cfg.attention_levels[i] {
                    attentions.push(Attention1D::new(vbi.pp("attentions").pp(j), &spec, width)?);
                }
                skips.push(width);
            }
            let sampler = if i + 1 < n {
                skips.push(width);
                Some(conv1d(width, width, 3, 2, 1, vbi.pp("downsamplers").pp(0).pp("conv"))?)
            } else {
                None
            };
            down.push(Level { resnets, attentions, sampler });
            cin = width;
        }
        let vm = vb.pp("mid_block");
        let mid = (
            ResBlock1D::new(vm.pp("resnets").pp(0), &spec, ch[n - 1], ch[n - 1])?,
            Attention1D::new(vm.pp("attentions").pp(0), &spec, ch[n - 1])?,
            ResBlock1D::new(vm.pp("resnets").pp(1), &spec, ch[n - 1], ch[n - 1])?,
        );
        let mut up = Vec::with_capacity(n);
        let mut prev = ch[n - 1];
        for i in 0..n {
            let level = n - 1 - i;
            let vbi = vb.pp("up_blocks").pp(i);
            let (mut resnets, mut attentions) = (vec![], vec![]);
            for j in 0..=cfg.layers_per_block {
                let skip = skips.pop().expect("one skip per up ResBlock");
                resnets.push(ResBlock1D::new(vbi.pp("resnets").pp(j), &spec, prev + skip, ch[level])?);
                if cfg.attention_levels[level] {
                    attentions.push(Attention1D::new(vbi.pp("attentions").pp(j), &spec, ch[level])?);
                }
                prev = ch[level];
            }
            let sampler = if level > 0 { Some(conv1d(prev, prev, 3, 1, 1, vbi.pp("upsamplers").pp(0).pp("conv"))?) } else { None };
            up.push(Level { resnets, attentions, sampler });
        }
        Ok(Self {
            cfg: cfg.clone(),
            conv_in: conv1d(cfg.in_channels + cfg.cond_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?,
            time_embedding: TimestepEmbedding::new(vb.pp("time_embedding"), ch[0], temb)?,
            class_embedding,
            down,
            mid,
            up,
            conv_norm_out: GroupNorm::new(vb.pp("conv_norm_out"), cfg.norm_num_groups, ch[0], cfg.norm_eps)?,
            conv_out: conv1d(ch[0], cfg.out_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &UNet1DConfig {
        &self.cfg
    }

    /// Inference forward pass.
    ///
    /// # Shapes
    /// - `x`: `(B, in_channels, L)`, `L` a multiple of 2^(levels−1)
    /// - `timesteps`: `(B,)` or `(1,)` (broadcast), continuous values
    /// - `cond.class_labels`: `(B,)` u32, required iff `num_class_embeds` is set; no text states
    /// - `cond.observed`: `(B, cond_channels, L)` or `(1, cond_channels, L)` (broadcast),
    ///   required iff `cond_channels` is set; concatenated to `x` along the channels (CSDI)
    /// - returns `(B, out_channels, L)`
    pub fn forward_cond(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond) -> Result<Tensor> {
        self.run(x, timesteps, cond, Mode::Inference)
    }

    /// Training forward pass: dropout masks a pure function of `dropout_seed` and each layer's name.
    pub fn forward_train(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, dropout_seed: u64) -> Result<Tensor> {
        self.run(x, timesteps, cond, Mode::Train { seed: dropout_seed })
    }

    fn run(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, mode: Mode) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (b, c, l) = x.dims3()?;
        if c != cfg.in_channels {
            candle_core::bail!("UNet1D: input has {c} channels, the model expects in_channels = {}", cfg.in_channels);
        }
        #[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; MSRV is 1.85
        if l % cfg.length_factor() != 0 {
            candle_core::bail!("UNet1D: input length {l} must be a multiple of {} (2^(levels−1))", cfg.length_factor());
        }
        if cond.encoder_hidden_states.is_some() {
            candle_core::bail!("UNet1D: the 1-D U-Net takes no text conditioning");
        }
        let t = match timesteps.dims() {
            [n] if *n == b => timesteps.clone(),
            [] | [1] => timesteps.reshape(1)?.broadcast_as(b)?.contiguous()?,
            d => candle_core::bail!("UNet1D: timesteps must have shape ({b},), got {d:?}"),
        };
        // diffusers' UNet2DModel: flip_sin_to_cos = true, freq_shift = 0.
        let t_emb = timestep_embedding(&t, cfg.block_out_channels[0], true, 0.0)?.to_dtype(x.dtype())?;
        let mut emb = self.time_embedding.forward(&t_emb)?;
        match (&self.class_embedding, &cond.class_labels) {
            (Some(e), Some(labels)) if labels.dims() == [b] => {
                emb = (emb + e.forward(&labels.to_dtype(DType::U32)?)?.to_dtype(x.dtype())?)?;
            }
            (Some(_), Some(labels)) => candle_core::bail!("UNet1D: class_labels must have shape ({b},), got {:?}", labels.dims()),
            (Some(_), None) => candle_core::bail!("UNet1D: class_labels are required (num_class_embeds is set)"),
            (None, Some(_)) => candle_core::bail!("UNet1D: class_labels given but the model has no class embedding"),
            (None, None) => {}
        }
        let mut h = self.conv_in.forward(&self.with_observation(x, cond)?)?;
        let mut skips = vec![h.clone()];
        for level in &self.down {
            for j in 0..level.resnets.len() {
                h = level.block(j, &h, &emb, mode)?;
                skips.push(h.clone());
            }
            if let Some(down) = &level.sampler {
                h = down.forward(&h)?;
                skips.push(h.clone());
            }
        }
        h = self.mid.0.forward(&h, &emb, mode)?;
        h = self.mid.1.forward(&h)?;
        h = self.mid.2.forward(&h, &emb, mode)?;
        for level in &self.up {
            for j in 0..level.resnets.len() {
                let skip = skips.pop().expect("one skip per up ResBlock");
                h = level.block(j, &Tensor::cat(&[&h, &skip], 1)?, &emb, mode)?;
            }
            if let Some(conv) = &level.sampler {
                h = conv.forward(&upsample_nearest_2x(&h)?)?;
            }
        }
        self.conv_out.forward(&self.conv_norm_out.forward_silu(&h)?)
    }

    /// `x` with the conditional observation appended along the channels, as CSDI's denoiser
    /// reads the noisy target beside the conditional observation (Tashiro et al. 2021,
    /// and its implementation's `set_input_to_diffmodel`: the noisy values only where the mask
    /// hides them, `x·(1 − m)`, then `x₀·m` and `m`); `x` itself for a network without
    /// `cond_channels`.
    fn with_observation(&self, x: &Tensor, cond: &UNetCond) -> Result<Tensor> {
        let (b, _, l) = x.dims3()?;
        let k = self.cfg.cond_channels;
        match &cond.observed {
            None if k == 0 => Ok(x.clone()),
            None => candle_core::bail!("UNet1D: the model reads an observation of {k} channels (cond_channels); none was given"),
            Some(_) if k == 0 => candle_core::bail!("UNet1D: an observation was given but the model reads none (cond_channels = 0)"),
            Some(o) => {
                let o = match o.dims() {
                    [ob, c, ol] if *c == k && *ol == l && *ob == b => o.clone(),
                    [1, c, ol] if *c == k && *ol == l => o.broadcast_as((b, k, l))?.contiguous()?,
                    d => candle_core::bail!("UNet1D: the observation must have shape ({b} or 1, {k}, {l}), got {d:?}"),
                };
                let o = o.to_dtype(x.dtype())?;
                let hidden = o.narrow(1, 1, 1)?.affine(-1.0, 1.0)?;
                Tensor::cat(&[&x.broadcast_mul(&hidden)?, &o], 1)
            }
        }
    }

    /// The names and shapes of every parameter of a network with this config, in build
    /// order, without allocating them.
    pub fn parameter_shapes(cfg: &UNet1DConfig) -> std::result::Result<ParameterShapes, NnError> {
        cfg.validate()?;
        record_shapes(|vb| UNet1D::new(vb, cfg).map(|_| ()))
    }
}
