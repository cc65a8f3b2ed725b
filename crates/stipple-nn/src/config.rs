//! `UNetConfig`: the hyper-parameters of diffusers' `UNet2DModel`, under diffusers' own keys.
//!
//! Source: diffusers `src/diffusers/models/unets/unet_2d.py` (`UNet2DModel.__init__`), whose
//! `config.json` keys and defaults are reproduced here so that a diffusers config deserializes
//! (see [`UNetConfig::from_diffusers_json`] for the keys we accept only at their default value).

use serde::{Deserialize, Serialize};

use crate::NnError;

/// A down block of the encoder path (diffusers `get_down_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownBlockType {
    /// `layers_per_block` resnets, then a stride-2 conv downsampler (not on the last level).
    DownBlock2D,
    /// As `DownBlock2D`, with a self-attention after every resnet.
    AttnDownBlock2D,
    /// As `DownBlock2D`, with a spatial transformer (self- and cross-attention to the text
    /// encoder's states) after every resnet (diffusers `CrossAttnDownBlock2D`).
    CrossAttnDownBlock2D,
}

/// An up block of the decoder path (diffusers `get_up_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpBlockType {
    /// `layers_per_block + 1` resnets on skip-concatenated input, then nearest ×2 + conv.
    UpBlock2D,
    /// As `UpBlock2D`, with a self-attention after every resnet.
    AttnUpBlock2D,
    /// As `UpBlock2D`, with a spatial transformer after every resnet (diffusers `CrossAttnUpBlock2D`).
    CrossAttnUpBlock2D,
}

/// The attention layer a block puts after each resnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    None,
    /// diffusers `Attention` over the pixels.
    SelfAttention,
    /// diffusers `Transformer2DModel`: self-attention, cross-attention to the text, feed-forward.
    CrossAttention,
}

impl DownBlockType {
    pub fn attention(self) -> AttentionKind {
        match self {
            DownBlockType::DownBlock2D => AttentionKind::None,
            DownBlockType::AttnDownBlock2D => AttentionKind::SelfAttention,
            DownBlockType::CrossAttnDownBlock2D => AttentionKind::CrossAttention,
        }
    }

    pub fn has_attention(self) -> bool {
        self.attention() != AttentionKind::None
    }
}

impl UpBlockType {
    pub fn attention(self) -> AttentionKind {
        match self {
            UpBlockType::UpBlock2D => AttentionKind::None,
            UpBlockType::AttnUpBlock2D => AttentionKind::SelfAttention,
            UpBlockType::CrossAttnUpBlock2D => AttentionKind::CrossAttention,
        }
    }

    pub fn has_attention(self) -> bool {
        self.attention() != AttentionKind::None
    }
}

/// Configuration of [`crate::UNet2D`]. Defaults are diffusers' `UNet2DModel` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Height = width of the training images (informative; any size divisible by
    /// 2^(levels−1) works). diffusers default: None.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Channels of the input image. diffusers default: 3.
    #[serde(default = "d_three")]
    pub in_channels: usize,
    /// Channels of the output. diffusers default: 3.
    #[serde(default = "d_three")]
    pub out_channels: usize,
    /// Multiplies the input by 2 and subtracts 1 before `conv_in`. diffusers default: false.
    #[serde(default)]
    pub center_input_sample: bool,
    /// Sinusoidal embedding order: `[cos, sin]` when true. diffusers default: true.
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift` of `get_timestep_embedding`. diffusers default: 0.
    #[serde(default)]
    pub freq_shift: f64,
    /// Down block kinds, one per resolution level. diffusers default: one plain, three attention.
    #[serde(default = "d_down_types")]
    pub down_block_types: Vec<DownBlockType>,
    /// Up block kinds, lowest resolution first. diffusers default: three attention, one plain.
    #[serde(default = "d_up_types")]
    pub up_block_types: Vec<UpBlockType>,
    /// Output channels of each level. diffusers default: (224, 448, 672, 896).
    #[serde(default = "d_block_out_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per down block (up blocks get one more). diffusers default: 2.
    #[serde(default = "d_two")]
    pub layers_per_block: usize,
    /// Output scale of the mid block's resnets and attention. diffusers default: 1.
    #[serde(default = "d_one_f64")]
    pub mid_block_scale_factor: f64,
    /// Dropout probability inside every resnet (between `norm2`/SiLU and `conv2`). diffusers default: 0.
    #[serde(default)]
    pub dropout: f64,
    /// Channels per attention head; `None` = one head over all channels. diffusers default: 8.
    #[serde(default = "d_head_dim")]
    pub attention_head_dim: Option<usize>,
    /// Groups of every GroupNorm. diffusers default: 32.
    #[serde(default = "d_groups")]
    pub norm_num_groups: usize,
    /// Epsilon of every GroupNorm. diffusers default: 1e-5.
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    /// Attention in the mid block. diffusers default: true.
    #[serde(default = "d_true")]
    pub add_attention: bool,
    /// Number of classes of a class embedding added to the time embedding. diffusers default: None.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    /// Width of the text encoder's hidden states read by the cross-attention blocks; set for a
    /// text-conditioned U-Net (then the mid block is a `UNetMidBlock2DCrossAttn`, as in
    /// diffusers' `UNet2DConditionModel`). diffusers `UNet2DModel` has no such key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_attention_dim: Option<usize>,
}

fn d_three() -> usize {
    3
}
fn d_two() -> usize {
    2
}
fn d_true() -> bool {
    true
}
fn d_one_f64() -> f64 {
    1.0
}
fn d_head_dim() -> Option<usize> {
    Some(8)
}
fn d_groups() -> usize {
    32
}
fn d_eps() -> f64 {
    1e-5
}
fn d_block_out_channels() -> Vec<usize> {
    vec![224, 448, 672, 896]
}
fn d_down_types() -> Vec<DownBlockType> {
    use DownBlockType::*;
    vec![DownBlock2D, AttnDownBlock2D, AttnDownBlock2D, AttnDownBlock2D]
}
fn d_up_types() -> Vec<UpBlockType> {
    use UpBlockType::*;
    vec![AttnUpBlock2D, AttnUpBlock2D, AttnUpBlock2D, UpBlock2D]
}

impl Default for UNetConfig {
    /// diffusers' `UNet2DModel()` with no arguments.
    fn default() -> Self {
        serde_json::from_str("{}").expect("all keys have defaults")
    }
}

/// diffusers keys we do not model, with the only value we accept for each (its default).
/// `None` = any value is accepted and ignored (it has no effect on a positional-time U-Net).
const FIXED_DIFFUSERS_KEYS: &[(&str, Option<&str>)] = &[
    ("time_embedding_type", Some("\"positional\"")),
    ("time_embedding_dim", Some("null")),
    ("mid_block_type", Some("\"UNetMidBlock2D\"")),
    ("downsample_padding", Some("1")),
    ("downsample_type", Some("\"conv\"")),
    ("upsample_type", Some("\"conv\"")),
    ("act_fn", Some("\"silu\"")),
    ("attn_norm_num_groups", Some("null")),
    ("resnet_time_scale_shift", Some("\"default\"")),
    ("class_embed_type", Some("null")),
    // Only read by diffusers for `time_embedding_type = "learned"`.
    ("num_train_timesteps", None),
];

impl UNetConfig {
    /// Reads a diffusers `UNet2DModel` `config.json`.
    ///
    /// Keys starting with `_` (`_class_name`, `_diffusers_version`, …) are dropped, after checking
    /// that `_class_name`, when present, is `UNet2DModel`. The keys of `FIXED_DIFFUSERS_KEYS`
    /// (e.g. `act_fn`, `resnet_time_scale_shift`) are accepted only at their default value and
    /// then dropped; everything else goes through the strict (`deny_unknown_fields`) struct and
    /// [`UNetConfig::validate`].
    pub fn from_diffusers_json(text: &str) -> Result<Self, NnError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| NnError::Config(format!("config is not valid JSON: {e}")))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(NnError::Config("config must be a JSON object".into()));
        };
        if let Some(class) = map.get("_class_name") {
            if class != "UNet2DModel" {
                return Err(NnError::Config(format!(
                    "_class_name is {class}, only \"UNet2DModel\" is supported"
                )));
            }
        }
        map.retain(|k, _| !k.starts_with('_'));
        for (key, accepted) in FIXED_DIFFUSERS_KEYS {
            if let Some(v) = map.remove(*key) {
                if let Some(accepted) = accepted {
                    let ok: serde_json::Value = serde_json::from_str(accepted).expect("valid literal");
                    if v != ok {
                        return Err(NnError::Config(format!(
                            "{key} = {v} is not supported (accepted: {accepted})"
                        )));
                    }
                }
            }
        }
        let cfg: UNetConfig = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| NnError::Config(format!("config does not parse: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A U-Net with self-attention at the chosen resolutions and as many GroupNorm groups (up to
    /// 32) as all widths allow (the DDPM paper's
    /// "attention at 16×16" convention): level `i` works at `sample_size / 2^i`, and it gets
    /// `AttnDownBlock2D` / `AttnUpBlock2D` when that resolution is listed. The mid block always
    /// has its attention (diffusers' default `add_attention = true`).
    /// Other keys keep diffusers' defaults except `attention_head_dim = None` (one head).
    pub fn with_attention_at(
        sample_size: usize,
        channels: usize,
        block_out_channels: &[usize],
        layers_per_block: usize,
        attention_resolutions: &[usize],
    ) -> Result<Self, NnError> {
        let levels = block_out_channels.len();
        let resolutions: Vec<usize> = (0..levels).map(|i| sample_size >> i).collect();
        for r in attention_resolutions {
            if !resolutions.contains(r) {
                return Err(NnError::Config(format!(
                    "attention resolution {r} is not one of the levels' resolutions {resolutions:?}"
                )));
            }
        }
        let attn: Vec<bool> = resolutions.iter().map(|r| attention_resolutions.contains(r)).collect();
        // GroupNorm's groups must divide every width: the largest such count up to 32
        // (diffusers' default).
        let gcd = block_out_channels.iter().fold(0, |a, &b| gcd(a, b));
        let norm_num_groups = (1..=32).rev().find(|g| gcd % g == 0).unwrap_or(1);
        let cfg = UNetConfig {
            norm_num_groups,
            sample_size: Some(sample_size),
            in_channels: channels,
            out_channels: channels,
            block_out_channels: block_out_channels.to_vec(),
            layers_per_block,
            down_block_types: attn
                .iter()
                .map(|&a| if a { DownBlockType::AttnDownBlock2D } else { DownBlockType::DownBlock2D })
                .collect(),
            up_block_types: attn
                .iter()
                .rev()
                .map(|&a| if a { UpBlockType::AttnUpBlock2D } else { UpBlockType::UpBlock2D })
                .collect(),
            attention_head_dim: None,
            ..UNetConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// A tiny U-Net for tests (45,259 parameters; the same as the diffusers conformance fixture).
    pub fn tiny() -> Self {
        use DownBlockType::*;
        use UpBlockType::*;
        UNetConfig {
            sample_size: Some(8), // 8×8 images: two levels, 8×8 and 4×4
            in_channels: 3,       // RGB
            out_channels: 3,      // ε / v / x₀ prediction has the input's shape
            center_input_sample: false,
            flip_sin_to_cos: true, // diffusers' default
            freq_shift: 0.0,       // diffusers' default
            down_block_types: vec![DownBlock2D, AttnDownBlock2D], // attention at the 4×4 level
            up_block_types: vec![AttnUpBlock2D, UpBlock2D],       // mirrored
            block_out_channels: vec![8, 16], // small but divisible by 4 groups and 8-wide heads
            layers_per_block: 1,             // one resnet per down level, two per up level
            mid_block_scale_factor: 1.0,     // diffusers' default
            dropout: 0.0,                    // tests set it when they need it
            attention_head_dim: Some(8),     // 16 channels → 2 heads at 4×4, to exercise heads
            norm_num_groups: 4,              // not 32: catches ports that hard-code 32 groups
            norm_eps: 1e-5,                  // diffusers' default
            add_attention: true,             // diffusers' default
            num_class_embeds: None,          // unconditional
            cross_attention_dim: None,       // no text
        }
    }

    /// The 32×32 RGB benchmark U-Net: DDPM-CIFAR-like widths without level attention.
    /// 6,140,675 parameters with diffusers' layout (see the test `bench_unet32_parameter_count`;
    /// up blocks have `layers_per_block + 1` ResBlocks on concatenated skips).
    pub fn bench_unet32() -> Self {
        use DownBlockType::*;
        use UpBlockType::*;
        UNetConfig {
            sample_size: Some(32), // 32×32 images → levels at 32, 16, 8
            in_channels: 3,        // RGB
            out_channels: 3,       // same shape as the input
            center_input_sample: false,
            flip_sin_to_cos: true, // diffusers' default
            freq_shift: 0.0,       // diffusers' default
            down_block_types: vec![DownBlock2D; 3], // no level attention…
            up_block_types: vec![UpBlock2D; 3],
            block_out_channels: vec![64, 128, 128], // time embedding 4·64 = 256 wide
            layers_per_block: 2,                    // 2 resnets down, 3 up per level
            mid_block_scale_factor: 1.0,            // diffusers' default
            dropout: 0.1,                           // DDPM's CIFAR-10 value
            attention_head_dim: None,               // one head over all 128 channels
            norm_num_groups: 32,                    // diffusers' default
            norm_eps: 1e-5,                         // diffusers' default
            add_attention: true,                    // …only the mid block attends
            num_class_embeds: None,                 // unconditional
            cross_attention_dim: None,              // no text
        }
    }

    /// The default network of `stipple train` on the built-in emoji: 16×16 RGB, three
    /// levels (16, 8, 4), sized so the default run takes minutes on two CPU cores.
    pub fn emoji16() -> Self {
        Self::with_attention_at(
            16,             // 16×16 emoji keep faces and objects readable
            3,              // RGB
            &[32, 64, 64],  // widths per level; time embedding 128 wide
            1,              // one ResBlock per down level (two per up level)
            &[8],           // self-attention at 8×8 (plus the mid block at 4×4)
        )
        .expect("valid preset")
    }

    /// The same network with every attention block (the mid block's too) turned into a spatial
    /// transformer that cross-attends to text states `context_dim` wide.
    pub fn with_text(mut self, context_dim: usize) -> Result<Self, NnError> {
        for t in &mut self.down_block_types {
            if t.has_attention() {
                *t = DownBlockType::CrossAttnDownBlock2D;
            }
        }
        for t in &mut self.up_block_types {
            if t.has_attention() {
                *t = UpBlockType::CrossAttnUpBlock2D;
            }
        }
        self.cross_attention_dim = Some(context_dim);
        self.validate()?;
        Ok(self)
    }

    /// The attention of the mid block: a spatial transformer for text-conditioned networks.
    pub fn mid_attention(&self) -> AttentionKind {
        match (self.add_attention, self.cross_attention_dim) {
            (false, _) => AttentionKind::None,
            (true, None) => AttentionKind::SelfAttention,
            (true, Some(_)) => AttentionKind::CrossAttention,
        }
    }

    /// Resolutions (pixels) of the levels whose blocks have self-attention.
    pub fn attention_resolutions(&self) -> Vec<usize> {
        let size = self.sample_size.unwrap_or(0);
        self.down_block_types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.has_attention())
            .map(|(i, _)| size >> i)
            .collect()
    }

    /// Width of the time embedding: `4 · block_out_channels[0]` (diffusers `time_embed_dim`).
    pub fn time_embed_dim(&self) -> usize {
        self.block_out_channels[0] * 4
    }

    /// Heads of an attention over `channels` channels: `channels / attention_head_dim`
    /// (diffusers passes `attention_head_dim or channels`).
    pub fn attention_heads(&self, channels: usize) -> usize {
        channels / self.attention_head_dim.unwrap_or(channels)
    }

    /// Checks everything the network needs; messages name the key and the accepted values.
    pub fn validate(&self) -> Result<(), NnError> {
        let err = |m: String| Err(NnError::Config(m));
        let n = self.block_out_channels.len();
        if n == 0 {
            return err("block_out_channels must not be empty".into());
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return err(format!(
                "down_block_types ({}) and up_block_types ({}) must have one entry per block_out_channels entry ({n})",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return err("in_channels and out_channels must be at least 1".into());
        }
        if self.layers_per_block == 0 {
            return err("layers_per_block must be at least 1".into());
        }
        if self.norm_num_groups == 0 {
            return err("norm_num_groups must be at least 1".into());
        }
        for &c in &self.block_out_channels {
            if c == 0 || c % self.norm_num_groups != 0 {
                return err(format!(
                    "every block_out_channels entry must be a positive multiple of norm_num_groups = {}; got {c} in {:?}",
                    self.norm_num_groups, self.block_out_channels
                ));
            }
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return err(format!("norm_eps must be finite and > 0, got {}", self.norm_eps));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if !(self.mid_block_scale_factor.is_finite() && self.mid_block_scale_factor > 0.0) {
            return err(format!("mid_block_scale_factor must be finite and > 0, got {}", self.mid_block_scale_factor));
        }
        if !self.freq_shift.is_finite() || self.freq_shift >= (self.block_out_channels[0] / 2) as f64 {
            return err(format!(
                "freq_shift must be finite and < block_out_channels[0] / 2 = {}, got {}",
                self.block_out_channels[0] / 2,
                self.freq_shift
            ));
        }
        if self.block_out_channels[0] < 2 {
            return err("block_out_channels[0] must be at least 2 (sinusoidal embedding)".into());
        }
        if self.num_class_embeds == Some(0) {
            return err("num_class_embeds must be None or at least 1".into());
        }
        let cross_blocks = self.down_block_types.iter().any(|t| t.attention() == AttentionKind::CrossAttention)
            || self.up_block_types.iter().any(|t| t.attention() == AttentionKind::CrossAttention);
        match self.cross_attention_dim {
            Some(0) => return err("cross_attention_dim must be None or at least 1".into()),
            None if cross_blocks => {
                return err("CrossAttnDownBlock2D / CrossAttnUpBlock2D blocks need cross_attention_dim (the text encoder's width)".into())
            }
            _ => {}
        }
        if self.attention_head_dim == Some(0) {
            return err("attention_head_dim must be None or at least 1".into());
        }
        // Channels of every attention: the level's width, and the last width in the mid block.
        let mut attn_channels: Vec<usize> = Vec::new();
        for (i, t) in self.down_block_types.iter().enumerate() {
            if t.has_attention() {
                attn_channels.push(self.block_out_channels[i]);
            }
        }
        for (i, t) in self.up_block_types.iter().enumerate() {
            if t.has_attention() {
                attn_channels.push(self.block_out_channels[n - 1 - i]);
            }
        }
        if self.add_attention {
            attn_channels.push(self.block_out_channels[n - 1]);
        }
        if let Some(d) = self.attention_head_dim {
            if let Some(c) = attn_channels.iter().find(|&&c| c % d != 0) {
                return err(format!(
                    "attention_head_dim = {d} must divide the channels of every attention; {c} is not a multiple"
                ));
            }
        }
        if let Some(s) = self.sample_size {
            let f = 1usize << (n - 1);
            if s == 0 || s % f != 0 {
                return err(format!(
                    "sample_size = {s} must be a positive multiple of 2^(levels-1) = {f}"
                ));
            }
        }
        Ok(())
    }
}

/// Greatest common divisor (Euclid).
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
