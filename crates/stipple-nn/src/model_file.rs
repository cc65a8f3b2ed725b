//! The stand-alone model file: one `.safetensors` holding the (EMA) weights, with the
//! configuration that rebuilds the network and its diffusion process in the metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use candle_core::DType;
use candle_nn::VarBuilder;

use crate::text::{PromptEncoder, PromptTokenizer, TextEncoder, TextEncoderConfig};
use crate::{check_tensors, load_tensors, read_metadata, save_safetensors, unet_from_tensors, DiffusionConfig, NnError, UNet2D, UNetConfig};

/// Prefix of the text encoder's parameters in a model file (its transformers names follow).
pub const TEXT_ENCODER_PREFIX: &str = "text_encoder.text_model";
/// Metadata key of the tokenizer (`tokenizer.json` text) of a text-conditioned model.
pub const TOKENIZER_KEY: &str = "tokenizer";

/// Value of the `format` metadata key in every Stipple model file.
pub const MODEL_FORMAT: &str = "stipple-model";
/// Version of the model-file layout; bumped when old readers could misread new files.
pub const FORMAT_VERSION: u32 = 1;

/// Everything needed to rebuild a model and sample from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network.
    pub unet: UNetConfig,
    /// The noise process it was trained on.
    #[serde(default)]
    pub diffusion: DiffusionConfig,
    /// Names of the classes of a class-conditional model, sorted; class `i` is label `i` and
    /// label `classes.len()` is the "no label" token of classifier-free guidance. Empty for
    /// an unconditional model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The text encoder of a text-conditioned model (its weights are stored under
    /// [`TEXT_ENCODER_PREFIX`], its tokenizer in the [`TOKENIZER_KEY`] metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<TextEncoderConfig>,
}

impl ModelConfig {
    /// Validates both parts.
    pub fn validate(&self) -> Result<(), NnError> {
        self.unet.validate()?;
        if self.unet.sample_size.is_none() {
            return Err(NnError::Config("sample_size must be set: it is the image size the model generates".into()));
        }
        if !self.classes.is_empty() && self.unet.num_class_embeds != Some(self.classes.len() + 1) {
            return Err(NnError::Config(format!(
                "{} classes need num_class_embeds = {} (one per class and the \"no label\" token), got {:?}",
                self.classes.len(),
                self.classes.len() + 1,
                self.unet.num_class_embeds
            )));
        }
        match (&self.text_encoder, self.unet.cross_attention_dim) {
            (Some(t), Some(d)) if t.hidden_size == d => t.validate()?,
            (None, None) => {}
            (t, d) => {
                return Err(NnError::Config(format!(
                    "a text encoder of width {:?} needs a U-Net with cross_attention_dim = that width, got {d:?}",
                    t.as_ref().map(|t| t.hidden_size)
                )))
            }
        }
        self.diffusion.validate().map_err(NnError::Diffusion)
    }

    /// Whether the model takes prompts.
    pub fn has_text(&self) -> bool {
        self.text_encoder.is_some()
    }

    /// The label of the "no label" (unconditional) token, for class-conditional models.
    pub fn null_class(&self) -> Option<u32> {
        (!self.classes.is_empty()).then_some(self.classes.len() as u32)
    }

    /// The label of class `name`; the error says when the model has no classes, or lists
    /// some of the known ones.
    pub fn class_index(&self, name: &str) -> Result<u32, NnError> {
        if self.classes.is_empty() {
            return Err(NnError::Config(format!(
                "this model is not class-conditional, so it cannot be asked for class \"{name}\" \
                 (train one with --labels csv or --labels folders)"
            )));
        }
        match self.classes.iter().position(|c| c == name) {
            Some(i) => Ok(i as u32),
            None => {
                let shown: Vec<&str> = self.classes.iter().take(12).map(String::as_str).collect();
                let more = if self.classes.len() > shown.len() { format!(", … ({} in all)", self.classes.len()) } else { String::new() };
                Err(NnError::Config(format!("unknown class \"{name}\"; the model knows: {}{more}", shown.join(", "))))
            }
        }
    }

    /// Side of the square images the model works on (validated to be set).
    pub fn image_size(&self) -> usize {
        self.unet.sample_size.expect("validated model configs have a sample_size")
    }
}

/// A model read from disk.
pub struct LoadedModel {
    pub config: ModelConfig,
    pub unet: UNet2D,
    /// Tokenizer and text encoder of a text-conditioned model.
    pub text: Option<PromptEncoder>,
    /// All metadata of the file (`format`, `format_version`, `config` and provenance keys).
    pub metadata: HashMap<String, String>,
}

/// Writes `tensors` (named as the U-Net's parameters, and the text encoder's under
/// [`TEXT_ENCODER_PREFIX`]) as a model file, with the tokenizer of a text-conditioned model.
/// `extra` adds provenance keys (e.g. `step`); the file is written under a temporary name
/// and renamed.
pub fn save_model_file(
    path: &Path,
    tensors: &[(String, Tensor)],
    config: &ModelConfig,
    tokenizer: Option<&PromptTokenizer>,
    extra: &[(&str, String)],
) -> Result<(), NnError> {
    let mut metadata = HashMap::new();
    match (tokenizer, config.has_text()) {
        (Some(t), true) => {
            metadata.insert(TOKENIZER_KEY.to_string(), t.to_json()?);
        }
        (None, false) => {}
        _ => return Err(NnError::Config("a model file has a tokenizer exactly when it has a text encoder".into())),
    }
    metadata.insert("format".to_string(), MODEL_FORMAT.to_string());
    metadata.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    let json = serde_json::to_string(config).map_err(|e| NnError::Config(e.to_string()))?;
    metadata.insert("config".to_string(), json);
    for (k, v) in extra {
        metadata.insert(k.to_string(), v.clone());
    }
    save_safetensors(path, tensors, &metadata)
}

/// Reads and checks a model file's metadata without loading the weights.
pub fn read_model_config(path: &Path) -> Result<(ModelConfig, HashMap<String, String>), NnError> {
    let metadata = read_metadata(path)?;
    let foreign = |what: &str| NnError::Foreign {
        path: path.to_path_buf(),
        reason: format!(
            "{what}; a Stipple model file carries the metadata keys format = \"{MODEL_FORMAT}\", \
             format_version and config (train one with `stipple train`)"
        ),
    };
    match metadata.get("format") {
        Some(f) if f == MODEL_FORMAT => {}
        Some(f) => return Err(foreign(&format!("its format is \"{f}\""))),
        None => return Err(foreign("it has no \"format\" metadata key")),
    }
    let version = metadata.get("format_version").ok_or_else(|| foreign("it has no format_version"))?;
    if version.parse::<u32>().ok() != Some(FORMAT_VERSION) {
        return Err(NnError::Foreign {
            path: path.to_path_buf(),
            reason: format!(
                "it has model format version {version}, this build of Stipple reads version {FORMAT_VERSION}; \
                 use a matching Stipple release"
            ),
        });
    }
    let json = metadata.get("config").ok_or_else(|| foreign("it has no config"))?;
    let config: ModelConfig = serde_json::from_str(json)
        .map_err(|e| foreign(&format!("its stored config is invalid ({e})")))?;
    config.validate()?;
    Ok((config, metadata))
}

/// Loads a model file: metadata first, then weights checked against the config.
pub fn load_model_file(path: &Path, device: &Device) -> Result<LoadedModel, NnError> {
    let (config, metadata) = read_model_config(path)?;
    let tokenizer = match (&config.text_encoder, metadata.get(TOKENIZER_KEY)) {
        (None, _) => None,
        (Some(_), Some(json)) => Some(PromptTokenizer::from_json(json)?),
        (Some(_), None) => {
            return Err(NnError::Foreign {
                path: path.to_path_buf(),
                reason: format!("its config has a text encoder but the metadata has no {TOKENIZER_KEY}"),
            })
        }
    };
    let tensors = load_tensors(path, device)?;
    model_from_tensors(config, tensors, tokenizer, metadata, device).map_err(|e| match e {
        NnError::WeightsMismatch { details, .. } => NnError::WeightsMismatch { path: path.to_path_buf(), details },
        other => other,
    })
}

/// Builds a model from its config and named tensors (U-Net parameters, and the text
/// encoder's under [`TEXT_ENCODER_PREFIX`]), checking names and shapes of both parts.
pub fn model_from_tensors(
    config: ModelConfig,
    tensors: HashMap<String, Tensor>,
    tokenizer: Option<PromptTokenizer>,
    metadata: HashMap<String, String>,
    device: &Device,
) -> Result<LoadedModel, NnError> {
    let text_prefix = format!("{TEXT_ENCODER_PREFIX}.");
    let (text_tensors, mut tensors): (HashMap<String, Tensor>, HashMap<String, Tensor>) =
        tensors.into_iter().partition(|(k, _)| k.starts_with(&text_prefix));
    let text = match (&config.text_encoder, tokenizer) {
        (None, _) => {
            tensors.extend(text_tensors); // reported as unexpected by the U-Net check
            None
        }
        (Some(cfg), Some(tokenizer)) => {
            check_tensors(&text_tensors, PromptEncoder::parameter_shapes(cfg, TEXT_ENCODER_PREFIX)?, Path::new("<tensors>"))?;
            let vb = VarBuilder::from_tensors(text_tensors, DType::F32, device);
            Some(PromptEncoder { tokenizer, encoder: TextEncoder::new(vb.pp(TEXT_ENCODER_PREFIX), cfg)? })
        }
        (Some(_), None) => return Err(NnError::Config("a text-conditioned model needs its tokenizer".into())),
    };
    let unet = unet_from_tensors(tensors, &config.unet, device)?;
    Ok(LoadedModel { config, unet, text, metadata })
}
