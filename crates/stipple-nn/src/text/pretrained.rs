//! Loading a pretrained CLIP text encoder from a local folder in Hugging Face layout:
//! `config.json` (a `CLIPTextConfig`, or a `CLIPConfig` with `text_config`), `tokenizer.json`
//! and `model.safetensors` whose text weights are named `text_model.…` (transformers 4 and
//! `CLIPModel` checkpoints) or `embeddings.…`, `encoder.…` (a `CLIPTextModel` saved by
//! transformers 5). Nothing is downloaded.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::{PromptEncoder, PromptTokenizer, TextEncoder, TextEncoderConfig};
use crate::{check_tensors, load_tensors, NnError};

/// Prefix of the text encoder's weights in transformers' CLIP checkpoints.
pub const CLIP_PREFIX: &str = "text_model";

/// The parts of a pretrained CLIP text encoder folder.
pub struct ClipFolder {
    pub config: TextEncoderConfig,
    pub tokenizer: PromptTokenizer,
    /// The text encoder's weights, named from the encoder's root (`embeddings.…`,
    /// `encoder.layers.N.…`, `final_layer_norm.…`), checked against `config`.
    pub tensors: HashMap<String, Tensor>,
}

/// Reads `dir/config.json`, `dir/tokenizer.json` and `dir/model.safetensors`. Tensors of other
/// parts of a CLIP checkpoint (vision tower, projections, position-id buffers) are ignored;
/// missing or mis-shaped text weights are an error that lists them.
pub fn read_clip_folder(dir: &Path, device: &Device) -> Result<ClipFolder, NnError> {
    let read = |name: &str| -> Result<String, NnError> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| NnError::Text(format!(
            "cannot read {}: {e} (a CLIP folder holds config.json, tokenizer.json and model.safetensors)",
            path.display()
        )))
    };
    let config = TextEncoderConfig::from_hf_json(&read("config.json")?)?;
    let tokenizer = PromptTokenizer::from_json(&read("tokenizer.json")?)?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(NnError::Text(format!(
            "the tokenizer has {} entries but the encoder embeds only vocab_size = {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    let path = dir.join("model.safetensors");
    let all = load_tensors(&path, device)?;
    let prefixed = format!("{CLIP_PREFIX}.");
    let prefix = if all.keys().any(|k| k.starts_with(&prefixed)) { prefixed.as_str() } else { "" };
    let expected = PromptEncoder::parameter_shapes(&config, "")?;
    let tensors: HashMap<String, Tensor> = all
        .into_iter()
        .filter_map(|(name, t)| Some((name.strip_prefix(prefix)?.to_string(), t)))
        .filter(|(name, _)| expected.iter().any(|(e, _)| e == name))
        .collect();
    check_tensors(&tensors, expected, &path)?;
    Ok(ClipFolder { config, tokenizer, tensors })
}

/// [`read_clip_folder`] as a ready prompt encoder.
pub fn load_clip_folder(dir: &Path, device: &Device) -> Result<PromptEncoder, NnError> {
    let clip = read_clip_folder(dir, device)?;
    let vb = VarBuilder::from_tensors(clip.tensors, DType::F32, device);
    Ok(PromptEncoder { tokenizer: clip.tokenizer, encoder: TextEncoder::new(vb, &clip.config)? })
}
