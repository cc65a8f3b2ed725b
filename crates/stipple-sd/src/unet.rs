//! `UNet2DConditionModel`: the text-conditioned U-Net of Stable Diffusion (Rombach et al.
//! 2022, "High-Resolution Image Synthesis with Latent Diffusion Models", §3.3).
//!
//! Source: diffusers `src/diffusers/models/unets/unet_2d_condition.py` (`__init__`, `forward`)
//! and `unet_2d_blocks.py` (`DownBlock2D`, `CrossAttnDownBlock2D`, `UNetMidBlock2DCrossAttn`,
//! `UpBlock2D`, `CrossAttnUpBlock2D`): time embedding → `conv_in` → down blocks collecting skips
//! → mid block → up blocks consuming skips → GroupNorm → SiLU → `conv_out`. Parameter names are
//! diffusers' checkpoint keys. The layers are stipple-nn's (`ResnetBlock2D`, the spatial
//! transformer with GEGLU on the exact erf GELU, the CPU convolution and GroupNorm kernels).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use stipple_nn::dropout::Mode;
use stipple_nn::embeddings::{timestep_embedding, TimestepEmbedding};
use stipple_nn::ops::{upsample_nearest, Conv2d, GroupNorm};
use stipple_nn::resnet::{ResnetBlock2D, ResnetSpec};
use stipple_nn::{CrossAttentionRecorder, SpatialTransformer, TransformerLayout};

use crate::UNet2DConditionConfig;

fn conv3x3(vb: VarBuilder, cin: usize, cout: usize, stride: usize) -> Result<Conv2d> {
    Conv2d::new(vb, cin, cout, 3, stride, 1)
}

/// What every block of one U-Net shares.
struct Shared<'a> {
    cfg: &'a UNet2DConditionConfig,
    temb: usize,
}

impl Shared<'_> {
    fn resnet(&self, vb: VarBuilder, cin: usize, cout: usize, scale: f64) -> Result<ResnetBlock2D> {
        let spec = ResnetSpec {
            in_channels: cin,
            out_channels: cout,
            temb_channels: self.temb,
            groups: self.cfg.norm_num_groups,
            eps: self.cfg.norm_eps,
            dropout: 0.0,
            output_scale_factor: scale,
        };
        ResnetBlock2D::new(vb, &spec)
    }

    /// The `Transformer2DModel` of level `level` (heads and depth of that level).
    fn transformer(&self, vb: VarBuilder, channels: usize, level: usize) -> Result<SpatialTransformer> {
        let layout = TransformerLayout {
            linear_projection: self.cfg.use_linear_projection,
            layers: self.cfg.transformer_layers_per_block.get(level),
        };
        let (ctx, heads, groups) = (self.cfg.cross_attention_dim, self.cfg.heads(level), self.cfg.norm_num_groups);
        SpatialTransformer::with_layout(vb, channels, ctx, heads, groups, layout)
    }
}

/// `DownBlock2D` / `CrossAttnDownBlock2D`: `resnets.M`, optional `attentions.M`, optional
/// `downsamplers.0.conv` (3×3, stride 2, padding 1).
#[derive(Debug, Clone)]
struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    downsampler: Option<Conv2d>,
}

impl DownBlock {
    fn new(vb: VarBuilder, s: &Shared, level: usize, cin: usize, cout: usize) -> Result<Self> {
        let cfg = s.cfg;
        let cross = cfg.down_block_types[level] == "CrossAttnDownBlock2D";
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for m in 0..cfg.layers_per_block {
            resnets.push(s.resnet(vb.pp("resnets").pp(m), if m == 0 { cin } else { cout }, cout, 1.0)?);
            if cross {
                attentions.push(s.transformer(vb.pp("attentions").pp(m), cout, level)?);
            }
        }
        let last = level + 1 == cfg.block_out_channels.len();
        let downsampler = if last { None } else { Some(conv3x3(vb.pp("downsamplers").pp(0).pp("conv"), cout, cout, 2)?) };
        Ok(Self { resnets, attentions, downsampler })
    }

    /// The block's output and its skips (one per resnet, and the downsampled output).
    fn forward(&self, x: &Tensor, temb: &Tensor, ctx: &Tensor, rec: Option<&CrossAttentionRecorder>) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut skips = Vec::with_capacity(self.resnets.len() + 1);
        for (m, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, temb, Mode::Inference)?;
            if let Some(a) = self.attentions.get(m) {
                h = a.forward_recorded(&h, ctx, rec)?;
            }
            skips.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h)?;
            skips.push(h.clone());
        }
        Ok((h, skips))
    }
}

/// `UNetMidBlock2DCrossAttn`: `resnets.0`, `attentions.0`, `resnets.1`.
#[derive(Debug, Clone)]
struct MidBlock {
    resnet_0: ResnetBlock2D,
    attention: SpatialTransformer,
    resnet_1: ResnetBlock2D,
}

impl MidBlock {
    fn new(vb: VarBuilder, s: &Shared, channels: usize) -> Result<Self> {
        let (level, scale) = (s.cfg.block_out_channels.len() - 1, s.cfg.mid_block_scale_factor);
        Ok(Self {
            resnet_0: s.resnet(vb.pp("resnets").pp(0), channels, channels, scale)?,
            attention: s.transformer(vb.pp("attentions").pp(0), channels, level)?,
            resnet_1: s.resnet(vb.pp("resnets").pp(1), channels, channels, scale)?,
        })
    }

    fn forward(&self, x: &Tensor, temb: &Tensor, ctx: &Tensor, rec: Option<&CrossAttentionRecorder>) -> Result<Tensor> {
        let h = self.resnet_0.forward(x, temb, Mode::Inference)?;
        let h = self.attention.forward_recorded(&h, ctx, rec)?;
        self.resnet_1.forward(&h, temb, Mode::Inference)
    }
}

/// `UpBlock2D` / `CrossAttnUpBlock2D`: `resnets.M` on the input concatenated with a skip,
/// optional `attentions.M`, optional `upsamplers.0.conv` (nearest ×2, then 3×3).
#[derive(Debug, Clone)]
struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    upsampler: Option<Conv2d>,
}

impl UpBlock {
    /// Up block `i` (lowest resolution first): `prev` channels come in, each resnet `m` also
    /// reads a skip of `cin` channels (last resnet) or `cout` (the others).
    fn new(vb: VarBuilder, s: &Shared, i: usize, cin: usize, cout: usize, prev: usize) -> Result<Self> {
        let cfg = s.cfg;
        let n = cfg.block_out_channels.len();
        let level = n - 1 - i;
        let cross = cfg.up_block_types[i] == "CrossAttnUpBlock2D";
        let layers = cfg.layers_per_block + 1;
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for m in 0..layers {
            let skip = if m == layers - 1 { cin } else { cout };
            let res_in = if m == 0 { prev } else { cout };
            resnets.push(s.resnet(vb.pp("resnets").pp(m), res_in + skip, cout, 1.0)?);
            if cross {
                attentions.push(s.transformer(vb.pp("attentions").pp(m), cout, level)?);
            }
        }
        let upsampler = if i + 1 == n { None } else { Some(conv3x3(vb.pp("upsamplers").pp(0).pp("conv"), cout, cout, 1)?) };
        Ok(Self { resnets, attentions, upsampler })
    }

    fn forward(&self, x: &Tensor, skips: &mut Vec<Tensor>, temb: &Tensor, ctx: &Tensor, rec: Option<&CrossAttentionRecorder>) -> Result<Tensor> {
        let mut h = x.clone();
        for (m, resnet) in self.resnets.iter().enumerate() {
            let Some(skip) = skips.pop() else {
                candle_core::bail!("UNet2DConditionModel: the up path ran out of skip connections");
            };
            h = resnet.forward(&Tensor::cat(&[&h, &skip], 1)?, temb, Mode::Inference)?;
            if let Some(a) = self.attentions.get(m) {
                h = a.forward_recorded(&h, ctx, rec)?;
            }
        }
        match &self.upsampler {
            Some(u) => u.forward(&upsample_nearest(&h, 2)?),
            None => Ok(h),
        }
    }
}

/// SDXL's additional conditioning (diffusers `added_cond_kwargs`).
#[derive(Debug, Clone)]
pub struct AddedCond {
    /// `(B, pooled_dim)`: the second text encoder's projected pooled state.
    pub text_embeds: Tensor,
    /// `(B, 6)`: original height and width, crop top and left, target height and width, in pixels.
    pub time_ids: Tensor,
}

/// The Stable Diffusion U-Net `ε_θ(x_t, t, c)` (or `v_θ`), parameter names as diffusers'.
#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    cfg: UNet2DConditionConfig,
    conv_in: Conv2d,
    time_embedding: TimestepEmbedding,
    /// SDXL's `add_embedding` (`text_time`).
    add_embedding: Option<TimestepEmbedding>,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet2DConditionModel {
    /// Builds the network from `vb` (diffusers names at its root). `cfg` must be valid
    /// ([`UNet2DConditionConfig::validate`]).
    pub fn new(vb: VarBuilder, cfg: &UNet2DConditionConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let s = Shared { cfg, temb: cfg.time_embed_dim() };
        let mut down_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            down_blocks.push(DownBlock::new(vb.pp("down_blocks").pp(i), &s, i, cin, ch[i])?);
        }
        let mut up_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let (cout, prev) = (ch[n - 1 - i], ch[(n - i).min(n - 1)]);
            let cin = ch[(n - 1).saturating_sub(i + 1)];
            up_blocks.push(UpBlock::new(vb.pp("up_blocks").pp(i), &s, i, cin, cout, prev)?);
        }
        Ok(Self {
            cfg: cfg.clone(),
            conv_in: conv3x3(vb.pp("conv_in"), cfg.in_channels, ch[0], 1)?,
            time_embedding: TimestepEmbedding::new(vb.pp("time_embedding"), ch[0], s.temb)?,
            add_embedding: match cfg.projection_class_embeddings_input_dim.filter(|_| cfg.has_text_time()) {
                Some(dim) => Some(TimestepEmbedding::new(vb.pp("add_embedding"), dim, s.temb)?),
                None => None,
            },
            down_blocks,
            mid_block: MidBlock::new(vb.pp("mid_block"), &s, ch[n - 1])?,
            up_blocks,
            conv_norm_out: GroupNorm::new(vb.pp("conv_norm_out"), cfg.norm_num_groups, ch[0], cfg.norm_eps)?,
            conv_out: conv3x3(vb.pp("conv_out"), ch[0], cfg.out_channels, 1)?,
        })
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &UNet2DConditionConfig {
        &self.cfg
    }

    /// One call of the network.
    ///
    /// # Shapes
    /// - `x`: `(B, in_channels, H, W)`, `H` and `W` multiples of 2^(levels−1)
    /// - `timesteps`: `(B,)` f32 training timesteps (fractional values allowed)
    /// - `encoder_hidden_states`: `(B, tokens, cross_attention_dim)`
    /// - returns `(B, out_channels, H, W)`
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, encoder_hidden_states: &Tensor) -> Result<Tensor> {
        self.forward_added(x, timesteps, encoder_hidden_states, None)
    }

    /// [`UNet2DConditionModel::forward`] with SDXL's additional conditioning, required iff the
    /// config has `addition_embed_type = "text_time"`: the six size numbers are each embedded
    /// sinusoidally (`addition_time_embed_dim` wide), concatenated after the pooled text
    /// embedding, and `add_embedding` of that is added to the time embedding
    /// (diffusers `get_aug_embed`, Podell et al. 2023, §2.2).
    pub fn forward_added(&self, x: &Tensor, timesteps: &Tensor, encoder_hidden_states: &Tensor, added: Option<&AddedCond>) -> Result<Tensor> {
        self.forward_recorded(x, timesteps, encoder_hidden_states, added, None)
    }

    /// [`UNet2DConditionModel::forward_added`] with every cross-attention layer handed to
    /// `recorder` (per-token maps, DAAM; see [`CrossAttentionRecorder`]); the output is the
    /// same as without it.
    pub fn forward_recorded(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        recorder: Option<&CrossAttentionRecorder>,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (b, c, h, w) = x.dims4()?;
        let f = 1usize << (cfg.block_out_channels.len() - 1);
        if c != cfg.in_channels || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
            candle_core::bail!(
                "UNet2DConditionModel: input {:?} must have {} channels and a size that is a multiple of {f}",
                x.dims(),
                cfg.in_channels
            );
        }
        match encoder_hidden_states.dims() {
            [cb, _, d] if *cb == b && *d == cfg.cross_attention_dim => {}
            d => candle_core::bail!(
                "UNet2DConditionModel: encoder_hidden_states must be ({b}, tokens, {}), got {d:?}",
                cfg.cross_attention_dim
            ),
        }
        // 1. time
        let t_emb = timestep_embedding(timesteps, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)?;
        let mut temb = self.time_embedding.forward(&t_emb.to_dtype(x.dtype())?)?;
        match (&self.add_embedding, added) {
            (Some(add), Some(a)) => {
                let dim = cfg.addition_time_embed_dim.unwrap_or(0);
                let n = a.time_ids.elem_count();
                let sizes = timestep_embedding(&a.time_ids.flatten_all()?, dim, cfg.flip_sin_to_cos, cfg.freq_shift)?
                    .reshape((b, n / b * dim))?;
                let add_in = Tensor::cat(&[&a.text_embeds.to_dtype(x.dtype())?, &sizes.to_dtype(x.dtype())?], 1)?;
                temb = (temb + add.forward(&add_in)?)?;
            }
            (Some(_), None) => candle_core::bail!("UNet2DConditionModel: this SDXL network needs text_embeds and time_ids"),
            (None, Some(_)) => candle_core::bail!("UNet2DConditionModel: text_embeds and time_ids given to a network without addition_embed_type"),
            (None, None) => {}
        }
        // 2. pre-process
        let mut h = self.conv_in.forward(x)?;
        // 3. down
        let mut skips = vec![h.clone()];
        for block in &self.down_blocks {
            let (out, s) = block.forward(&h, &temb, encoder_hidden_states, recorder)?;
            h = out;
            skips.extend(s);
        }
        // 4. mid
        h = self.mid_block.forward(&h, &temb, encoder_hidden_states, recorder)?;
        // 5. up
        for block in &self.up_blocks {
            h = block.forward(&h, &mut skips, &temb, encoder_hidden_states, recorder)?;
        }
        // 6. post-process
        self.conv_out.forward(&self.conv_norm_out.forward_silu(&h)?)
    }
}
