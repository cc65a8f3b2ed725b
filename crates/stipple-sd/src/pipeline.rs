//! `SdPipeline`: a loaded Stable Diffusion checkpoint and the calls a front end makes on it.

use std::path::Path;

use candle_core::{Device, Tensor};
use stipple_math::DiscreteSchedule;
use stipple_nn::text::TextEncoder;

use crate::load::{load, LoadOptions};
use crate::prompt::{prompt_chunks, CHUNK_TOKENS};
use crate::sdxl::skipped_state;
use crate::{Architecture, AutoencoderKL, ClipTokenizer, Conditioning, SchedulerConfig, SdDenoiser, SdError, SecondTextEncoder, UNet2DConditionModel};

/// A Stable Diffusion checkpoint: tokenizer, text encoder, U-Net, autoencoder and the
/// training schedule, every weight in f32 on one device.
pub struct SdPipeline {
    pub architecture: Architecture,
    pub tokenizer: ClipTokenizer,
    pub text_encoder: TextEncoder,
    /// SDXL's second text encoder; `None` for SD 1.x/2.x.
    pub text_encoder_2: Option<SecondTextEncoder>,
    pub unet: UNet2DConditionModel,
    pub vae: AutoencoderKL,
    pub scheduler: SchedulerConfig,
    device: Device,
}

impl SdPipeline {
    /// Loads a diffusers folder (`model_index.json`) or an original-layout `.safetensors`
    /// single file (architecture told from its tensor names; the tokenizer from a
    /// `tokenizer/` folder beside it). See [`SdPipeline::load_with`].
    pub fn load(path: &Path, device: &Device) -> Result<Self, SdError> {
        Self::load_with(path, &LoadOptions::default(), device)
    }

    /// [`SdPipeline::load`] with the configs and tokenizer of a single file given explicitly.
    pub fn load_with(path: &Path, options: &LoadOptions, device: &Device) -> Result<Self, SdError> {
        let p = load(path, options, device)?;
        Ok(Self {
            architecture: p.architecture,
            tokenizer: p.tokenizer,
            text_encoder: p.text_encoder,
            text_encoder_2: p.text_encoder_2,
            unet: p.unet,
            vae: p.vae,
            scheduler: p.scheduler,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids of `prompts`, `(B, 77)` u32: framed, padded, cut to the text encoder's length.
    pub fn token_ids(&self, prompts: &[&str]) -> Result<Tensor, SdError> {
        let len = self.text_encoder.config().max_position_embeddings;
        let mut ids = Vec::with_capacity(prompts.len() * len);
        for p in prompts {
            ids.extend(self.tokenizer.encode(p, len)?);
        }
        Ok(Tensor::from_vec(ids, (prompts.len(), len), &self.device)?)
    }

    /// The U-Net's text states for `prompts`, `(B, 77, cross_attention_dim)` (the context
    /// of [`SdPipeline::encode`]).
    pub fn encode_prompt(&self, prompts: &[&str], clip_skip: usize) -> Result<Tensor, SdError> {
        Ok(self.encode(prompts, clip_skip)?.context)
    }

    /// The U-Net's conditioning for `prompts`, read as diffusers reads them (cut at 77 tokens).
    /// SD 1.x/2.x: the text encoder's states, `clip_skip` as in the web UI (1 = the last
    /// layer, 2 = the penultimate, … each through the final LayerNorm). SDXL: both encoders'
    /// states `clip_skip` layers before the last (1 = the penultimate, SDXL's default), not
    /// normalised, side by side, and the pooled embedding.
    pub fn encode(&self, prompts: &[&str], clip_skip: usize) -> Result<Conditioning, SdError> {
        let ids = self.token_ids(prompts)?;
        let Some(second) = &self.text_encoder_2 else {
            return Ok(self.text_encoder.forward_skip(&ids, clip_skip)?.into());
        };
        let first = skipped_state(&self.text_encoder.hidden_states(&ids)?, clip_skip)?;
        let (context, pooled) = second.encode(prompts, clip_skip, &self.device)?;
        Ok(Conditioning { context: Tensor::cat(&[&first, &context], 2)?, pooled: Some(pooled) })
    }

    /// The conditioning of one prompt in the web UI's syntax: emphasis `(word:1.2)`, `(word)`,
    /// `[word]`, `BREAK`, and any length, as chunks of 75 tokens each encoded on its own and
    /// concatenated, context `(1, 77·chunks, dim)`. Each chunk's states are multiplied by their
    /// tokens' weights and rescaled to the chunk's unweighted mean (the web UI's "Original"
    /// emphasis, `sd_emphasis.EmphasisOriginal`), per text encoder. SDXL: both encoders' chunks
    /// side by side, and the pooled embedding of the first chunk (unweighted), as the web UI's
    /// `FrozenOpenCLIPEmbedder2WithCustomWords` gives it. `clip_skip` as in [`SdPipeline::encode`].
    pub fn encode_weighted(&self, prompt: &str, clip_skip: usize) -> Result<Conditioning, SdError> {
        let first = self.weighted_states(&self.text_encoder, &self.tokenizer, prompt, clip_skip, self.text_encoder_2.is_some())?;
        let Some(second) = &self.text_encoder_2 else {
            return Ok(Tensor::cat(&first, 1)?.into());
        };
        let other = self.weighted_states(&second.encoder, &second.tokenizer, prompt, clip_skip, true)?;
        if other.len() != first.len() {
            return Err(SdError::Invalid(format!(
                "the prompt makes {} chunks for the first text encoder and {} for the second",
                first.len(),
                other.len()
            )));
        }
        let chunks = first.iter().zip(&other).map(|(a, b)| Tensor::cat(&[a, b], 2)).collect::<candle_core::Result<Vec<_>>>()?;
        let (_, pooled) = second.encode_chunk(&prompt_chunks(&second.tokenizer, prompt, CHUNK_TOKENS)?[0], clip_skip, &self.device)?;
        Ok(Conditioning { context: Tensor::cat(&chunks, 1)?, pooled: Some(pooled) })
    }

    /// Each chunk's weighted states of one text encoder: through the final LayerNorm (SD
    /// 1.x/2.x) or `clip_skip` layers before the last, unnormalised (`sdxl`).
    fn weighted_states(&self, encoder: &TextEncoder, tokenizer: &ClipTokenizer, prompt: &str, clip_skip: usize, sdxl: bool) -> Result<Vec<Tensor>, SdError> {
        let len = encoder.config().max_position_embeddings;
        let mut rows = Vec::new();
        for chunk in prompt_chunks(tokenizer, prompt, len - 2)? {
            let ids = Tensor::from_vec(chunk.ids, (1, len), &self.device)?;
            let z = if sdxl { skipped_state(&encoder.hidden_states(&ids)?, clip_skip)? } else { encoder.forward_skip(&ids, clip_skip)? };
            let w = Tensor::from_vec(chunk.weights, (1, len, 1), &self.device)?;
            let weighted = z.broadcast_mul(&w)?;
            let rescale = (z.mean_all()? / weighted.mean_all()?)?;
            rows.push(weighted.broadcast_mul(&rescale)?);
        }
        Ok(rows)
    }

    /// The prompt's tokens as [`SdPipeline::encode_weighted`] lays them out: for each, its
    /// position in the context (chunk `c`'s token `j` at `c·77 + 1 + j`, after the chunk's
    /// start token) and its text. Names the rows of the per-token attention maps.
    pub fn prompt_tokens(&self, prompt: &str) -> Result<Vec<(usize, String)>, SdError> {
        let len = self.text_encoder.config().max_position_embeddings;
        let mut out = Vec::new();
        for (c, chunk) in prompt_chunks(&self.tokenizer, prompt, len - 2)?.iter().enumerate() {
            let words = chunk.ids.iter().enumerate().skip(1).take_while(|(_, &id)| !self.tokenizer.is_eos(id));
            out.extend(words.map(|(j, &id)| (c * len + j, self.tokenizer.token_text(id))));
        }
        Ok(out)
    }

    /// [`SdPipeline::encode_weighted`] of a prompt and its negative, the shorter context
    /// extended by chunks of the empty prompt's so both have as many tokens (as the web UI does
    /// for one batched guidance call).
    pub fn encode_weighted_pair(&self, prompt: &str, negative: &str, clip_skip: usize) -> Result<(Conditioning, Conditioning), SdError> {
        let (mut c, mut u) = (self.encode_weighted(prompt, clip_skip)?, self.encode_weighted(negative, clip_skip)?);
        let (nc, nu) = (c.context.dim(1)?, u.context.dim(1)?);
        if nc != nu {
            let empty = self.encode_weighted("", clip_skip)?.context;
            let short = if nc > nu { &mut u } else { &mut c };
            let pad = empty.repeat((1, nc.abs_diff(nu) / empty.dim(1)?, 1))?;
            short.context = Tensor::cat(&[&short.context, &pad], 1)?;
        }
        Ok((c, u))
    }

    /// The model's discrete training schedule (σ for the samplers' schedules).
    pub fn schedule(&self) -> DiscreteSchedule {
        self.scheduler.schedule()
    }

    /// `D(x; σ)` of the U-Net for the text states `cond` (see [`SdPipeline::encode_prompt`]),
    /// guided at `scale` away from `uncond` (the negative prompt's states, or the empty
    /// prompt's; `None` = no guidance). Any of Stipple's samplers drives it over σ from
    /// [`SdPipeline::schedule`].
    pub fn denoiser(&self, cond: Tensor, uncond: Option<Tensor>, scale: f64) -> SdDenoiser<'_> {
        self.denoiser_with(cond.into(), uncond.map(Conditioning::from), scale)
    }

    /// [`SdPipeline::denoiser`] for any [`Conditioning`] (SDXL's carries its pooled embedding;
    /// its size conditioning is the generated image's size, uncropped).
    pub fn denoiser_with(&self, cond: Conditioning, uncond: Option<Conditioning>, scale: f64) -> SdDenoiser<'_> {
        let f = self.latent_shape().1;
        SdDenoiser::new(&self.unet, self.schedule(), self.scheduler.prediction_type, cond, uncond, scale, f)
    }

    /// Latent channels and the image-to-latent size ratio (SD: 4 and 8).
    pub fn latent_shape(&self) -> (usize, usize) {
        let vae = self.vae.config();
        (vae.latent_channels, 1 << (vae.block_out_channels.len() - 1))
    }

    /// Images in [0, 1] of sampled latents: `decode(z / scaling_factor) / 2 + 1/2`, clamped
    /// (diffusers `VaeImageProcessor.postprocess` of `vae.decode(latents / scaling_factor)`).
    ///
    /// # Shapes
    /// `latents`: `(B, 4, h, w)`; returns `(B, 3, 8h, 8w)`.
    pub fn decode_latents(&self, latents: &Tensor) -> Result<Tensor, SdError> {
        self.decode_scaled(latents, false)
    }

    /// [`SdPipeline::decode_latents`] in overlapping tiles ([`AutoencoderKL::decode_tiled`]),
    /// for images whose whole decode does not fit in memory; the seams are blended, so the
    /// pixels differ slightly from a whole decode's.
    pub fn decode_latents_tiled(&self, latents: &Tensor) -> Result<Tensor, SdError> {
        self.decode_scaled(latents, true)
    }

    /// `decode(z / scaling_factor) / 2 + 1/2`, clamped, whole or in tiles.
    fn decode_scaled(&self, latents: &Tensor, tiled: bool) -> Result<Tensor, SdError> {
        let z = (latents / self.vae.scaling_factor())?;
        let img = if tiled { self.vae.decode_tiled(&z)? } else { self.vae.decode(&z)? };
        Ok(((img / 2.0)? + 0.5)?.clamp(0f32, 1f32)?)
    }

    /// A cheap RGB preview in [−1, 1] of (scaled) latents at latent resolution, with the
    /// published linear fit of this architecture's VAE ([`crate::latent_preview`]).
    ///
    /// # Shapes
    /// `latents`: `(B, 4, h, w)`; returns `(B, 3, h, w)`.
    pub fn preview(&self, latents: &Tensor) -> Result<Tensor, SdError> {
        crate::latent_preview(self.architecture, latents)
    }

    /// Latents of images in [0, 1] for img2img: `encode(2x − 1).mean · scaling_factor`.
    ///
    /// # Shapes
    /// `images`: `(B, 3, H, W)`; returns `(B, 4, H/8, W/8)`.
    pub fn encode_images(&self, images: &Tensor) -> Result<Tensor, SdError> {
        self.encode_scaled(images, false)
    }

    /// [`SdPipeline::encode_images`] in overlapping tiles ([`AutoencoderKL::encode_tiled`]).
    pub fn encode_images_tiled(&self, images: &Tensor) -> Result<Tensor, SdError> {
        self.encode_scaled(images, true)
    }

    /// `encode(2·images − 1) · scaling_factor`, whole or in tiles.
    fn encode_scaled(&self, images: &Tensor, tiled: bool) -> Result<Tensor, SdError> {
        let x = ((images * 2.0)? - 1.0)?;
        let z = if tiled { self.vae.encode_tiled(&x)? } else { self.vae.encode(&x)? };
        Ok((z * self.vae.scaling_factor())?)
    }

    /// The inputs of an inpainting U-Net besides the latents, from images in [0, 1] and a mask
    /// (1 = paint) at image resolution: the mask at latent resolution (nearest, as diffusers'
    /// `interpolate`), and the scaled latents (mean) of the image with the painted region set
    /// to 0 in [−1, 1] (diffusers `init_image * (mask < 0.5)`). See
    /// [`SdDenoiser::with_inpainting`].
    ///
    /// # Shapes
    /// `images`: `(B, 3, H, W)`; `mask`: `(B, 1, H, W)`; returns `(B, 1, H/8, W/8)` and `(B, 4, H/8, W/8)`.
    pub fn inpainting_inputs(&self, images: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor), SdError> {
        let f = self.latent_shape().1;
        let (_, _, h, w) = mask.dims4()?;
        let keep = mask.lt(0.5f32)?.to_dtype(images.dtype())?;
        let masked = ((images * 2.0)? - 1.0)?.broadcast_mul(&keep)?;
        let z = (self.vae.encode(&masked)? * self.vae.scaling_factor())?;
        let small = nearest_down(mask, h / f, w / f)?;
        Ok((small, z))
    }

    /// Latents of images in [0, 1] sampled from the latent distribution with the standard
    /// normal draw `eps`: `(mean + σ·eps) · scaling_factor` (diffusers' img2img,
    /// `retrieve_latents(…, sample_mode="sample")`).
    ///
    /// # Shapes
    /// `images`: `(B, 3, H, W)`; `eps`: `(B, 4, H/8, W/8)`; returns `(B, 4, H/8, W/8)`.
    pub fn encode_images_sampled(&self, images: &Tensor, eps: &Tensor) -> Result<Tensor, SdError> {
        let (mean, std) = self.vae.encode_distribution(&((images * 2.0)? - 1.0)?)?;
        Ok(((mean + (std * eps)?)? * self.vae.scaling_factor())?)
    }
}

/// Nearest-neighbour resize of `(B, C, H, W)` to `(B, C, h, w)` (PyTorch `interpolate(mode=
/// "nearest")`: source index `⌊i · H / h⌋`).
fn nearest_down(x: &Tensor, h: usize, w: usize) -> Result<Tensor, SdError> {
    let (_, _, big_h, big_w) = x.dims4()?;
    let rows: Vec<u32> = (0..h).map(|i| (i * big_h / h) as u32).collect();
    let cols: Vec<u32> = (0..w).map(|j| (j * big_w / w) as u32).collect();
    let rows = Tensor::new(rows.as_slice(), x.device())?;
    let cols = Tensor::new(cols.as_slice(), x.device())?;
    Ok(x.index_select(&rows, 2)?.index_select(&cols, 3)?)
}
