//! `AutoencoderKL`: the KL-regularised autoencoder that maps images to Stable Diffusion's
//! latents and back (Rombach et al. 2022, §3.1 and Appendix G).
//!
//! Source: diffusers `src/diffusers/models/autoencoders/autoencoder_kl.py` (`AutoencoderKL`),
//! `autoencoders/vae.py` (`Encoder`, `Decoder`) and `unet_2d_blocks.py` (`DownEncoderBlock2D`,
//! `UpDecoderBlock2D`, `UNetMidBlock2D` with one single-head attention). Every resnet has no
//! time input; GroupNorms use ε = 1e-6. `encode` returns the mean of the latent distribution
//! (the first `latent_channels` of `quant_conv`'s output; the rest is log σ²), `decode` the
//! image in [−1, 1] (not clamped). Neither applies `scaling_factor`: see [`AutoencoderKL::scaling_factor`].

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use stipple_nn::attention::SpatialAttention;
use stipple_nn::ops::{upsample_nearest, Conv2d, GroupNorm};
use stipple_nn::resnet::{ResnetBlock2D, ResnetSpec};

/// GroupNorm ε of every layer of the autoencoder (diffusers `Encoder`/`Decoder`: 1e-6).
const EPS: f64 = 1e-6;

/// Configuration of [`AutoencoderKL`], diffusers' `vae/config.json` keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AutoencoderKLConfig {
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Channels of each level. diffusers default: (64,); Stable Diffusion: (128, 256, 512, 512).
    #[serde(default = "block_out")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder level (decoder levels have one more). diffusers default: 1.
    #[serde(default = "one")]
    pub layers_per_block: usize,
    #[serde(default = "four")]
    pub latent_channels: usize,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    /// The latents the U-Net sees are `scaling_factor ×` the encoder's (SD 1.x: 0.18215).
    #[serde(default = "scaling")]
    pub scaling_factor: f64,
    #[serde(default = "yes")]
    pub use_quant_conv: bool,
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Image size the autoencoder was trained at; the tile size of [`AutoencoderKL::decode_tiled`]
    /// and [`AutoencoderKL::encode_tiled`].
    #[serde(default)]
    pub sample_size: Option<usize>,
    #[serde(default)]
    pub down_block_types: Option<Vec<String>>,
    #[serde(default)]
    pub up_block_types: Option<Vec<String>>,
}

fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn one() -> usize {
    1
}
fn groups() -> usize {
    32
}
fn scaling() -> f64 {
    0.18215
}
fn yes() -> bool {
    true
}
fn block_out() -> Vec<usize> {
    vec![64]
}

impl AutoencoderKLConfig {
    /// Reads a diffusers `vae/config.json`; the error message names the offending key.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| format!("not an AutoencoderKL config: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the sizes once, at load.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let n = self.block_out_channels.len();
        if n == 0 || self.layers_per_block == 0 || self.latent_channels == 0 {
            return Err("block_out_channels, layers_per_block and latent_channels must be non-empty / ≥ 1".into());
        }
        let kinds = |v: &Option<Vec<String>>, want: &str| v.as_ref().is_none_or(|v| v.len() == n && v.iter().all(|t| t == want));
        if !kinds(&self.down_block_types, "DownEncoderBlock2D") || !kinds(&self.up_block_types, "UpDecoderBlock2D") {
            return Err(format!("only DownEncoderBlock2D / UpDecoderBlock2D blocks, {n} of each, are supported"));
        }
        if self.shift_factor.is_some_and(|s| s != 0.0) {
            return Err("shift_factor is not supported (Stable Diffusion 1.x/2.x/XL autoencoders have none)".into());
        }
        if let Some(c) = self.block_out_channels.iter().find(|c| self.norm_num_groups == 0 || !c.is_multiple_of(self.norm_num_groups)) {
            return Err(format!("norm_num_groups = {} must divide every block_out_channels entry ({c})", self.norm_num_groups));
        }
        Ok(())
    }

    fn resnet(&self, cin: usize, cout: usize) -> ResnetSpec {
        ResnetSpec {
            in_channels: cin,
            out_channels: cout,
            temb_channels: 0,
            groups: self.norm_num_groups,
            eps: EPS,
            dropout: 0.0,
            output_scale_factor: 1.0,
        }
    }
}

/// `UNetMidBlock2D` without time: `resnets.0`, `attentions.0` (one head), `resnets.1`.
#[derive(Debug, Clone)]
struct MidBlock {
    resnet_0: ResnetBlock2D,
    attention: Option<SpatialAttention>,
    resnet_1: ResnetBlock2D,
}

impl MidBlock {
    fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig, c: usize) -> Result<Self> {
        let attention = if cfg.mid_block_add_attention {
            Some(SpatialAttention::new(vb.pp("attentions").pp(0), c, 1, cfg.norm_num_groups, EPS, 1.0)?)
        } else {
            None
        };
        Ok(Self {
            resnet_0: ResnetBlock2D::without_time(vb.pp("resnets").pp(0), &cfg.resnet(c, c))?,
            attention,
            resnet_1: ResnetBlock2D::without_time(vb.pp("resnets").pp(1), &cfg.resnet(c, c))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.resnet_0.forward_without_time(x)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.resnet_1.forward_without_time(&h)
    }
}

/// A level of resnets and an optional resampling convolution (`downsamplers.0.conv` /
/// `upsamplers.0.conv`).
#[derive(Debug, Clone)]
struct Level {
    resnets: Vec<ResnetBlock2D>,
    resample: Option<Conv2d>,
}

impl Level {
    fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig, cin: usize, cout: usize, layers: usize, resample: Option<&str>) -> Result<Self> {
        let resnets = (0..layers)
            .map(|m| ResnetBlock2D::without_time(vb.pp("resnets").pp(m), &cfg.resnet(if m == 0 { cin } else { cout }, cout)))
            .collect::<Result<_>>()?;
        let resample = match resample {
            // Downsample2D(padding=0): pad right and bottom by one, 3×3 stride 2.
            Some("downsamplers") => Some(Conv2d::new(vb.pp("downsamplers").pp(0).pp("conv"), cout, cout, 3, 2, 0)?),
            Some(_) => Some(Conv2d::new(vb.pp("upsamplers").pp(0).pp("conv"), cout, cout, 3, 1, 1)?),
            None => None,
        };
        Ok(Self { resnets, resample })
    }

    fn forward(&self, x: &Tensor, down: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for r in &self.resnets {
            h = r.forward_without_time(&h)?;
        }
        match (&self.resample, down) {
            (Some(c), true) => c.forward(&h.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?),
            (Some(c), false) => c.forward(&upsample_nearest(&h, 2)?),
            (None, _) => Ok(h),
        }
    }
}

/// diffusers `Encoder` (`double_z=True`): `conv_in`, `down_blocks`, `mid_block`,
/// `conv_norm_out`, SiLU, `conv_out` to 2 × latent channels.
#[derive(Debug, Clone)]
struct Encoder {
    conv_in: Conv2d,
    levels: Vec<Level>,
    mid: MidBlock,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let levels = (0..n)
            .map(|i| {
                let resample = (i + 1 < n).then_some("downsamplers");
                Level::new(vb.pp("down_blocks").pp(i), cfg, if i == 0 { ch[0] } else { ch[i - 1] }, ch[i], cfg.layers_per_block, resample)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            conv_in: Conv2d::new(vb.pp("conv_in"), cfg.in_channels, ch[0], 3, 1, 1)?,
            levels,
            mid: MidBlock::new(vb.pp("mid_block"), cfg, ch[n - 1])?,
            norm_out: GroupNorm::new(vb.pp("conv_norm_out"), cfg.norm_num_groups, ch[n - 1], EPS)?,
            conv_out: Conv2d::new(vb.pp("conv_out"), ch[n - 1], 2 * cfg.latent_channels, 3, 1, 1)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for l in &self.levels {
            h = l.forward(&h, true)?;
        }
        let h = self.mid.forward(&h)?;
        self.conv_out.forward(&self.norm_out.forward_silu(&h)?)
    }
}

/// diffusers `Decoder`: `conv_in`, `mid_block`, `up_blocks` (lowest resolution first),
/// `conv_norm_out`, SiLU, `conv_out`.
#[derive(Debug, Clone)]
struct Decoder {
    conv_in: Conv2d,
    mid: MidBlock,
    levels: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let levels = (0..n)
            .map(|i| {
                let (prev, cout) = (ch[n - i.max(1)], ch[n - 1 - i]);
                let resample = (i + 1 < n).then_some("upsamplers");
                Level::new(vb.pp("up_blocks").pp(i), cfg, prev, cout, cfg.layers_per_block + 1, resample)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            conv_in: Conv2d::new(vb.pp("conv_in"), cfg.latent_channels, ch[n - 1], 3, 1, 1)?,
            mid: MidBlock::new(vb.pp("mid_block"), cfg, ch[n - 1])?,
            levels,
            norm_out: GroupNorm::new(vb.pp("conv_norm_out"), cfg.norm_num_groups, ch[0], EPS)?,
            conv_out: Conv2d::new(vb.pp("conv_out"), ch[0], cfg.out_channels, 3, 1, 1)?,
        })
    }

    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.mid.forward(&self.conv_in.forward(z)?)?;
        for l in &self.levels {
            h = l.forward(&h, false)?;
        }
        self.conv_out.forward(&self.norm_out.forward_silu(&h)?)
    }
}

/// The autoencoder: `encoder`, `quant_conv`, `post_quant_conv`, `decoder`.
#[derive(Debug, Clone)]
pub struct AutoencoderKL {
    cfg: AutoencoderKLConfig,
    encoder: Encoder,
    quant_conv: Option<Conv2d>,
    post_quant_conv: Option<Conv2d>,
    decoder: Decoder,
}

impl AutoencoderKL {
    pub fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let l = cfg.latent_channels;
        Ok(Self {
            cfg: cfg.clone(),
            encoder: Encoder::new(vb.pp("encoder"), cfg)?,
            quant_conv: cfg.use_quant_conv.then(|| Conv2d::new(vb.pp("quant_conv"), 2 * l, 2 * l, 1, 1, 0)).transpose()?,
            post_quant_conv: cfg.use_post_quant_conv.then(|| Conv2d::new(vb.pp("post_quant_conv"), l, l, 1, 1, 0)).transpose()?,
            decoder: Decoder::new(vb.pp("decoder"), cfg)?,
        })
    }

    pub fn config(&self) -> &AutoencoderKLConfig {
        &self.cfg
    }

    /// The factor between the encoder's latents and the U-Net's (`latents · scaling_factor`
    /// before sampling, `/ scaling_factor` before decoding, as diffusers' pipelines do).
    pub fn scaling_factor(&self) -> f64 {
        self.cfg.scaling_factor
    }

    /// The mean of the latent distribution `q(z | x)` (diffusers `encode(x).latent_dist.mean`).
    ///
    /// # Shapes
    /// - `image`: `(B, in_channels, H, W)` in [−1, 1], `H`, `W` multiples of 2^(levels−1)
    /// - returns `(B, latent_channels, H / 2^(levels−1), W / 2^(levels−1))`
    pub fn encode(&self, image: &Tensor) -> Result<Tensor> {
        self.moments(image)?.narrow(1, 0, self.cfg.latent_channels)
    }

    /// `quant_conv(encoder(image))`: `[mean, log σ²]` along the channels.
    fn moments(&self, image: &Tensor) -> Result<Tensor> {
        let moments = self.encoder.forward(image)?;
        match &self.quant_conv {
            Some(q) => q.forward(&moments),
            None => Ok(moments),
        }
    }

    /// Mean and standard deviation of the latent distribution `q(z | x)`: the channels of
    /// `quant_conv`'s output are `[mean, log σ²]`, log σ² clamped to [−30, 20], σ = exp(½ log σ²)
    /// (diffusers `DiagonalGaussianDistribution`; Kingma & Welling 2014, the reparameterised
    /// sample is `mean + σ·ε`).
    ///
    /// # Shapes
    /// As [`AutoencoderKL::encode`], twice.
    pub fn encode_distribution(&self, image: &Tensor) -> Result<(Tensor, Tensor)> {
        let moments = self.moments(image)?;
        let l = self.cfg.latent_channels;
        let logvar = moments.narrow(1, l, l)?.clamp(-30f32, 20f32)?;
        Ok((moments.narrow(1, 0, l)?, (logvar * 0.5)?.exp()?))
    }

    /// [`AutoencoderKL::decode`] in overlapping tiles, for images too large to decode at once
    /// (diffusers `AutoencoderKL.tiled_decode`, as after `enable_tiling()`): latent tiles of
    /// `sample_size / 2^(levels−1)` every ¾ tile, each decoded alone; each tile's first quarter
    /// (`sample_size / 4` pixels) is blended linearly with the tile above and the one to the
    /// left (already blended, row by row), and the first `¾ · sample_size` pixels of each are
    /// kept. Latents no larger than one tile are decoded whole.
    ///
    /// # Shapes
    /// As [`AutoencoderKL::decode`].
    pub fn decode_tiled(&self, z: &Tensor) -> Result<Tensor> {
        let (sample, latent) = self.tile_sizes()?;
        tiled(z, latent, sample, |t| self.decode(t))
    }

    /// [`AutoencoderKL::encode`] in overlapping tiles (diffusers `_tiled_encode`): image tiles of
    /// `sample_size` every ¾ tile, each encoded alone, blended over a quarter latent tile as
    /// [`AutoencoderKL::decode_tiled`] blends. Images no larger than one tile are encoded whole.
    ///
    /// # Shapes
    /// As [`AutoencoderKL::encode`].
    pub fn encode_tiled(&self, image: &Tensor) -> Result<Tensor> {
        let (sample, latent) = self.tile_sizes()?;
        tiled(image, sample, latent, |t| self.moments(t))?.narrow(1, 0, self.cfg.latent_channels)
    }

    /// `(sample_size, sample_size / 2^(levels−1))`: the tile sizes in pixels and in latents.
    fn tile_sizes(&self) -> Result<(usize, usize)> {
        let Some(sample) = self.cfg.sample_size else {
            candle_core::bail!("AutoencoderKL: tiling needs sample_size in the config (the tile size)");
        };
        let latent = sample >> (self.cfg.block_out_channels.len() - 1);
        if latent * 3 / 4 == 0 {
            candle_core::bail!("AutoencoderKL: sample_size {sample} makes tiles too small to overlap");
        }
        Ok((sample, latent))
    }

    /// The image of latents `z` (diffusers `decode(z).sample`), not clamped.
    ///
    /// # Shapes
    /// - `z`: `(B, latent_channels, h, w)`
    /// - returns `(B, out_channels, h · 2^(levels−1), w · 2^(levels−1))`
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(z)?,
            None => z.clone(),
        };
        self.decoder.forward(&z)
    }
}

/// diffusers' tiling (`tiled_decode`, `_tiled_encode`): `run` on tiles of `tile_in` every
/// `⌊¾ · tile_in⌋` of `x`, each output's first `⌊tile_out / 4⌋` rows and columns blended with the
/// (already blended) tile above and to the left, the first `tile_out − ⌊tile_out / 4⌋` of each kept.
/// `x` no larger than one tile is run whole.
fn tiled(x: &Tensor, tile_in: usize, tile_out: usize, run: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h <= tile_in && w <= tile_in {
        return run(x);
    }
    let overlap = (tile_in as f64 * 0.75) as usize;
    let blend = (tile_out as f64 * 0.25) as usize;
    let limit = tile_out - blend;
    let mut grid: Vec<Vec<Tensor>> = Vec::new();
    for i in (0..h).step_by(overlap) {
        let row = (0..w)
            .step_by(overlap)
            .map(|j| run(&x.narrow(2, i, tile_in.min(h - i))?.narrow(3, j, tile_in.min(w - j))?))
            .collect::<Result<Vec<_>>>()?;
        grid.push(row);
    }
    let mut rows = Vec::with_capacity(grid.len());
    for i in 0..grid.len() {
        let mut parts = Vec::with_capacity(grid[i].len());
        for j in 0..grid[i].len() {
            let mut t = grid[i][j].clone();
            if i > 0 {
                t = blend_edge(&grid[i - 1][j], &t, blend, 2)?;
            }
            if j > 0 {
                t = blend_edge(&grid[i][j - 1], &t, blend, 3)?;
            }
            grid[i][j] = t.clone();
            let (th, tw) = (t.dim(2)?, t.dim(3)?);
            parts.push(t.narrow(2, 0, limit.min(th))?.narrow(3, 0, limit.min(tw))?);
        }
        rows.push(Tensor::cat(&parts, 3)?);
    }
    Tensor::cat(&rows, 2)
}

/// diffusers `blend_v` (`dim` 2) / `blend_h` (`dim` 3): the first `e = min(extent, sizes)` rows
/// (columns) of `b` become `a[end − e + y]·(1 − y/e) + b[y]·(y/e)`.
fn blend_edge(a: &Tensor, b: &Tensor, extent: usize, dim: usize) -> Result<Tensor> {
    let (na, nb) = (a.dim(dim)?, b.dim(dim)?);
    let e = extent.min(na).min(nb);
    if e == 0 {
        return Ok(b.clone());
    }
    let mut shape = vec![1; 4];
    shape[dim] = e;
    let up: Vec<f32> = (0..e).map(|y| (y as f64 / e as f64) as f32).collect();
    let down: Vec<f32> = (0..e).map(|y| (1.0 - y as f64 / e as f64) as f32).collect();
    let up = Tensor::from_vec(up, shape.clone(), b.device())?;
    let down = Tensor::from_vec(down, shape, b.device())?;
    let blended = (a.narrow(dim, na - e, e)?.broadcast_mul(&down)? + b.narrow(dim, 0, e)?.broadcast_mul(&up)?)?;
    Tensor::cat(&[&blended, &b.narrow(dim, e, nb - e)?], dim)
}
