//! `UNet1DConfig`: the hyper-parameters of the 1-D U-Net ([`super::UNet1D`]).
//!
//! The keys follow diffusers' `UNet2DModel` config where the meaning is the same
//! (`block_out_channels`, `layers_per_block`, `norm_num_groups`, `attention_head_dim`,
//! `num_class_embeds`, `sample_size`, which here is the sequence length); attention is chosen
//! per level as in lucidrains' `Unet1D` (`denoising_diffusion_pytorch_1d.py`, whose
//! `full_attn` flags pick the levels with full self-attention).

use serde::{Deserialize, Serialize};

use crate::NnError;

/// The network of a 1-D diffusion model: sequences `(B, in_channels, sample_size)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNet1DConfig {
    /// Length of the sequences the model generates (a multiple of 2^(levels−1)).
    pub sample_size: usize,
    /// Channels of the input sequence (1 for a univariate series or mono sound).
    pub in_channels: usize,
    /// Channels of the output (the same as the input for a denoiser).
    pub out_channels: usize,
    /// Width of each resolution level; the length halves between levels.
    pub block_out_channels: Vec<usize>,
    /// ResBlocks per level on the way down (one more on the way up, as diffusers does).
    pub layers_per_block: usize,
    /// One flag per level: self-attention after each of its ResBlocks. The middle block
    /// always has one.
    pub attention_levels: Vec<bool>,
    /// Channels per attention head.
    pub attention_head_dim: usize,
    /// Groups of every GroupNorm.
    pub norm_num_groups: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Dropout probability inside the ResBlocks (training only).
    #[serde(default)]
    pub dropout: f64,
    /// Class embeddings (classes + the "no label" token), `None` for an unconditional model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_class_embeds: Option<usize>,
    /// Channels of the conditional observation read beside the noisy sequence (CSDI, Tashiro
    /// et al. 2021: the observed values and the observation mask as extra input
    /// channels of the denoiser): 0 for a network that sees only the noisy sequence, 2
    /// ([`crate::OBSERVATION_CHANNELS`]) for a forecaster of p(future | history). Absent from
    /// the files of networks without it, which read as 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cond_channels: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn default_eps() -> f64 {
    1e-5
}

impl UNet1DConfig {
    /// A small network for sequences of `length` values of `channels` channels: widths
    /// 32, 64, 64 (the length halves twice), two ResBlocks per level, attention at the two
    /// coarser levels — sized to train on two CPU cores in minutes.
    pub fn small(length: usize, channels: usize) -> Self {
        Self {
            sample_size: length,
            in_channels: channels,
            out_channels: channels,
            block_out_channels: vec![32, 64, 64],
            layers_per_block: 2,
            attention_levels: vec![false, true, true],
            attention_head_dim: 16,
            // 8 groups divide every width above.
            norm_num_groups: 8,
            norm_eps: default_eps(),
            dropout: 0.0,
            num_class_embeds: None,
            cond_channels: 0,
        }
    }

    /// A tiny network for tests: widths 8, 16, one ResBlock per level, attention at the
    /// second level.
    pub fn tiny(length: usize, channels: usize) -> Self {
        Self {
            block_out_channels: vec![8, 16],
            layers_per_block: 1,
            attention_levels: vec![false, true],
            attention_head_dim: 8,
            norm_num_groups: 4,
            ..Self::small(length, channels)
        }
    }

    /// Width of the time embedding: 4 × the first level's width (DDPM, diffusers).
    pub fn time_embed_dim(&self) -> usize {
        self.block_out_channels[0] * 4
    }

    /// The factor the length is divided by at the coarsest level.
    pub fn length_factor(&self) -> usize {
        1 << (self.block_out_channels.len().saturating_sub(1))
    }

    /// Checks every key; messages say what is accepted.
    #[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; MSRV is 1.85
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |m: String| Err(NnError::Config(m));
        let ch = &self.block_out_channels;
        if ch.is_empty() || ch.contains(&0) {
            return bad(format!("block_out_channels must list at least one positive width, got {ch:?}"));
        }
        if self.attention_levels.len() != ch.len() {
            return bad(format!("attention_levels needs one flag per level ({}), got {}", ch.len(), self.attention_levels.len()));
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.layers_per_block == 0 {
            return bad("in_channels, out_channels and layers_per_block must be at least 1".into());
        }
        if self.sample_size == 0 || self.sample_size % self.length_factor() != 0 {
            return bad(format!(
                "sample_size (the sequence length) must be a positive multiple of {} (2^(levels−1)), got {}",
                self.length_factor(),
                self.sample_size
            ));
        }
        for &c in ch {
            if self.norm_num_groups == 0 || c % self.norm_num_groups != 0 {
                return bad(format!("norm_num_groups = {} must divide every width of block_out_channels {ch:?}", self.norm_num_groups));
            }
            if self.attention_head_dim == 0 || c % self.attention_head_dim != 0 {
                return bad(format!("attention_head_dim = {} must divide every width of block_out_channels {ch:?}", self.attention_head_dim));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must lie in [0, 1), got {}", self.dropout));
        }
        if self.cond_channels != 0 && (self.cond_channels != crate::OBSERVATION_CHANNELS || self.in_channels != 1) {
            return bad(format!(
                "cond_channels is 0 or {} (observed values and mask of a 1-channel series), got {} with in_channels = {}",
                crate::OBSERVATION_CHANNELS,
                self.cond_channels,
                self.in_channels
            ));
        }
        if self.num_class_embeds == Some(0) {
            return bad("num_class_embeds must be at least 1 when set".into());
        }
        Ok(())
    }
}
