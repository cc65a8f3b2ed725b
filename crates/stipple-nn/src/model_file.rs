//! The stand-alone model file: one `.safetensors` holding the (EMA) weights, with the
//! configuration that rebuilds the network and its diffusion process in the metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use stipple_series::SeriesTransform;

use candle_core::DType;
use candle_nn::VarBuilder;

use crate::text::{PromptEncoder, PromptTokenizer, TextEncoder, TextEncoderConfig};
use crate::{check_tensors, load_tensors, read_metadata, save_safetensors, DiffWaveNet, DiffusionConfig, Net, NetworkConfig, NnError, SampleShape, UNet1DConfig, UNetConfig};

/// Prefix of the text encoder's parameters in a model file (its transformers names follow).
pub const TEXT_ENCODER_PREFIX: &str = "text_encoder.text_model";
/// Metadata key of the tokenizer (`tokenizer.json` text) of a text-conditioned model.
pub const TOKENIZER_KEY: &str = "tokenizer";

/// Value of the `format` metadata key in every Stipple model file.
pub const MODEL_FORMAT: &str = "stipple-model";
/// The newest version of the model-file layout this build reads and writes; bumped when old
/// readers could misread new files. Version 1 files hold a 2-D U-Net (config key `unet`) and
/// are still written as version 1, so older releases keep reading them; version 2 added other
/// networks (`unet1d`, `diffwave`), the forecast window (`series`) and the sound format (`sound`), which a version-1 reader refuses
/// with a version message instead of a confusing config error. Version 3 added the series
/// transform (`series.transform`); only a model with one is written as version 3, so a
/// version-2 reader refuses it instead of forecasting the untransformed series with it.
pub const FORMAT_VERSION: u32 = 3;

/// Everything needed to rebuild a model and sample from it. In the file's JSON the network is
/// stored under its kind's key (`unet` for the 2-D U-Net, as in every version-1 file;
/// `unet1d` for the 1-D U-Net, `diffwave` for DiffWave).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelConfigRepr", into = "ModelConfigRepr")]
pub struct ModelConfig {
    /// The network.
    pub network: NetworkConfig,
    /// The noise process it was trained on.
    pub diffusion: DiffusionConfig,
    /// Names of the classes of a class-conditional model, sorted; class `i` is label `i` and
    /// label `classes.len()` is the "no label" token of classifier-free guidance. Empty for
    /// an unconditional model.
    pub classes: Vec<String>,
    /// The text encoder of a text-conditioned model (its weights are stored under
    /// [`TEXT_ENCODER_PREFIX`], its tokenizer in the [`TOKENIZER_KEY`] metadata).
    pub text_encoder: Option<TextEncoderConfig>,
    /// The window of a forecasting model (sequences of context + horizon values).
    pub series: Option<SeriesWindow>,
    /// The sound format of a model of waveforms (mono clips of the network's length).
    pub sound: Option<SoundFormat>,
}

/// What the sequences of a sound model are: mono samples in [−1, 1] at `sample_rate` Hz.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoundFormat {
    pub sample_rate: u32,
}

/// The window a time-series model was trained on: `context` observed values followed by
/// `horizon` values to forecast, from the columns named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesWindow {
    pub context: usize,
    pub horizon: usize,
    /// The CSV columns the model was trained on.
    pub columns: Vec<String>,
    /// The transform applied to each column before it was cut into windows (log,
    /// differences), which a forecast applies to its history and inverts on its paths. Absent
    /// in files written before it existed: no transform.
    #[serde(default, skip_serializing_if = "SeriesTransform::is_identity")]
    pub transform: SeriesTransform,
}

/// The JSON form of [`ModelConfig`]: one optional key per kind of network, exactly one set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelConfigRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unet: Option<UNetConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unet1d: Option<UNet1DConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diffwave: Option<DiffWaveNet>,
    #[serde(default)]
    diffusion: DiffusionConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text_encoder: Option<TextEncoderConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    series: Option<SeriesWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sound: Option<SoundFormat>,
}

impl TryFrom<ModelConfigRepr> for ModelConfig {
    type Error = String;
    fn try_from(r: ModelConfigRepr) -> Result<Self, String> {
        let network = match (r.unet, r.unet1d, r.diffwave) {
            (Some(c), None, None) => NetworkConfig::UNet2D(c),
            (None, Some(c), None) => NetworkConfig::UNet1D(c),
            (None, None, Some(c)) => NetworkConfig::DiffWave(c),
            _ => return Err("the config needs exactly one network key: unet (2-D), unet1d (1-D) or diffwave".into()),
        };
        Ok(ModelConfig { network, diffusion: r.diffusion, classes: r.classes, text_encoder: r.text_encoder, series: r.series, sound: r.sound })
    }
}

impl From<ModelConfig> for ModelConfigRepr {
    fn from(c: ModelConfig) -> Self {
        let (unet, unet1d, diffwave) = match c.network {
            NetworkConfig::UNet2D(n) => (Some(n), None, None),
            NetworkConfig::UNet1D(n) => (None, Some(n), None),
            NetworkConfig::DiffWave(n) => (None, None, Some(n)),
        };
        ModelConfigRepr { unet, unet1d, diffwave, diffusion: c.diffusion, classes: c.classes, text_encoder: c.text_encoder, series: c.series, sound: c.sound }
    }
}

impl ModelConfig {
    /// A model of network `network` and noise process `diffusion`, unconditional.
    pub fn new(network: NetworkConfig, diffusion: DiffusionConfig) -> Self {
        ModelConfig { network, diffusion, classes: vec![], text_encoder: None, series: None, sound: None }
    }

    /// The format version a file of this model is written with: 1 for a 2-D U-Net without a
    /// forecast window or sound format (what every reader since version 1 reads),
    /// [`FORMAT_VERSION`] (3) for a forecasting model with a series transform, 2 otherwise.
    pub fn format_version(&self) -> u32 {
        match (&self.network, &self.series, &self.sound) {
            (NetworkConfig::UNet2D(_), None, None) => 1,
            (_, Some(w), _) if !w.transform.is_identity() => FORMAT_VERSION,
            _ => 2,
        }
    }

    /// Validates every part.
    pub fn validate(&self) -> Result<(), NnError> {
        self.network.validate()?;
        let embeds = self.network.num_class_embeds();
        if !self.classes.is_empty() && embeds != Some(self.classes.len() + 1) {
            return Err(NnError::Config(format!(
                "{} classes need num_class_embeds = {} (one per class and the \"no label\" token), got {embeds:?}",
                self.classes.len(),
                self.classes.len() + 1,
            )));
        }
        if let Some(w) = &self.series {
            let shape = self.network.sample_shape()?;
            if w.context == 0 || w.horizon == 0 || shape.spatial != [w.context + w.horizon] {
                return Err(NnError::Config(format!(
                    "a forecast window of context {} + horizon {} (both at least 1) needs a 1-D network of that length, got sample shape {:?}",
                    w.context,
                    w.horizon,
                    shape.dims()
                )));
            }
            w.transform.validate().map_err(|e| NnError::Config(format!("the forecast window's transform: {e}")))?;
        }
        if let Some(f) = &self.sound {
            let shape = self.network.sample_shape()?;
            if f.sample_rate == 0 || shape.channels != 1 || shape.spatial.len() != 1 || self.series.is_some() {
                return Err(NnError::Config(format!(
                    "a sound model needs a sample rate above 0 ({} Hz) and a 1-D network of one channel (mono), and no forecast window; got sample shape {:?}",
                    f.sample_rate,
                    shape.dims()
                )));
            }
        }
        match (&self.text_encoder, self.network.cross_attention_dim()) {
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

    /// The label of class `name`: a class name, or else a class index (`"0"` …
    /// `classes.len() − 1`; a name made of digits is matched as a name first). The error says
    /// when the model has no classes, or lists some of the known ones.
    pub fn class_index(&self, name: &str) -> Result<u32, NnError> {
        if self.classes.is_empty() {
            return Err(NnError::Config(format!(
                "this model is not class-conditional, so it cannot be asked for class \"{name}\" \
                 (train one with --labels csv or --labels folders)"
            )));
        }
        let by_index = || name.parse::<usize>().ok().filter(|&i| i < self.classes.len());
        match self.classes.iter().position(|c| c == name).or_else(by_index) {
            Some(i) => Ok(i as u32),
            None => {
                let shown: Vec<&str> = self.classes.iter().take(12).map(String::as_str).collect();
                let more = if self.classes.len() > shown.len() { format!(", … ({} in all)", self.classes.len()) } else { String::new() };
                Err(NnError::Config(format!(
                    "unknown class \"{name}\"; the model knows: {}{more} (or their indices 0 to {})",
                    shown.join(", "),
                    self.classes.len() - 1
                )))
            }
        }
    }

    /// The shape of one sample the model generates (validated configs have one).
    pub fn sample_shape(&self) -> SampleShape {
        self.network.sample_shape().expect("validated model configs have a sample shape")
    }

    /// Side of the square images the model works on; `None` for a model of sequences.
    pub fn image_size(&self) -> Option<usize> {
        self.sample_shape().square_side()
    }
}

/// A model read from disk.
pub struct LoadedModel {
    pub config: ModelConfig,
    pub net: Net,
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
    metadata.insert("format_version".to_string(), config.format_version().to_string());
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
    if !version.parse::<u32>().is_ok_and(|v| (1..=FORMAT_VERSION).contains(&v)) {
        return Err(NnError::Foreign {
            path: path.to_path_buf(),
            reason: format!(
                "it has model format version {version}, this build of Stipple reads versions 1 to {FORMAT_VERSION}; \
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
    let net = Net::from_tensors(tensors, &config.network, device)?;
    Ok(LoadedModel { config, net, text, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_named_or_numbered() {
        let net = UNet1DConfig { num_class_embeds: Some(4), ..UNet1DConfig::tiny(8, 1) };
        let mut cfg = ModelConfig::new(net.into(), DiffusionConfig::default());
        cfg.classes = vec!["2".into(), "no".into(), "yes".into()];
        cfg.validate().unwrap();
        assert_eq!(cfg.class_index("yes").unwrap(), 2);
        assert_eq!(cfg.class_index("1").unwrap(), 1, "an index names its class");
        assert_eq!(cfg.class_index("2").unwrap(), 0, "a name made of digits is a name first");
        let e = cfg.class_index("3").unwrap_err().to_string();
        assert!(e.contains("unknown class \"3\"") && e.contains("2, no, yes") && e.contains("0 to 2"), "{e}");
        cfg.classes.clear();
        cfg.network.set_num_class_embeds(None);
        assert!(cfg.class_index("0").unwrap_err().to_string().contains("not class-conditional"));
    }
}
