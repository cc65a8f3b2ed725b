//! Text conditioning: a prompt tokenizer and a CLIP text transformer, trained jointly with the
//! U-Net or loaded from a pretrained CLIP folder.

mod config;
mod encoder;
mod pretrained;
mod tokenizer;

use candle_core::{Device, Tensor};

pub use config::{HiddenAct, TextEncoderConfig};
pub use encoder::TextEncoder;
pub(crate) use encoder::{EncoderLayer, LayerDims};
pub use pretrained::{load_clip_folder, read_clip_folder, ClipFolder, CLIP_PREFIX};
pub use tokenizer::{PromptTokenizer, BOS, EOS};

use crate::shapes::{record_shapes, ParameterShapes};
use crate::NnError;

/// Tokenizer + encoder: prompts in, the U-Net's `encoder_hidden_states` out.
#[derive(Debug, Clone)]
pub struct PromptEncoder {
    pub tokenizer: PromptTokenizer,
    pub encoder: TextEncoder,
}

impl PromptEncoder {
    /// Token ids of `prompts`, `(B, max_position_embeddings)` u32. The empty string is the
    /// unconditional prompt; see [`PromptTokenizer::encode`] for the length rule.
    pub fn token_ids(&self, prompts: &[&str], device: &Device) -> Result<Tensor, NnError> {
        let len = self.encoder.config().max_position_embeddings;
        let mut ids = Vec::with_capacity(prompts.len() * len);
        for p in prompts {
            ids.extend(self.tokenizer.encode(p, len)?);
        }
        Ok(Tensor::from_vec(ids, (prompts.len(), len), device)?)
    }

    /// The encoder's last hidden states for `prompts`, `(B, tokens, hidden_size)`.
    pub fn encode(&self, prompts: &[&str], device: &Device) -> Result<Tensor, NnError> {
        Ok(self.encoder.forward(&self.token_ids(prompts, device)?)?)
    }

    /// Names (under `prefix`; `""` for none) and shapes of the encoder's parameters.
    pub fn parameter_shapes(cfg: &TextEncoderConfig, prefix: &str) -> Result<ParameterShapes, NnError> {
        cfg.validate()?;
        record_shapes(|vb| TextEncoder::new(if prefix.is_empty() { vb } else { vb.pp(prefix) }, cfg).map(|_| ()))
    }
}
