//! An estimate of the memory one sampling run needs beyond the loaded weights, so that a
//! size that cannot fit is refused before anything is allocated. f32 activations (4 bytes),
//! counted as the naive (unsliced) computation holds them:
//!
//! - the U-Net's largest attention: `softmax(q kᵀ/√d)` over the N tokens of the finest level
//!   with attention holds `batch · heads · N²` scores and as many probabilities (Vaswani et
//!   al. 2017, eq. 1), `batch` doubled for classifier-free guidance;
//! - the U-Net's feature maps: the skip connections kept for the up path (one per resnet and
//!   downsampler, diffusers `down_block_res_samples`) and about ten maps of the finest level
//!   in flight (the transformer's feed-forward GEGLU alone is 8 channels wide per channel);
//! - the VAE decode of the batch at full size: about six maps of its widest level in flight
//!   (resnet input, norm, conv, residual, the upsampler's input and output) and its mid
//!   block's single-head attention over the latent pixels.

use crate::SdPipeline;

/// Bytes of an f32.
const F32: f64 = 4.0;

/// The parts of [`SdPipeline::activation_estimate`], in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    pub unet_attention: f64,
    pub unet_features: f64,
    pub vae_decode: f64,
}

impl MemoryEstimate {
    /// The peak: the U-Net's and the VAE's work do not overlap.
    pub fn peak(&self) -> f64 {
        (self.unet_attention + self.unet_features).max(self.vae_decode)
    }
}

impl SdPipeline {
    /// Activation memory of sampling `batch` images of `width × height` pixels (see the
    /// module documentation); `guided` doubles the U-Net's batch.
    pub fn activation_estimate(&self, width: usize, height: usize, batch: usize, guided: bool) -> MemoryEstimate {
        let (_, f) = self.latent_shape();
        let (h, w) = ((height / f) as f64, (width / f) as f64);
        let b = batch as f64;
        let unet_batch = if guided { 2.0 * b } else { b };
        let cfg = self.unet.config();
        let mut attention: f64 = 0.0;
        let mut skips = cfg.in_channels as f64 * h * w;
        for (i, (&ch, kind)) in cfg.block_out_channels.iter().zip(&cfg.down_block_types).enumerate() {
            let pixels = (h / (1u64 << i) as f64).ceil() * (w / (1u64 << i) as f64).ceil();
            if kind.contains("CrossAttn") {
                attention = attention.max(2.0 * unet_batch * cfg.heads(i) as f64 * pixels * pixels * F32);
            }
            skips += (cfg.layers_per_block + 1) as f64 * ch as f64 * pixels;
        }
        let working = 10.0 * cfg.block_out_channels[0] as f64 * h * w;
        let vae = self.vae.config();
        let levels = vae.block_out_channels.len();
        let widest = vae
            .block_out_channels
            .iter()
            .enumerate()
            .map(|(i, &ch)| ch as f64 * (h * w) * (1u64 << (2 * (levels - 1 - i))) as f64)
            .fold(0.0, f64::max);
        let mid_attention = 2.0 * (h * w) * (h * w);
        MemoryEstimate {
            unet_attention: attention,
            unet_features: unet_batch * (skips + working) * F32,
            vae_decode: b * (6.0 * widest + mid_attention) * F32,
        }
    }

    /// [`SdPipeline::activation_estimate`] with the VAE decoding in tiles of its training size
    /// ([`SdPipeline::decode_latents_tiled`]): its part is one tile's decode of the batch.
    /// `None` when the VAE's config names no tile size (`sample_size`).
    pub fn activation_estimate_tiled(&self, width: usize, height: usize, batch: usize, guided: bool) -> Option<MemoryEstimate> {
        let tile = self.vae.config().sample_size?;
        let whole = self.activation_estimate(width, height, batch, guided);
        let one_tile = self.activation_estimate(tile.min(width), tile.min(height), batch, guided);
        Some(MemoryEstimate { vae_decode: one_tile.vae_decode.min(whole.vae_decode), ..whole })
    }
}
