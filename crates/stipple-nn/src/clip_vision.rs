//! `ClipVisionTransformer`: CLIP's image encoder, a Vision Transformer (Dosovitskiy et al.
//! 2021; Radford et al. 2021, §2.4) with transformers' `CLIPVisionModel` parameter names
//! (`vision_model.embeddings.patch_embedding`, `vision_model.pre_layrnorm` — transformers'
//! spelling —, `vision_model.encoder.layers.N.…`, `vision_model.post_layernorm`), so pretrained
//! CLIP weights load unchanged.
//!
//! Source: transformers `models/clip/modeling_clip.py` (`CLIPVisionEmbeddings`,
//! `CLIPVisionTransformer`): non-overlapping `patch × patch` patches embedded by a convolution
//! without bias (stride = patch size), a learned class embedding in front, learned position
//! embeddings added → `pre_layrnorm` → the pre-LN layers of the text encoder without a mask →
//! `post_layernorm` of the class token (the pooled output, which `visual_projection` maps to
//! CLIP's joint space).
//!
//! A network part, so it lives here beside the text encoder whose layers it shares.

use candle_core::{Result, Tensor};
use candle_nn::{Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::layer_norm::LayerNorm;
use crate::ops::Conv2d;
use crate::text::{EncoderLayer, HiddenAct, LayerDims};
use crate::NnError;

/// Configuration of [`ClipVisionTransformer`], under the keys of transformers'
/// `CLIPVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipVisionConfig {
    /// Width of every token's hidden state.
    pub hidden_size: usize,
    /// Width of the MLP inside each layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Heads of each self-attention (must divide `hidden_size`).
    pub num_attention_heads: usize,
    /// Channels of the input image (CLIP: 3).
    pub num_channels: usize,
    /// Side of the square input image in pixels.
    pub image_size: usize,
    /// Side of a patch (must divide `image_size`).
    pub patch_size: usize,
    /// MLP activation.
    pub hidden_act: HiddenAct,
    /// Epsilon of every LayerNorm (CLIP: 1e-5).
    pub layer_norm_eps: f64,
}

impl ClipVisionConfig {
    /// Checks sizes; messages name the key.
    pub fn validate(&self) -> std::result::Result<(), NnError> {
        let bad = |m: String| Err(NnError::Text(format!("CLIP vision config: {m}")));
        let sizes = [self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.num_channels, self.image_size, self.patch_size];
        if sizes.contains(&0) {
            return bad("hidden_size, intermediate_size, num_hidden_layers, num_channels, image_size and patch_size must be at least 1".into());
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!("num_attention_heads = {} must divide hidden_size = {}", self.num_attention_heads, self.hidden_size));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!("patch_size = {} must divide image_size = {}", self.patch_size, self.image_size));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!("layer_norm_eps must be finite and > 0, got {}", self.layer_norm_eps));
        }
        Ok(())
    }

    /// Tokens the encoder sees: one per patch and the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }

    fn layer_dims(&self) -> LayerDims {
        LayerDims {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_attention_heads: self.num_attention_heads,
            layer_norm_eps: self.layer_norm_eps,
            hidden_act: self.hidden_act,
        }
    }
}

/// CLIP's vision transformer, up to its pooled output.
#[derive(Debug, Clone)]
pub struct ClipVisionTransformer {
    cfg: ClipVisionConfig,
    patch_embedding: Conv2d,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    /// Builds the tower from `vb` at the root of the names (`vb` should be prefixed with
    /// `vision_model` by the caller when the names carry it).
    pub fn new(vb: VarBuilder, cfg: &ClipVisionConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        let (h, p) = (cfg.hidden_size, cfg.patch_size);
        let emb = vb.pp("embeddings");
        let init = candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        let weight = emb.pp("patch_embedding").get_with_hints((h, cfg.num_channels, p, p), "weight", init)?;
        let class_embedding = emb.get_with_hints(h, "class_embedding", init)?;
        let position_embedding = emb.pp("position_embedding").get_with_hints((cfg.num_positions(), h), "weight", init)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::new(vb.pp("encoder").pp("layers").pp(i), cfg.layer_dims()))
            .collect::<Result<_>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            patch_embedding: Conv2d::from_parts(weight, None, p, 0),
            class_embedding,
            position_embedding,
            pre_layrnorm: LayerNorm::new(vb.pp("pre_layrnorm"), h, cfg.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), h, cfg.layer_norm_eps)?,
        })
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.cfg
    }

    /// The pooled output: `post_layernorm` of the class token's last hidden state.
    ///
    /// # Shapes
    /// - `pixel_values`: `(B, num_channels, image_size, image_size)` f32, as the image
    ///   processor normalises them
    /// - returns `(B, hidden_size)`
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, c, height, width) = pixel_values.dims4()?;
        let s = self.cfg.image_size;
        if (c, height, width) != (self.cfg.num_channels, s, s) {
            candle_core::bail!("CLIP vision tower: expected {} channels of {s}×{s} pixels, got {c} of {height}×{width}", self.cfg.num_channels);
        }
        let h = self.cfg.hidden_size;
        let patches = self.patch_embedding.forward(pixel_values)?.flatten_from(2)?.transpose(1, 2)?; // (B, patches, H)
        let class = self.class_embedding.reshape((1, 1, h))?.broadcast_as((b, 1, h))?;
        let mut x = Tensor::cat(&[&class, &patches], 1)?.broadcast_add(&self.position_embedding)?;
        x = self.pre_layrnorm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, None)?;
        }
        self.post_layernorm.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn tiny() -> ClipVisionConfig {
        ClipVisionConfig {
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_channels: 3,
            image_size: 8,
            patch_size: 4,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    #[test]
    fn names_and_shapes_are_transformers() {
        let shapes = crate::record_shapes(|vb| ClipVisionTransformer::new(vb, &tiny()).map(|_| ())).unwrap();
        let find = |n: &str| shapes.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone()).unwrap_or_else(|| panic!("no {n}"));
        assert_eq!(find("embeddings.patch_embedding.weight"), vec![8, 3, 4, 4]);
        assert_eq!(find("embeddings.class_embedding"), vec![8]);
        assert_eq!(find("embeddings.position_embedding.weight"), vec![5, 8]);
        assert_eq!(find("pre_layrnorm.weight"), vec![8]);
        assert_eq!(find("encoder.layers.1.mlp.fc1.weight"), vec![12, 8]);
        assert_eq!(find("post_layernorm.bias"), vec![8]);
        assert!(shapes.iter().all(|(k, _)| k != "embeddings.patch_embedding.bias"), "the patch convolution has no bias");
    }

    #[test]
    fn pooled_output_shape_and_input_check() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let tower = ClipVisionTransformer::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &tiny()).unwrap();
        let x = Tensor::randn(0f32, 1., (2, 3, 8, 8), &dev).unwrap();
        assert_eq!(tower.forward(&x).unwrap().dims(), &[2, 8]);
        let wrong = Tensor::zeros((1, 3, 12, 8), DType::F32, &dev).unwrap();
        assert!(tower.forward(&wrong).unwrap_err().to_string().contains("8×8"));
    }

    #[test]
    fn config_validation_names_the_key() {
        let c = ClipVisionConfig { patch_size: 3, ..tiny() };
        assert!(c.validate().unwrap_err().to_string().contains("patch_size = 3"));
        let c = ClipVisionConfig { num_attention_heads: 3, ..tiny() };
        assert!(c.validate().unwrap_err().to_string().contains("num_attention_heads"));
    }
}
