//! The configurations of a Stable Diffusion checkpoint's parts: read from a diffusers folder,
//! or those of the released models for a single file that carries none.

use std::path::Path;

use stipple_math::Prediction;
use stipple_nn::text::{HiddenAct, TextEncoderConfig};

use crate::{Architecture, AutoencoderKLConfig, SchedulerConfig, SdError, UNet2DConditionConfig};

/// The configs of a checkpoint's parts.
#[derive(Debug, Clone, PartialEq)]
pub struct SdConfigs {
    pub unet: UNet2DConditionConfig,
    pub vae: AutoencoderKLConfig,
    pub text_encoder: TextEncoderConfig,
    /// SDXL's second text encoder and the width of its `text_projection`.
    pub text_encoder_2: Option<(TextEncoderConfig, usize)>,
    pub scheduler: SchedulerConfig,
}

/// The text of a config file; the error names it.
pub(crate) fn read(path: &Path) -> Result<String, SdError> {
    std::fs::read_to_string(path).map_err(|e| SdError::io(path, e))
}

fn config<T>(path: &Path, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, SdError> {
    parse(&read(path)?).map_err(|m| SdError::config(path, m))
}

pub(crate) fn text_config(path: &Path) -> Result<TextEncoderConfig, SdError> {
    TextEncoderConfig::from_hf_json(&read(path)?).map_err(|e| SdError::config(path, e.to_string()))
}

/// A `CLIPTextModelWithProjection` config: the encoder's and `projection_dim` (transformers'
/// default 512 when absent).
fn projected_text_config(path: &Path) -> Result<(TextEncoderConfig, usize), SdError> {
    let raw: serde_json::Value = serde_json::from_str(&read(path)?).map_err(|e| SdError::config(path, format!("not valid JSON: {e}")))?;
    let projection_dim = raw.get("projection_dim").and_then(|v| v.as_u64()).unwrap_or(512) as usize;
    Ok((text_config(path)?, projection_dim))
}

impl SdConfigs {
    /// `unet/config.json`, `vae/config.json`, `text_encoder/config.json` and
    /// `scheduler/scheduler_config.json` of a diffusers folder.
    pub fn from_folder(dir: &Path) -> Result<Self, SdError> {
        Ok(Self {
            unet: config(&dir.join("unet").join("config.json"), UNet2DConditionConfig::from_json)?,
            vae: config(&dir.join("vae").join("config.json"), AutoencoderKLConfig::from_json)?,
            text_encoder: text_config(&dir.join("text_encoder").join("config.json"))?,
            text_encoder_2: match dir.join("text_encoder_2").join("config.json") {
                p if p.is_file() => Some(projected_text_config(&p)?),
                _ => None,
            },
            scheduler: config(&dir.join("scheduler").join("scheduler_config.json"), SchedulerConfig::from_json)?,
        })
    }

    /// The configs of the released models, as diffusers converts `v1-inference.yaml` and
    /// `v2-inference(-v).yaml`: the KL-f8 autoencoder and a U-Net of 320–1280 channels for both;
    /// SD 1.x with 8 heads everywhere, 1×1-convolution projections and CLIP ViT-L/14 (12 layers
    /// of 768, quick GELU), ε-prediction; SD 2.x with 64-channel heads (5, 10, 20, 20), linear
    /// projections and OpenCLIP ViT-H/14 up to its penultimate layer (23 of 24 layers of 1024,
    /// GELU), v-prediction unless told otherwise. SDXL base: 320–1280 channels over three
    /// levels with 1, 2 and 10 transformer blocks, 64-channel heads, CLIP ViT-L/14 and OpenCLIP
    /// ViT-bigG/14 (32 layers of 1280, projection 1280), size conditioning, ε-prediction, the
    /// autoencoder's scaling factor 0.13025.
    pub fn released(arch: Architecture, in_channels: usize) -> Result<Self, SdError> {
        if arch == Architecture::SdxlBase {
            return Self::released_sdxl(in_channels);
        }
        if arch == Architecture::SdxlRefiner {
            return Err(SdError::Invalid(format!("no released configs for {arch} in this build")));
        }
        let sd2 = arch == Architecture::Sd2;
        let unet_json = if sd2 {
            r#"{"cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": true}"#
        } else {
            r#"{"cross_attention_dim": 768}"#
        };
        let mut unet = UNet2DConditionConfig::from_json(unet_json).map_err(SdError::Invalid)?;
        unet.in_channels = in_channels;
        let vae = AutoencoderKLConfig::from_json(r#"{"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2}"#)
            .map_err(SdError::Invalid)?;
        let (hidden, layers, act) = if sd2 { (1024, 23, HiddenAct::Gelu) } else { (768, 12, HiddenAct::QuickGelu) };
        let text = released_clip(hidden, layers, act);
        let scheduler = SchedulerConfig::stable_diffusion(if sd2 { Prediction::VPrediction } else { Prediction::Epsilon });
        Ok(Self { unet, vae, text_encoder: text, text_encoder_2: None, scheduler })
    }

    fn released_sdxl(in_channels: usize) -> Result<Self, SdError> {
        let mut unet = UNet2DConditionConfig::from_json(
            r#"{"block_out_channels": [320, 640, 1280],
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
                "cross_attention_dim": 2048, "use_linear_projection": true, "addition_embed_type": "text_time",
                "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816}"#,
        )
        .map_err(SdError::Invalid)?;
        unet.in_channels = in_channels;
        let vae = AutoencoderKLConfig::from_json(
            r#"{"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "scaling_factor": 0.13025}"#,
        )
        .map_err(SdError::Invalid)?;
        Ok(Self {
            unet,
            vae,
            text_encoder: released_clip(768, 12, HiddenAct::QuickGelu),
            text_encoder_2: Some((released_clip(1280, 32, HiddenAct::Gelu), 1280)),
            scheduler: SchedulerConfig::stable_diffusion(Prediction::Epsilon),
        })
    }
}

/// The released CLIP / OpenCLIP text encoders: the 49,408-token BPE vocabulary, 77 positions,
/// 64-channel heads and a 4× MLP; `layers` of width `hidden` with activation `act`.
fn released_clip(hidden: usize, layers: usize, act: HiddenAct) -> TextEncoderConfig {
    TextEncoderConfig {
        vocab_size: 49408,
        hidden_size: hidden,
        intermediate_size: 4 * hidden,
        num_hidden_layers: layers,
        num_attention_heads: hidden / 64,
        max_position_embeddings: 77,
        hidden_act: act,
        layer_norm_eps: 1e-5,
    }
}
