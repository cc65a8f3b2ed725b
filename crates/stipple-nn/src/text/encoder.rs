//! `TextEncoder`: the CLIP text transformer (Radford et al. 2021, §2.4), the text encoder of
//! Stable Diffusion (Rombach et al. 2022), under Hugging Face transformers' `CLIPTextModel`
//! parameter names (`text_model.embeddings.token_embedding`, `text_model.encoder.layers.N.…`,
//! `text_model.final_layer_norm`), so pretrained CLIP weights load unchanged.
//!
//! Source: transformers `models/clip/modeling_clip.py` (`CLIPTextTransformer`): token +
//! learned position embeddings → pre-LN layers `x += attn(LN₁(x))` (causal mask),
//! `x += fc2(act(fc1(LN₂(x))))` → final LayerNorm. The output is the last hidden state of
//! every token, which the U-Net's cross-attention reads.
//!
//! Written here rather than taken from candle-transformers: its CLIP uses candle-nn's fused
//! LayerNorm, which has no backward, and Stipple trains this encoder jointly with the U-Net.

use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::config::{HiddenAct, TextEncoderConfig};
use crate::ops::attention;
use crate::layer_norm::LayerNorm;
use crate::linear::TokenLinear;

/// Multi-head self-attention (`self_attn.{q,k,v,out}_proj`), with the causal mask in the text
/// encoder and none in CLIP's vision tower.
#[derive(Debug, Clone)]
struct SelfAttention {
    q_proj: TokenLinear,
    k_proj: TokenLinear,
    v_proj: TokenLinear,
    out_proj: TokenLinear,
    heads: usize,
}

impl SelfAttention {
    fn new(vb: VarBuilder, dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q_proj: TokenLinear::new(vb.pp("q_proj"), dim, dim)?,
            k_proj: TokenLinear::new(vb.pp("k_proj"), dim, dim)?,
            v_proj: TokenLinear::new(vb.pp("v_proj"), dim, dim)?,
            out_proj: TokenLinear::new(vb.pp("out_proj"), dim, dim)?,
            heads,
        })
    }

    /// `x`: `(B, L, dim)`; `mask`: `(L, L)` additive (0 or a large negative number).
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let out = attention(&self.q_proj.forward(x)?, &self.k_proj.forward(x)?, &self.v_proj.forward(x)?, self.heads, mask)?;
        self.out_proj.forward(&out)
    }
}

/// The sizes of one encoder layer, shared by CLIP's text and vision transformers
/// (transformers' `CLIPEncoderLayer` reads the same keys from `CLIPTextConfig` and
/// `CLIPVisionConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerDims {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: HiddenAct,
}

impl From<&TextEncoderConfig> for LayerDims {
    fn from(c: &TextEncoderConfig) -> Self {
        Self {
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_attention_heads: c.num_attention_heads,
            layer_norm_eps: c.layer_norm_eps,
            hidden_act: c.hidden_act,
        }
    }
}

/// One pre-LN encoder layer (`layer_norm1`, `self_attn`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`):
/// transformers' `CLIPEncoderLayer`, of the text encoder and of CLIP's vision tower.
#[derive(Debug, Clone)]
pub(crate) struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: SelfAttention,
    layer_norm2: LayerNorm,
    fc1: TokenLinear,
    fc2: TokenLinear,
    act: HiddenAct,
}

impl EncoderLayer {
    pub(crate) fn new(vb: VarBuilder, c: LayerDims) -> Result<Self> {
        let (h, m) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), h, c.layer_norm_eps)?,
            self_attn: SelfAttention::new(vb.pp("self_attn"), h, c.num_attention_heads)?,
            layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), h, c.layer_norm_eps)?,
            fc1: TokenLinear::new(vb.pp("mlp").pp("fc1"), h, m)?,
            fc2: TokenLinear::new(vb.pp("mlp").pp("fc2"), m, h)?,
            act: c.hidden_act,
        })
    }

    /// `x += attn(LN₁(x))`, `x += fc2(act(fc1(LN₂(x))))`; `mask` as in the attention.
    ///
    /// # Shapes
    /// `x`: `(B, L, hidden_size)`; `mask`: `(L, L)`; returns `(B, L, hidden_size)`.
    pub(crate) fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self.self_attn.forward(&self.layer_norm1.forward(x)?, mask)?)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        let h = match self.act {
            HiddenAct::QuickGelu => (&h * candle_nn::ops::sigmoid(&(&h * 1.702)?)?)?,
            HiddenAct::Gelu => h.gelu_erf()?,
        };
        x + self.fc2.forward(&h)?
    }
}

/// The CLIP text transformer.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    cfg: TextEncoderConfig,
    token_embedding: Embedding,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
}

impl TextEncoder {
    /// Builds the encoder from `vb` at the root of the CLIP names (`vb` should be prefixed
    /// with `text_model` by the caller when the names carry it).
    pub fn new(vb: VarBuilder, cfg: &TextEncoderConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        let emb = vb.pp("embeddings");
        let init = candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        let token_embedding = Embedding::new(
            emb.pp("token_embedding").get_with_hints((cfg.vocab_size, cfg.hidden_size), "weight", init)?,
            cfg.hidden_size,
        );
        let position_embedding =
            emb.pp("position_embedding").get_with_hints((cfg.max_position_embeddings, cfg.hidden_size), "weight", init)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::new(vb.pp("encoder").pp("layers").pp(i), cfg.into()))
            .collect::<Result<_>>()?;
        let final_layer_norm = LayerNorm::new(vb.pp("final_layer_norm"), cfg.hidden_size, cfg.layer_norm_eps)?;
        Ok(Self { cfg: cfg.clone(), token_embedding, position_embedding, layers, final_layer_norm })
    }

    pub fn config(&self) -> &TextEncoderConfig {
        &self.cfg
    }

    /// The last hidden state of every token.
    ///
    /// # Shapes
    /// - `ids`: `(B, L)` u32 with `L ≤ max_position_embeddings`
    /// - returns `(B, L, hidden_size)` f32
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.forward_skip(ids, 1)
    }

    /// The hidden states as transformers' `output_hidden_states` gives them: the embeddings,
    /// then the output of every layer (`num_hidden_layers + 1` tensors), none through the
    /// final LayerNorm (SDXL reads the penultimate one as it is).
    ///
    /// # Shapes
    /// As [`TextEncoder::forward`], each.
    pub fn hidden_states(&self, ids: &Tensor) -> Result<Vec<Tensor>> {
        let (x, mask) = self.embed(ids)?;
        let mut out = Vec::with_capacity(self.layers.len() + 1);
        out.push(x);
        for layer in &self.layers {
            let next = layer.forward(&out[out.len() - 1], Some(&mask))?;
            out.push(next);
        }
        Ok(out)
    }

    /// The final LayerNorm (`final_layer_norm`), for states from [`TextEncoder::hidden_states`].
    pub fn final_layer_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.final_layer_norm.forward(x)
    }

    /// transformers' pooled output of `CLIPTextTransformer`: the final-LayerNormed last hidden
    /// state at one position of each row (the end-of-text token; which one is the caller's
    /// rule, as it depends on the checkpoint's `eos_token_id`), what `text_projection` maps to
    /// CLIP's joint space.
    ///
    /// # Shapes
    /// - `last_state`: `(B, L, hidden_size)`, the last entry of [`TextEncoder::hidden_states`]
    /// - `positions`: `B` indices below `L`
    /// - returns `(B, hidden_size)`
    pub fn pooled_output(&self, last_state: &Tensor, positions: &[usize]) -> Result<Tensor> {
        let (b, l, _) = last_state.dims3()?;
        if positions.len() != b || positions.iter().any(|&p| p >= l) {
            candle_core::bail!("text encoder: pooling positions {positions:?} do not fit {b} rows of {l} tokens");
        }
        let last = self.final_layer_norm.forward(last_state)?;
        let rows = positions.iter().enumerate().map(|(i, &p)| last.i((i, p))).collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0)
    }

    /// Token + position embeddings of `ids` and the causal mask.
    fn embed(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, l) = ids.dims2()?;
        if l > self.cfg.max_position_embeddings {
            candle_core::bail!("text encoder: {l} tokens, at most {} fit", self.cfg.max_position_embeddings);
        }
        let x = self.token_embedding.forward(ids)?.broadcast_add(&self.position_embedding.narrow(0, 0, l)?)?;
        let mask = causal_mask(l, ids.device())?.to_dtype(x.dtype())?;
        Ok((x, mask))
    }

    /// The hidden state of every token after the last `clip_skip − 1` layers are skipped,
    /// through the final LayerNorm: `clip_skip = 1` is [`TextEncoder::forward`], 2 the
    /// penultimate layer (the web UI's "Clip skip", diffusers' `clip_skip = clip_skip − 1`:
    /// `final_layer_norm(hidden_states[-(clip_skip + 1)])` in `encode_prompt`).
    ///
    /// # Shapes
    /// As [`TextEncoder::forward`].
    pub fn forward_skip(&self, ids: &Tensor, clip_skip: usize) -> Result<Tensor> {
        if clip_skip == 0 || clip_skip > self.layers.len() {
            candle_core::bail!("text encoder: clip skip must be in 1..={}, got {clip_skip}", self.layers.len());
        }
        let (mut x, mask) = self.embed(ids)?;
        for layer in &self.layers[..self.layers.len() + 1 - clip_skip] {
            x = layer.forward(&x, Some(&mask))?;
        }
        self.final_layer_norm.forward(&x)
    }
}

/// `(L, L)` additive mask: 0 where token j ≤ i may be attended, `f32::MIN` (transformers'
/// `finfo.min`) above the diagonal.
fn causal_mask(l: usize, device: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..l).flat_map(|i| (0..l).map(move |j| if j > i { f32::MIN } else { 0.0 })).collect();
    Tensor::from_vec(m, (l, l), device)
}
