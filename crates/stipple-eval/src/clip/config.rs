//! A CLIP folder's `config.json` (transformers' `CLIPConfig`: `text_config`, `vision_config`,
//! `projection_dim`), read into the configs of Stipple's text encoder and vision tower.
//!
//! Keys that change the forward pass are read, with `CLIPTextConfig`'s and
//! `CLIPVisionConfig`'s defaults (transformers 5.25) where a key is missing; the many other
//! keys transformers writes (generation settings, labels, dropout) are ignored.

use std::path::Path;

use serde::Deserialize;
use stipple_nn::text::{HiddenAct, TextEncoderConfig};
use stipple_nn::ClipVisionConfig;

use crate::EvalError;

/// What Stipple needs of a `CLIPConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TextEncoderConfig,
    pub vision: ClipVisionConfig,
    /// Width of the joint image–text space (`text_projection`, `visual_projection`).
    pub projection_dim: usize,
    /// `text_config.eos_token_id`: where the text is pooled (see `ClipModel::text_features`).
    pub eos_token_id: u32,
}

/// transformers' legacy `eos_token_id` (configs written before its PR #24773): the text is
/// pooled at the largest token id instead.
pub const LEGACY_EOS_TOKEN_ID: u32 = 2;

#[derive(Deserialize)]
struct Root {
    model_type: Option<String>,
    text_config: Option<HfText>,
    vision_config: Option<HfVision>,
    #[serde(default = "default_projection")]
    projection_dim: usize,
}

fn default_projection() -> usize {
    512
}

/// `CLIPTextConfig`'s keys and defaults.
#[derive(Deserialize)]
#[serde(default)]
struct HfText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: String,
    layer_norm_eps: f64,
    eos_token_id: u32,
}

impl Default for HfText {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }
}

/// `CLIPVisionConfig`'s keys and defaults.
#[derive(Deserialize)]
#[serde(default)]
struct HfVision {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_channels: usize,
    image_size: usize,
    patch_size: usize,
    hidden_act: String,
    layer_norm_eps: f64,
}

impl Default for HfVision {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

fn activation(name: &str, part: &str) -> Result<HiddenAct, String> {
    match name {
        "quick_gelu" => Ok(HiddenAct::QuickGelu),
        "gelu" => Ok(HiddenAct::Gelu),
        other => Err(format!("{part}.hidden_act \"{other}\" is not supported; accepted: quick_gelu, gelu")),
    }
}

impl ClipConfig {
    /// Reads and checks `path` (a `config.json`).
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io("read", path, e))?;
        Self::from_json(&text).map_err(|reason| EvalError::WrongArchitecture { path: path.to_path_buf(), architecture: "CLIP", reason })
    }

    /// Parses a `CLIPConfig` document; the error says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let root: Root = serde_json::from_str(text).map_err(|e| format!("not a CLIPConfig document: {e}"))?;
        if let Some(t) = root.model_type.as_deref().filter(|t| *t != "clip") {
            return Err(format!("model_type is \"{t}\"; a CLIP model (model_type \"clip\") is expected"));
        }
        let (Some(t), Some(v)) = (root.text_config, root.vision_config) else {
            return Err("a CLIPModel config needs both text_config and vision_config".into());
        };
        let text = TextEncoderConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.hidden_size,
            intermediate_size: t.intermediate_size,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            max_position_embeddings: t.max_position_embeddings,
            hidden_act: activation(&t.hidden_act, "text_config")?,
            layer_norm_eps: t.layer_norm_eps,
        };
        text.validate().map_err(|e| format!("text_config: {e}"))?;
        let vision = ClipVisionConfig {
            hidden_size: v.hidden_size,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            num_channels: v.num_channels,
            image_size: v.image_size,
            patch_size: v.patch_size,
            hidden_act: activation(&v.hidden_act, "vision_config")?,
            layer_norm_eps: v.layer_norm_eps,
        };
        vision.validate().map_err(|e| e.to_string())?;
        if vision.num_channels != 3 {
            return Err(format!("vision_config.num_channels = {}; CLIP's image processor gives 3 (RGB)", vision.num_channels));
        }
        if root.projection_dim == 0 {
            return Err("projection_dim must be at least 1".into());
        }
        Ok(Self { text, vision, projection_dim: root.projection_dim, eos_token_id: t.eos_token_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_transformers_and_other_models_are_refused() {
        let c = ClipConfig::from_json(r#"{"model_type": "clip", "text_config": {"bad_words_ids": null}, "vision_config": {}}"#).unwrap();
        assert_eq!((c.text.hidden_size, c.text.max_position_embeddings, c.eos_token_id), (512, 77, 49407));
        assert_eq!((c.vision.image_size, c.vision.patch_size, c.projection_dim), (224, 32, 512));
        let e = ClipConfig::from_json(r#"{"model_type": "siglip", "text_config": {}, "vision_config": {}}"#).unwrap_err();
        assert!(e.contains("siglip"), "{e}");
        let e = ClipConfig::from_json(r#"{"_class_name": "UNet2DConditionModel", "sample_size": 64}"#).unwrap_err();
        assert!(e.contains("text_config and vision_config"), "{e}");
        let e = ClipConfig::from_json(r#"{"text_config": {"hidden_act": "relu"}, "vision_config": {}}"#).unwrap_err();
        assert!(e.contains("quick_gelu, gelu"), "{e}");
        let e = ClipConfig::from_json(r#"{"text_config": {}, "vision_config": {"patch_size": 30}}"#).unwrap_err();
        assert!(e.contains("patch_size = 30"), "{e}");
    }
}
