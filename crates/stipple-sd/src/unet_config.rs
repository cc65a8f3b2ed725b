//! `UNet2DConditionConfig`: the hyper-parameters of diffusers' `UNet2DConditionModel`, read
//! from its `config.json` under diffusers' own keys and defaults.
//!
//! Source: diffusers `src/diffusers/models/unets/unet_2d_condition.py`
//! (`UNet2DConditionModel.__init__`). Keys this build does not implement are accepted only at
//! their default value; any other value is an error that names the key.

use serde::Deserialize;
use serde_json::{json, Value};

/// One value for every block, or one per block (diffusers accepts both).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    /// The value for down block `i` of `n`.
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v[i],
        }
    }

    fn len_ok(&self, n: usize) -> bool {
        matches!(self, PerBlock::One(_)) || matches!(self, PerBlock::Each(v) if v.len() == n)
    }
}

/// Configuration of [`crate::UNet2DConditionModel`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UNet2DConditionConfig {
    /// Latent channels in. diffusers default: 4.
    #[serde(default = "four")]
    pub in_channels: usize,
    /// Latent channels out. diffusers default: 4.
    #[serde(default = "four")]
    pub out_channels: usize,
    /// `[cos, sin]` order of the sinusoidal time embedding. diffusers default: true.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift` of the time embedding. diffusers default: 0.
    #[serde(default)]
    pub freq_shift: f64,
    /// `DownBlock2D` or `CrossAttnDownBlock2D`, one per level.
    #[serde(default = "down_types")]
    pub down_block_types: Vec<String>,
    /// `UpBlock2D` or `CrossAttnUpBlock2D`, lowest resolution first.
    #[serde(default = "up_types")]
    pub up_block_types: Vec<String>,
    /// Channels of each level. diffusers default: (320, 640, 1280, 1280).
    #[serde(default = "block_out")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per down block (up blocks have one more). diffusers default: 2.
    #[serde(default = "two")]
    pub layers_per_block: usize,
    /// Output scale of the mid block's resnets. diffusers default: 1.
    #[serde(default = "one_f64")]
    pub mid_block_scale_factor: f64,
    /// Groups of every GroupNorm. diffusers default: 32.
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    /// Epsilon of the resnets' GroupNorms. diffusers default: 1e-5.
    #[serde(default = "eps")]
    pub norm_eps: f64,
    /// Width of the text states. diffusers default: 1280.
    #[serde(default = "cross")]
    pub cross_attention_dim: usize,
    /// Transformer blocks per attention (SDXL: 1, 2, 10). diffusers default: 1.
    #[serde(default = "one_block")]
    pub transformer_layers_per_block: PerBlock,
    /// In `UNet2DConditionModel` this is the number of attention *heads* per level (a
    /// historical misnomer that diffusers keeps: SD 1.x has 8 heads everywhere, SD 2.x
    /// 5, 10, 20, 20), unless `num_attention_heads` is given. diffusers default: 8.
    #[serde(default = "eight")]
    pub attention_head_dim: PerBlock,
    /// Heads per level; when set it wins over `attention_head_dim`.
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    /// Linear (SD 2.x, SDXL) rather than 1×1-convolution (SD 1.x) transformer projections.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// `"text_time"` (SDXL): a pooled text embedding and six size numbers add to the time
    /// embedding. `None` otherwise.
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Width of the sinusoidal embedding of each size number (SDXL: 256).
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    /// Width of `[pooled text, size embeddings]` (SDXL base: 1280 + 6·256 = 2816).
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
}

fn four() -> usize {
    4
}
fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}
fn eight() -> PerBlock {
    PerBlock::One(8)
}
fn one_block() -> PerBlock {
    PerBlock::One(1)
}
fn one_f64() -> f64 {
    1.0
}
fn groups() -> usize {
    32
}
fn eps() -> f64 {
    1e-5
}
fn cross() -> usize {
    1280
}
fn block_out() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}
fn down_types() -> Vec<String> {
    ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"].map(String::from).to_vec()
}
fn up_types() -> Vec<String> {
    ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"].map(String::from).to_vec()
}

/// Keys of `UNet2DConditionModel` that this build implements only at these values (SDXL's
/// `addition_embed_type = "text_time"`, class embeddings, LCM's `time_cond_proj_dim`, …).
fn fixed_keys() -> Vec<(&'static str, Value)> {
    vec![
        ("center_input_sample", json!(false)),
        ("mid_block_type", json!("UNetMidBlock2DCrossAttn")),
        ("only_cross_attention", json!(false)),
        ("downsample_padding", json!(1)),
        ("act_fn", json!("silu")),
        ("dual_cross_attention", json!(false)),
        ("class_embed_type", Value::Null),
        ("num_class_embeds", Value::Null),
        ("resnet_time_scale_shift", json!("default")),
        ("resnet_skip_time_act", json!(false)),
        ("resnet_out_scale_factor", json!(1.0)),
        ("time_embedding_type", json!("positional")),
        ("time_embedding_dim", Value::Null),
        ("time_embedding_act_fn", Value::Null),
        ("timestep_post_act", Value::Null),
        ("time_cond_proj_dim", Value::Null),
        ("conv_in_kernel", json!(3)),
        ("conv_out_kernel", json!(3)),
        ("encoder_hid_dim", Value::Null),
        ("attention_type", json!("default")),
        ("class_embeddings_concat", json!(false)),
        ("mid_block_only_cross_attention", Value::Null),
        ("cross_attention_norm", Value::Null),
        ("reverse_transformer_layers_per_block", Value::Null),
    ]
}

impl UNet2DConditionConfig {
    /// Reads a diffusers `unet/config.json`; the error message names the offending key.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        for (key, default) in fixed_keys() {
            if let Some(v) = value.get(key) {
                let same = v == &default || (v.is_number() && default.is_number() && v.as_f64() == default.as_f64());
                if !same {
                    return Err(format!("{key} = {v} is not supported by this build (only {default})"));
                }
            }
        }
        let cfg: Self = serde_json::from_value(value).map_err(|e| format!("not a UNet2DConditionModel config: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the sizes once, at load.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "block_out_channels, down_block_types and up_block_types must have the same length ≥ 1, got {}, {}, {}",
                n,
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for t in &self.down_block_types {
            if t != "DownBlock2D" && t != "CrossAttnDownBlock2D" {
                return Err(format!("down block {t:?} is not supported (DownBlock2D, CrossAttnDownBlock2D)"));
            }
        }
        for t in &self.up_block_types {
            if t != "UpBlock2D" && t != "CrossAttnUpBlock2D" {
                return Err(format!("up block {t:?} is not supported (UpBlock2D, CrossAttnUpBlock2D)"));
            }
        }
        if self.layers_per_block == 0 || self.cross_attention_dim == 0 {
            return Err("layers_per_block and cross_attention_dim must be at least 1".into());
        }
        for (name, v) in [("attention_head_dim", Some(&self.attention_head_dim)), ("num_attention_heads", self.num_attention_heads.as_ref()), ("transformer_layers_per_block", Some(&self.transformer_layers_per_block))] {
            if let Some(v) = v {
                if !v.len_ok(n) {
                    return Err(format!("{name} must be one number or {n} numbers, got {v:?}"));
                }
            }
        }
        match (self.addition_embed_type.as_deref(), self.addition_time_embed_dim, self.projection_class_embeddings_input_dim) {
            (None, _, _) | (Some("text_time"), Some(1..), Some(1..)) => {}
            (Some("text_time"), _, _) => {
                return Err("addition_embed_type \"text_time\" needs addition_time_embed_dim and projection_class_embeddings_input_dim".into())
            }
            (Some(other), _, _) => return Err(format!("addition_embed_type = {other:?} is not supported (only \"text_time\", SDXL)")),
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            let g = self.norm_num_groups;
            if g == 0 || !c.is_multiple_of(g) {
                return Err(format!("norm_num_groups = {g} must divide block_out_channels[{i}] = {c}"));
            }
            let h = self.heads(i);
            if h == 0 || !c.is_multiple_of(h) {
                return Err(format!("{h} attention heads must divide block_out_channels[{i}] = {c}"));
            }
        }
        Ok(())
    }

    /// Attention heads of down block `i` (up block `n−1−i`; the mid block has those of the
    /// last level), as `UNet2DConditionModel.__init__` resolves them.
    pub fn heads(&self, i: usize) -> usize {
        self.num_attention_heads.as_ref().unwrap_or(&self.attention_head_dim).get(i)
    }

    /// Whether the network reads SDXL's pooled text embedding and size numbers.
    pub fn has_text_time(&self) -> bool {
        self.addition_embed_type.is_some()
    }

    /// Width of the time embedding: 4 × the first level's channels.
    pub fn time_embed_dim(&self) -> usize {
        4 * self.block_out_channels[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_diffusers_sd15() {
        let c = UNet2DConditionConfig::from_json(r#"{"cross_attention_dim": 768}"#).unwrap();
        assert_eq!(c.block_out_channels, vec![320, 640, 1280, 1280]);
        assert_eq!((0..4).map(|i| c.heads(i)).collect::<Vec<_>>(), vec![8; 4]);
        assert!(!c.use_linear_projection);
    }

    #[test]
    fn unsupported_keys_are_named() {
        let e = UNet2DConditionConfig::from_json(r#"{"addition_embed_type": "text_time"}"#).unwrap_err();
        assert!(e.contains("addition_time_embed_dim"), "{e}");
        let e = UNet2DConditionConfig::from_json(r#"{"addition_embed_type": "image"}"#).unwrap_err();
        assert!(e.contains("addition_embed_type"), "{e}");
        let e = UNet2DConditionConfig::from_json(r#"{"norm_num_groups": 7}"#).unwrap_err();
        assert!(e.contains("norm_num_groups = 7"), "{e}");
        let e = UNet2DConditionConfig::from_json(r#"{"attention_head_dim": [5, 10]}"#).unwrap_err();
        assert!(e.contains("attention_head_dim"), "{e}");
    }
}
