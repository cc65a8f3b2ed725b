//! SDXL's second text encoder and its conditioning (Podell et al. 2023, "SDXL", §2.1–2.2):
//! the penultimate hidden states of both text encoders side by side, the second encoder's
//! pooled state (final LayerNorm at the end-of-text token, then `text_projection`), and the
//! six size numbers.
//!
//! Source: diffusers `pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py`
//! (`encode_prompt`, `_get_add_time_ids`) and transformers `CLIPTextModelWithProjection`.

use candle_core::{Device, Tensor};
use stipple_nn::text::TextEncoder;
use stipple_nn::TokenLinear;

use crate::{ClipTokenizer, SdError};

/// What the U-Net reads from a batch of prompts.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `(B, tokens, cross_attention_dim)`: the text states cross-attention reads.
    pub context: Tensor,
    /// `(B, projection_dim)`: SDXL's pooled text embedding; `None` for SD 1.x/2.x.
    pub pooled: Option<Tensor>,
}

impl From<Tensor> for Conditioning {
    fn from(context: Tensor) -> Self {
        Self { context, pooled: None }
    }
}

/// SDXL's second text encoder (`text_encoder_2`, a `CLIPTextModelWithProjection`) with its
/// tokenizer (`tokenizer_2`).
#[derive(Debug, Clone)]
pub struct SecondTextEncoder {
    pub tokenizer: ClipTokenizer,
    pub encoder: TextEncoder,
    /// `text_projection` (no bias), `hidden_size → projection_dim`.
    pub text_projection: TokenLinear,
}

/// The hidden state `clip_skip` layers from the end (1 = the penultimate, SDXL's default;
/// diffusers `hidden_states[-(clip_skip + 1)]` in this counting), not normalised.
pub(crate) fn skipped_state(states: &[Tensor], clip_skip: usize) -> Result<Tensor, SdError> {
    let n = states.len();
    if clip_skip == 0 || clip_skip >= n {
        return Err(SdError::Invalid(format!("clip skip must be in 1..{n} for this text encoder, got {clip_skip}")));
    }
    Ok(states[n - 1 - clip_skip].clone())
}

impl SecondTextEncoder {
    /// The context `(1, 77, hidden)` and pooled embedding `(1, projection_dim)` of one framed
    /// chunk of token ids.
    pub(crate) fn encode_chunk(&self, chunk: &crate::prompt::Chunk, clip_skip: usize, device: &Device) -> Result<(Tensor, Tensor), SdError> {
        self.encode_ids(vec![chunk.ids.clone()], clip_skip, device)
    }

    /// The second encoder's part of the context, `(B, 77, hidden)`, and the pooled embedding
    /// `(B, projection_dim)` of `prompts`.
    pub fn encode(&self, prompts: &[&str], clip_skip: usize, device: &Device) -> Result<(Tensor, Tensor), SdError> {
        let len = self.encoder.config().max_position_embeddings;
        let rows = prompts.iter().map(|p| self.tokenizer.encode(p, len)).collect::<Result<Vec<_>, _>>()?;
        self.encode_ids(rows, clip_skip, device)
    }

    /// Context and pooled embedding of framed rows of token ids (each `max_position_embeddings` long).
    fn encode_ids(&self, rows: Vec<Vec<u32>>, clip_skip: usize, device: &Device) -> Result<(Tensor, Tensor), SdError> {
        let len = self.encoder.config().max_position_embeddings;
        let eos = self.tokenizer.token_id(crate::EOS).ok_or_else(|| SdError::Invalid("tokenizer_2 has no end-of-text token".into()))?;
        // transformers' pooled output: the first end-of-text position of each row.
        let ends: Vec<usize> = rows.iter().map(|r| r.iter().position(|&t| t == eos).unwrap_or(len - 1)).collect();
        let n = rows.len();
        let ids: Vec<u32> = rows.into_iter().flatten().collect();
        let states = self.encoder.hidden_states(&Tensor::from_vec(ids, (n, len), device)?)?;
        let context = skipped_state(&states, clip_skip)?;
        let pooled = self.text_projection.forward(&self.encoder.pooled_output(&states[states.len() - 1], &ends)?)?;
        Ok((context, pooled))
    }
}

/// SDXL's size conditioning for an image of `height × width` pixels generated whole:
/// `[original h, w, crop top, left, target h, w] = [h, w, 0, 0, h, w]` per batch row
/// (diffusers' defaults), `(B, 6)`.
pub fn default_time_ids(batch: usize, height: usize, width: usize, device: &Device) -> Result<Tensor, SdError> {
    let row = [height as f32, width as f32, 0.0, 0.0, height as f32, width as f32];
    Ok(Tensor::new(&row, device)?.unsqueeze(0)?.repeat((batch, 1))?)
}
