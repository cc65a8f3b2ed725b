//! `ClipModel`: a CLIP checkpoint from a local folder in transformers' layout, as far as CLIP
//! score needs it — transformers' `CLIPModel.get_image_features` (vision tower +
//! `visual_projection`) and `get_text_features` (text encoder pooled at the end-of-text token +
//! `text_projection`), with the folder's tokenizer and image processor. Nothing is downloaded.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use stipple_nn::text::TextEncoder;
use stipple_nn::{check_tensors, load_tensors, record_shapes, ClipVisionTransformer, TokenLinear};
use stipple_sd::ClipTokenizer;

use super::config::{ClipConfig, LEGACY_EOS_TOKEN_ID};
use super::processor::ImageProcessor;
use crate::{EvalError, NamedImage};

/// The files of a CLIP folder.
pub const CLIP_FILES: [&str; 5] = ["config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json"];

/// Images (and prompts) embedded this many at a time.
const BATCH: usize = 16;

/// A CLIP model with its tokenizer and image processor.
#[derive(Debug, Clone)]
pub struct ClipModel {
    config: ClipConfig,
    tokenizer: ClipTokenizer,
    processor: ImageProcessor,
    text: TextEncoder,
    text_projection: TokenLinear,
    vision: ClipVisionTransformer,
    visual_projection: TokenLinear,
    device: Device,
}

fn not_clip(path: &Path, reason: impl Into<String>) -> EvalError {
    EvalError::WrongArchitecture { path: path.to_path_buf(), architecture: "CLIP", reason: reason.into() }
}

/// Names and shapes of every weight CLIP score reads, under transformers' `CLIPModel` names.
fn expected_shapes(c: &ClipConfig) -> Result<Vec<(String, Vec<usize>)>, stipple_nn::NnError> {
    record_shapes(|vb| {
        TextEncoder::new(vb.pp("text_model"), &c.text)?;
        ClipVisionTransformer::new(vb.pp("vision_model"), &c.vision)?;
        TokenLinear::no_bias(vb.pp("text_projection"), c.text.hidden_size, c.projection_dim)?;
        TokenLinear::no_bias(vb.pp("visual_projection"), c.vision.hidden_size, c.projection_dim)?;
        Ok(())
    })
}

/// `dir/preprocessor_config.json`, checked to give the vision tower's image size.
fn read_processor(dir: &Path, config: &ClipConfig) -> Result<ImageProcessor, EvalError> {
    let pre = dir.join("preprocessor_config.json");
    let text = std::fs::read_to_string(&pre).map_err(|e| EvalError::io("read", &pre, e))?;
    let processor = ImageProcessor::from_json(&text).map_err(|r| not_clip(&pre, r))?;
    let size = config.vision.image_size as u32;
    match (processor.crop, processor.shortest_edge) {
        (Some((h, w)), _) if (h, w) != (size, size) => {
            Err(not_clip(&pre, format!("crop_size {h}×{w} is not the vision tower's image_size {size}×{size}")))
        }
        (None, Some(s)) if s != size => Err(not_clip(&pre, format!("without a centre crop, size {s} is not the vision tower's image_size {size}"))),
        _ => Ok(processor),
    }
}

/// `dir/vocab.json` + `dir/merges.txt`, checked against the text encoder's vocabulary and end
/// token.
fn read_tokenizer(dir: &Path, config: &ClipConfig) -> Result<ClipTokenizer, EvalError> {
    let tokenizer = ClipTokenizer::from_dir(dir).map_err(|e| not_clip(dir, e.to_string()))?;
    let eos = tokenizer.token_id(stipple_sd::EOS).ok_or_else(|| not_clip(dir, format!("the tokenizer has no {} token", stipple_sd::EOS)))?;
    if tokenizer.vocab_size() > config.text.vocab_size {
        return Err(not_clip(dir, format!("the tokenizer has {} entries, the text encoder embeds {}", tokenizer.vocab_size(), config.text.vocab_size)));
    }
    if config.eos_token_id != LEGACY_EOS_TOKEN_ID && config.eos_token_id != eos {
        return Err(not_clip(dir, format!("text_config.eos_token_id = {} but the tokenizer's {} is {eos}", config.eos_token_id, stipple_sd::EOS)));
    }
    Ok(tokenizer)
}

impl ClipModel {
    /// Reads the folder `dir` ([`CLIP_FILES`]). Missing files, a config that is not CLIP's,
    /// missing or mis-shaped weights and a tokenizer that does not fit the text encoder are
    /// errors that say which.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EvalError> {
        let missing: Vec<&str> = CLIP_FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
        if !missing.is_empty() {
            return Err(EvalError::MissingFiles {
                path: dir.to_path_buf(),
                missing: missing.join(", "),
                expected: format!("a CLIP folder in transformers' layout holds {}", CLIP_FILES.join(", ")),
            });
        }
        let config = ClipConfig::read(&dir.join("config.json"))?;
        let processor = read_processor(dir, &config)?;
        let tokenizer = read_tokenizer(dir, &config)?;
        let path = dir.join("model.safetensors");
        let expected = expected_shapes(&config).map_err(|e| not_clip(&path, e.to_string()))?;
        let tensors: HashMap<String, Tensor> = load_tensors(&path, device)
            .map_err(|e| not_clip(&path, e.to_string()))?
            .into_iter()
            .filter(|(name, _)| expected.iter().any(|(e, _)| e == name))
            .map(|(name, t)| Ok((name, t.to_dtype(DType::F32)?)))
            .collect::<Result<_, candle_core::Error>>()?;
        check_tensors(&tensors, expected, &path).map_err(|e| not_clip(&path, e.to_string()))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Ok(Self {
            text: TextEncoder::new(vb.pp("text_model"), &config.text)?,
            text_projection: TokenLinear::no_bias(vb.pp("text_projection"), config.text.hidden_size, config.projection_dim)?,
            vision: ClipVisionTransformer::new(vb.pp("vision_model"), &config.vision)?,
            visual_projection: TokenLinear::no_bias(vb.pp("visual_projection"), config.vision.hidden_size, config.projection_dim)?,
            config,
            tokenizer,
            processor,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// The framed, padded token ids of `prompt`; a prompt longer than the text encoder's
    /// positions is an error (transformers would cut it; a cut prompt is not the one scored).
    pub fn token_ids(&self, prompt: &str) -> Result<Vec<u32>, EvalError> {
        let len = self.config.text.max_position_embeddings;
        let tokens = self.tokenizer.tokens(prompt).map_err(|e| EvalError::setting("prompt", e.to_string()))?;
        if tokens.len() + 2 > len {
            return Err(EvalError::PromptTooLong { prompt: prompt.to_string(), tokens: tokens.len(), fits: len - 2 });
        }
        self.tokenizer.encode(prompt, len).map_err(|e| EvalError::setting("prompt", e.to_string()))
    }

    /// transformers' `CLIPModel.get_text_features`.
    ///
    /// # Shapes
    /// Returns `(prompts.len(), projection_dim)`.
    pub fn text_features(&self, prompts: &[&str]) -> Result<Tensor, EvalError> {
        let len = self.config.text.max_position_embeddings;
        let mut out = Vec::new();
        for chunk in prompts.chunks(BATCH) {
            let rows = chunk.iter().map(|p| self.token_ids(p)).collect::<Result<Vec<_>, _>>()?;
            let positions: Vec<usize> = rows.iter().map(|r| pooling_position(r, self.config.eos_token_id)).collect();
            let ids = Tensor::from_vec(rows.concat(), (rows.len(), len), &self.device)?;
            let states = self.text.hidden_states(&ids)?;
            out.push(self.text_projection.forward(&self.text.pooled_output(&states[states.len() - 1], &positions)?)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    /// The vision tower's input for `image` (see [`ImageProcessor`]).
    ///
    /// # Shapes
    /// Returns `(3, image_size, image_size)`.
    pub fn pixel_values(&self, image: &NamedImage) -> Result<Tensor, EvalError> {
        if image.image.width() == 0 || image.image.height() == 0 {
            return Err(EvalError::BadImage { path: image.path.clone(), reason: "the image has no pixels".into() });
        }
        let t = self.processor.pixel_values(&image.image, &self.device)?;
        let s = self.config.vision.image_size;
        if t.dims() != [3, s, s] {
            let got = format!("{}×{}", t.dim(2)?, t.dim(1)?);
            return Err(EvalError::ImageShape { path: image.path.clone(), expected: format!("{s}×{s} (after the image processor)"), got });
        }
        Ok(t)
    }

    /// transformers' `CLIPModel.get_image_features` of images preprocessed by the folder's
    /// processor.
    ///
    /// # Shapes
    /// Returns `(images.len(), projection_dim)`.
    pub fn image_features(&self, images: &[NamedImage]) -> Result<Tensor, EvalError> {
        let mut out = Vec::new();
        for chunk in images.chunks(BATCH) {
            let batch = chunk.iter().map(|im| self.pixel_values(im)).collect::<Result<Vec<_>, _>>()?;
            out.push(self.visual_projection.forward(&self.vision.forward(&Tensor::stack(&batch, 0)?)?)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// Where transformers' `CLIPTextTransformer` pools a row of token ids: with the legacy
/// `eos_token_id = 2`, the first position of the largest id (the end-of-text token, the last
/// entry of CLIP's vocabulary); otherwise the first position of `eos_token_id` (the row's
/// first, if absent — `argmax` of all zeros).
pub fn pooling_position(row: &[u32], eos_token_id: u32) -> usize {
    if eos_token_id == LEGACY_EOS_TOKEN_ID {
        let max = row.iter().copied().max().unwrap_or(0);
        row.iter().position(|&t| t == max).unwrap_or(0)
    } else {
        row.iter().position(|&t| t == eos_token_id).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_follows_transformers_eos_rule() {
        let row = [49406, 320, 49407, 0, 0];
        assert_eq!(pooling_position(&row, 49407), 2);
        // Legacy configs pool at the largest id, which is not the end token here.
        assert_eq!(pooling_position(&[10, 900, 5, 7], LEGACY_EOS_TOKEN_ID), 1);
        assert_eq!(pooling_position(&[10, 11], 3), 0);
    }
}
