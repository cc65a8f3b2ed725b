//! `DiffWave`: the non-causal WaveNet-like denoiser of Kong et al. 2021, *DiffWave: A
//! Versatile Diffusion Model for Audio Synthesis* (ICLR), §3 and Figure 2, as the reference
//! implementation lmnt-com/diffwave (`src/diffwave/model.py`) builds it, without the
//! mel-spectrogram conditioner and with an optional class embedding.
//!
//! `x → input_projection (1×1) → ReLU → N residual layers → Σ skips / √N → skip_projection
//! (1×1) → ReLU → output_projection (1×1, zero-initialised)`; residual layer `i`:
//! `y = dilated_conv(h + diffusion_projection(e))` (kernel 3, dilation `2^(i mod cycle)`,
//! "same" padding), `z = σ(y_gate) ⊙ tanh(y_filter)` (the first half of the channels is the
//! gate), `[r, s] = output_projection(z)` (1×1), `h ← (h + r)/√2`, skip `s`. The step
//! embedding `e` is the sinusoidal [`step_embedding`] through two linear layers, each
//! followed by SiLU (to `embedding_dim` = 512 in the reference); a class embedding, when
//! configured, is added to `e` (its last row is the "no label" token of classifier-free
//! guidance, as for the 2-D U-Net).
//!
//! Parameter names are the reference's state-dict keys (`input_projection`,
//! `diffusion_embedding.projection1`, `residual_layers.{i}.dilated_conv`, …).

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv1dConfig, Embedding, Linear, VarBuilder};

use crate::conv1d::{conv1d as conv1d_layer, Conv1d};
use crate::ops::conv1d::{conv1d, conv1d_add};
use crate::DiffWaveConfig;

/// Width of the sinusoidal diffusion-step embedding (64 frequencies, sine and cosine).
pub const STEP_EMBEDDING_DIM: usize = 128;

/// The sinusoidal diffusion-step embedding of Kong et al. 2021, §3 ("Diffusion-step
/// embedding"): `[sin(10^(0·4/63)·t), …, sin(10^(63·4/63)·t), cos(10^(0·4/63)·t), …,
/// cos(10^(63·4/63)·t)]`.
///
/// Evaluated in f64 at the given (continuous) `t`, then cast: with frequencies up to 10⁴ the
/// arguments reach 10⁷ for a thousand steps, beyond f32's precision. The reference builds an
/// f32 table of integer steps and interpolates it linearly between them; at integer steps the
/// two agree (to that table's rounding).
///
/// # Shapes
/// - `timesteps`: `(B,)`, any float dtype
/// - returns `(B, 128)` in `dtype`
pub fn step_embedding(timesteps: &Tensor, dtype: DType) -> Result<Tensor> {
    let half = STEP_EMBEDDING_DIM / 2;
    let freqs: Vec<f64> = (0..half).map(|i| 10f64.powf(i as f64 * 4.0 / 63.0)).collect();
    let freqs = Tensor::from_vec(freqs, (1, half), timesteps.device())?;
    let args = timesteps.to_dtype(DType::F64)?.unsqueeze(1)?.broadcast_mul(&freqs)?;
    Tensor::cat(&[args.sin()?, args.cos()?], 1)?.to_dtype(dtype)
}

/// One residual layer (the reference's `ResidualBlock`, unconditional).
#[derive(Debug, Clone)]
struct ResidualLayer {
    dilated_conv: Conv1d,
    diffusion_projection: Linear,
    output_projection: Conv1d,
    channels: usize,
}

impl ResidualLayer {
    fn new(vb: VarBuilder, channels: usize, dilation: usize, embedding_dim: usize) -> Result<Self> {
        let dilated = Conv1dConfig { padding: dilation, dilation, ..Default::default() };
        Ok(Self {
            dilated_conv: conv1d_layer(channels, 2 * channels, 3, dilated, vb.pp("dilated_conv"))?,
            diffusion_projection: candle_nn::linear(embedding_dim, channels, vb.pp("diffusion_projection"))?,
            output_projection: conv1d_layer(channels, 2 * channels, 1, Conv1dConfig::default(), vb.pp("output_projection"))?,
            channels,
        })
    }

    /// Layer `k` on the running sums of the residual path, `g`, and of the skips, `skip`
    /// (none before the first layer), with `a = √2^k`: returns the next `g` (none when `last`:
    /// the reference discards the last layer's residual) and the new sum of skips.
    ///
    /// The reference's recursion `h_{k+1} = (h_k + r_k)/√2` is kept as the unscaled sum
    /// `g_k = √2^k·h_k`: `g_{k+1} = g_k + √2^k·r_k`, and the layer's input `h_k + step` is
    /// `(g_k + √2^k·step)/√2^k`, the `1/√2^k` folded into the dilated convolution's weight.
    /// So both sums grow by a convolution added in the same pass ([`conv1d_add`]), no pass
    /// scales `h`, the gated unit is one op ([`crate::ops::gated_tanh`]), and the output
    /// projection runs as two 1×1 convolutions on the halves of its weight (no `narrow` of a
    /// `(B, 2C, L)` tensor, whose gradient would be a zero-padded copy of it).
    fn forward(&self, g: &Tensor, a: f64, emb: &Tensor, skip: Option<&Tensor>, last: bool) -> Result<(Option<Tensor>, Tensor)> {
        let c = self.channels;
        let step = (self.diffusion_projection.forward(emb)? * a)?;
        let dilated = &self.dilated_conv;
        let y = conv1d(&crate::ops::add_shift(g, &step)?, &(dilated.weight() / a)?, dilated.bias(), dilated.config())?;
        let z = crate::ops::gated_tanh(&y)?;
        let (w, b, cfg) = (self.output_projection.weight(), self.output_projection.bias(), self.output_projection.config());
        let half = |start: usize, scale: f64| -> Result<(Tensor, Option<Tensor>)> {
            let bias = b.map(|b| b.narrow(0, start, c)?.affine(scale, 0.0)).transpose()?;
            Ok((w.narrow(0, start, c)?.affine(scale, 0.0)?, bias))
        };
        let (ws, bs) = half(c, 1.0)?;
        let skip = match skip {
            Some(sum) => conv1d_add(&z, &ws, bs.as_ref(), sum, cfg)?,
            None => conv1d(&z, &ws, bs.as_ref(), cfg)?,
        };
        if last {
            return Ok((None, skip));
        }
        let (wr, br) = half(0, a)?;
        Ok((Some(conv1d_add(&z, &wr, br.as_ref(), g, cfg)?), skip))
    }
}

/// The DiffWave denoiser network `F(x, t, class)`.
#[derive(Debug, Clone)]
pub struct DiffWave {
    cfg: DiffWaveConfig,
    input_projection: Conv1d,
    projection1: Linear,
    projection2: Linear,
    class_embedding: Option<Embedding>,
    residual_layers: Vec<ResidualLayer>,
    skip_projection: Conv1d,
    output_projection: Conv1d,
}

impl DiffWave {
    /// Builds the network, taking every parameter from `vb` (a `VarMap`-backed builder
    /// initialises fresh weights: Kaiming-normal convolutions as the reference, the last
    /// projection zero). The config is validated first.
    pub fn new(vb: VarBuilder, cfg: &DiffWaveConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        let (c, e) = (cfg.residual_channels, cfg.embedding_dim);
        let pointwise = Conv1dConfig::default();
        let emb = vb.pp("diffusion_embedding");
        let residual_layers =
            (0..cfg.residual_layers).map(|i| ResidualLayer::new(vb.pp("residual_layers").pp(i), c, cfg.dilation(i), e)).collect::<Result<_>>()?;
        // The reference zero-initialises the last weight (`nn.init.zeros_`), so a fresh network
        // predicts 0 (its bias keeps PyTorch's default initialisation).
        let out = vb.pp("output_projection");
        let out_weight = out.get_with_hints((cfg.out_channels, c, 1), "weight", candle_nn::Init::Const(0.0))?;
        let bound = 1. / (c as f64).sqrt();
        let out_bias = out.get_with_hints(cfg.out_channels, "bias", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self {
            cfg: cfg.clone(),
            input_projection: conv1d_layer(cfg.in_channels, c, 1, pointwise, vb.pp("input_projection"))?,
            projection1: candle_nn::linear(STEP_EMBEDDING_DIM, e, emb.pp("projection1"))?,
            projection2: candle_nn::linear(e, e, emb.pp("projection2"))?,
            class_embedding: match cfg.num_class_embeds {
                Some(k) => Some(candle_nn::embedding(k, e, vb.pp("class_embedding"))?),
                None => None,
            },
            residual_layers,
            skip_projection: conv1d_layer(c, c, 1, pointwise, vb.pp("skip_projection"))?,
            output_projection: Conv1d::new(out_weight, Some(out_bias), pointwise),
        })
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &DiffWaveConfig {
        &self.cfg
    }

    /// The diffusion-step embedding after its two projections (each followed by SiLU, as
    /// the reference's `DiffusionEmbedding`), plus the class embedding when there is one.
    fn embedding(&self, timesteps: &Tensor, class_labels: Option<&Tensor>, b: usize, dtype: DType) -> Result<Tensor> {
        let t = match timesteps.dims() {
            [n] if *n == b => timesteps.clone(),
            [] | [1] => timesteps.reshape(1)?.broadcast_as(b)?.contiguous()?,
            d => candle_core::bail!("DiffWave: timesteps must have shape ({b},), got {d:?}"),
        };
        let e = step_embedding(&t, dtype)?;
        let e = self.projection2.forward(&self.projection1.forward(&e)?.silu()?)?.silu()?;
        match (&self.class_embedding, class_labels) {
            (Some(table), Some(labels)) => {
                if labels.dims() != [b] {
                    candle_core::bail!("DiffWave: class_labels must have shape ({b},), got {:?}", labels.dims());
                }
                e + table.forward(&labels.to_dtype(DType::U32)?)?.to_dtype(dtype)?
            }
            (Some(_), None) => candle_core::bail!("DiffWave: class_labels are required (num_class_embeds is set)"),
            (None, Some(_)) => candle_core::bail!("DiffWave: class_labels given but the model has no class embedding (num_class_embeds is None)"),
            (None, None) => Ok(e),
        }
    }

    /// # Shapes
    /// - `x`: `(B, in_channels, L)`, any length `L ≥ 1`
    /// - `timesteps`: `(B,)` (or `(1,)`, broadcast), continuous values, any float dtype
    /// - `class_labels`: `(B,)` integer labels below `num_class_embeds`, required iff it is set
    /// - returns `(B, out_channels, L)`
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, class_labels: Option<&Tensor>) -> Result<Tensor> {
        let (b, c, _) = x.dims3()?;
        if c != self.cfg.in_channels {
            candle_core::bail!("DiffWave: input has {c} channels, the model expects in_channels = {}", self.cfg.in_channels);
        }
        let emb = self.embedding(timesteps, class_labels, b, x.dtype())?;
        let mut g = self.input_projection.forward(x)?.relu()?;
        let mut skip: Option<Tensor> = None;
        let n = self.residual_layers.len();
        for (k, layer) in self.residual_layers.iter().enumerate() {
            let (next, sum) = layer.forward(&g, std::f64::consts::SQRT_2.powi(k as i32), &emb, skip.as_ref(), k + 1 == n)?;
            skip = Some(sum);
            g = next.unwrap_or(g);
        }
        let skip = skip.expect("validate() ensures at least one residual layer");
        // skip_projection(Σ skips / √N), the 1/√N folded into its weight.
        let p = &self.skip_projection;
        let w = (p.weight() / (n as f64).sqrt())?;
        self.output_projection.forward(&conv1d(&skip, &w, p.bias(), p.config())?.relu()?)
    }
}
