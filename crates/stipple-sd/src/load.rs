//! Reading a checkpoint from disk: a diffusers folder or an original-layout single file.
//! Weights may be f32, f16 or bf16; every network computes in f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use stipple_math::Prediction;
use stipple_nn::text::{HiddenAct, TextEncoder, TextEncoderConfig};
use stipple_nn::{check_tensors, load_tensors, record_shapes, TokenLinear};

use crate::ldm::{
    clip_to_encoder, open_clip_projection, open_clip_to_encoder, take_prefix, unet_ldm_name, unet_to_diffusers, vae_to_diffusers, CLIP_PREFIX,
    OPEN_CLIP_PREFIX, SDXL_CLIP_PREFIX, SDXL_OPEN_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX,
};
use crate::configs::{read, text_config};
use crate::lora::{self, Lora};
use crate::{
    Architecture, AutoencoderKL, ClipTokenizer, SchedulerConfig, SdConfigs, SdError, SecondTextEncoder, UNet2DConditionConfig,
    UNet2DConditionModel,
};

/// Where a checkpoint's parts come from, besides the checkpoint itself.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A diffusers folder whose `unet/`, `vae/`, `text_encoder/` and `scheduler/` configs
    /// describe a single-file checkpoint (as diffusers' `from_single_file(config=…)`); its
    /// `tokenizer/` is used too when `tokenizer_dir` is not given. Without it a single file gets
    /// the released configs of its architecture. Ignored for folders.
    pub config_dir: Option<PathBuf>,
    /// A folder with the CLIP tokenizer's `vocab.json` and `merges.txt`. For a single file the
    /// default is `config_dir/tokenizer`, else a `tokenizer/` folder beside the file.
    pub tokenizer_dir: Option<PathBuf>,
    /// SDXL's second tokenizer (`vocab.json`, `merges.txt`, padding `!`); for a single file
    /// the default is `config_dir/tokenizer_2`, else a `tokenizer_2/` folder beside the file.
    pub tokenizer_2_dir: Option<PathBuf>,
    /// What the U-Net predicts, over the scheduler config's (or the default's). The tensor
    /// names of an SD 2.x single file do not say whether it is the ε model (512 px base) or
    /// the v model (768 px); without this a single SD 2.x file is taken as v-prediction.
    pub prediction: Option<Prediction>,
    /// LoRA files (kohya / web-UI format) and their multipliers, merged into the U-Net's and
    /// text encoders' weights at load (see [`crate::Lora`]).
    pub loras: Vec<(PathBuf, f64)>,
}

/// The LoRAs to merge and which of their modules were merged.
struct Merger {
    loras: Vec<Lora>,
    used: Vec<Vec<String>>,
}

impl Merger {
    /// Merges into a text encoder's tensors, whose LoRA keys start with `prefix`.
    fn apply(&mut self, tensors: &mut HashMap<String, Tensor>, prefix: &str) -> Result<(), SdError> {
        lora::merge(tensors, &self.loras, prefix, &|_| None, &mut self.used)
    }

    /// Merges into the U-Net's tensors (diffusers names), matching diffusers or SGM module names.
    fn apply_unet(&mut self, tensors: &mut HashMap<String, Tensor>, cfg: &UNet2DConditionConfig) -> Result<(), SdError> {
        lora::merge(tensors, &self.loras, lora::UNET, &|name| unet_ldm_name(name, cfg), &mut self.used)
    }
}

/// The loaded parts of a checkpoint, before they become a pipeline.
pub(crate) struct Parts {
    pub architecture: Architecture,
    pub tokenizer: ClipTokenizer,
    pub text_encoder: TextEncoder,
    pub text_encoder_2: Option<SecondTextEncoder>,
    pub unet: UNet2DConditionModel,
    pub vae: AutoencoderKL,
    pub scheduler: SchedulerConfig,
}

/// Loads a diffusers folder (`model_index.json`) or a `.safetensors` single file.
pub(crate) fn load(path: &Path, options: &LoadOptions, device: &Device) -> Result<Parts, SdError> {
    let meta = std::fs::metadata(path).map_err(|e| SdError::io(path, e))?;
    let loras = options.loras.iter().map(|(p, m)| Lora::read(p, *m, device)).collect::<Result<Vec<_>, _>>()?;
    let mut merger = Merger { loras, used: Vec::new() };
    let merger = &mut merger;
    let parts = if meta.is_dir() {
        if !path.join("model_index.json").is_file() {
            return Err(SdError::NotACheckpoint {
                path: path.to_path_buf(),
                reason: "a folder without model_index.json (a diffusers folder holds model_index.json, unet/, vae/, \
                         text_encoder/, tokenizer/ and scheduler/)"
                    .into(),
            });
        }
        load_folder(path, device, merger)
    } else {
        load_single_file(path, options, device, merger)
    };
    let mut parts = parts?;
    lora::check_all_used(&merger.loras, &merger.used)?;
    if let Some(p) = options.prediction {
        parts.scheduler.prediction_type = p;
    }
    Ok(parts)
}

/// Builds a network from `tensors` after checking names and shapes against what `build`
/// asks for (the error lists missing, unexpected and mis-shaped tensors).
fn build<T>(
    tensors: HashMap<String, Tensor>,
    path: &Path,
    device: &Device,
    build: impl Fn(VarBuilder) -> candle_core::Result<T>,
) -> Result<T, SdError> {
    let expected = record_shapes(|vb| build(vb).map(|_| ()))?;
    check_tensors(&tensors, expected, path)?;
    Ok(build(VarBuilder::from_tensors(tensors, DType::F32, device))?)
}

/// The text encoder's tensors that `cfg` needs (other parts of a CLIP checkpoint dropped).
fn text_encoder(
    tensors: HashMap<String, Tensor>,
    cfg: &TextEncoderConfig,
    path: &Path,
    device: &Device,
    merger: Option<(&mut Merger, &str)>,
) -> Result<TextEncoder, SdError> {
    let expected = record_shapes(|vb| TextEncoder::new(vb, cfg).map(|_| ()))?;
    let mut tensors: HashMap<String, Tensor> =
        clip_to_encoder(tensors).into_iter().filter(|(k, _)| expected.iter().any(|(e, _)| e == k)).collect();
    if let Some((m, prefix)) = merger {
        m.apply(&mut tensors, prefix)?;
    }
    build(tensors, path, device, |vb| TextEncoder::new(vb, cfg))
}

/// The weight files of `dir/{stem}`: `{stem}.safetensors`, its `.fp16` variant, or the shards
/// named by `{stem}(.fp16).safetensors.index.json` (`weight_map`); `.bin` files are refused by
/// name. The first path names the weights in messages.
pub(crate) fn weights_files(dir: &Path, stem: &str) -> Result<Vec<PathBuf>, SdError> {
    for name in [format!("{stem}.safetensors"), format!("{stem}.fp16.safetensors")] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(vec![p]);
        }
    }
    for name in [format!("{stem}.safetensors.index.json"), format!("{stem}.fp16.safetensors.index.json")] {
        let index = dir.join(name);
        if index.is_file() {
            let json: serde_json::Value =
                serde_json::from_str(&read(&index)?).map_err(|e| SdError::config(&index, format!("not valid JSON: {e}")))?;
            let shards: std::collections::BTreeSet<&str> = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| SdError::config(&index, "no weight_map object"))?
                .values()
                .filter_map(|v| v.as_str())
                .collect();
            if shards.is_empty() || shards.iter().any(|s| s.contains('/') || s.contains('\\')) {
                return Err(SdError::config(&index, "weight_map must name shard files in the same folder"));
            }
            return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
        }
    }
    let reason = if dir.join(format!("{stem}.bin")).is_file() {
        format!("{stem}.bin is a pickle; only .safetensors weights are read (convert it first)")
    } else {
        format!("no {stem}.safetensors (or .fp16, or a sharded .safetensors.index.json)")
    };
    Err(SdError::NotACheckpoint { path: dir.to_path_buf(), reason })
}

/// Every tensor of [`weights_files`], and the path that names them.
fn load_weights(dir: &Path, stem: &str, device: &Device) -> Result<(PathBuf, HashMap<String, Tensor>), SdError> {
    let files = weights_files(dir, stem)?;
    let mut all = HashMap::new();
    for f in &files {
        all.extend(load_tensors(f, device)?);
    }
    Ok((files[0].clone(), all))
}

/// The architecture of a diffusers folder, from its pipeline class and text encoder.
pub(crate) fn folder_architecture(dir: &Path) -> Result<Architecture, SdError> {
    let index_path = dir.join("model_index.json");
    let index: serde_json::Value =
        serde_json::from_str(&read(&index_path)?).map_err(|e| SdError::config(&index_path, format!("not valid JSON: {e}")))?;
    if index.get("text_encoder_2").is_some() {
        let refiner = index.get("text_encoder").is_none_or(|t| t.get(0).is_some_and(|v| v.is_null()));
        return Ok(if refiner { Architecture::SdxlRefiner } else { Architecture::SdxlBase });
    }
    for part in ["unet", "vae", "text_encoder", "tokenizer", "scheduler"] {
        if index.get(part).is_none() {
            return Err(SdError::NotACheckpoint {
                path: dir.to_path_buf(),
                reason: format!("model_index.json names no {part} (a Stable Diffusion pipeline has unet, vae, text_encoder, tokenizer, scheduler)"),
            });
        }
    }
    let text = text_config(&dir.join("text_encoder").join("config.json"))?;
    Ok(if text.hidden_act == HiddenAct::Gelu { Architecture::Sd2 } else { Architecture::Sd1 })
}

fn unsupported(path: &Path, arch: Architecture, supported: &[Architecture]) -> SdError {
    let supported = supported.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ");
    SdError::Unsupported { path: path.to_path_buf(), arch, supported }
}

fn load_folder(dir: &Path, device: &Device, merger: &mut Merger) -> Result<Parts, SdError> {
    let architecture = folder_architecture(dir)?;
    if !Architecture::SUPPORTED_FOLDER.contains(&architecture) {
        return Err(unsupported(dir, architecture, Architecture::SUPPORTED_FOLDER));
    }
    let SdConfigs { unet: unet_cfg, vae: vae_cfg, text_encoder: text_cfg, text_encoder_2: text_cfg_2, scheduler } =
        SdConfigs::from_folder(dir)?;
    let tokenizer = ClipTokenizer::from_dir(&dir.join("tokenizer"))?;

    let (path, mut unet_t) = load_weights(&dir.join("unet"), "diffusion_pytorch_model", device)?;
    merger.apply_unet(&mut unet_t, &unet_cfg)?;
    let unet = build(unet_t, &path, device, |vb| UNet2DConditionModel::new(vb, &unet_cfg))?;
    let (path, tensors) = load_weights(&dir.join("vae"), "diffusion_pytorch_model", device)?;
    let tensors = vae_to_diffusers(tensors, &vae_cfg)?;
    let vae = build(tensors, &path, device, |vb| AutoencoderKL::new(vb, &vae_cfg))?;
    let (path, tensors) = load_weights(&dir.join("text_encoder"), "model", device)?;
    let te_prefix = if architecture == Architecture::SdxlBase { lora::TEXT_ENCODER_1 } else { lora::TEXT_ENCODER };
    let text_encoder = text_encoder(tensors, &text_cfg, &path, device, Some((&mut *merger, te_prefix)))?;
    let text_encoder_2 = match (&text_cfg_2, architecture) {
        (Some(cfg), Architecture::SdxlBase) => {
            // A `CLIPTextModelWithProjection`: `text_projection.weight` beside the encoder.
            let (path, mut tensors) = load_weights(&dir.join("text_encoder_2"), "model", device)?;
            let projection = tensors.remove("text_projection.weight");
            let tokenizer = ClipTokenizer::from_dir(&dir.join("tokenizer_2"))?;
            Some(second_text_encoder(tokenizer, cfg, tensors, projection, &path, device, merger)?)
        }
        _ => None,
    };
    let text_width = text_cfg.hidden_size + text_encoder_2.as_ref().map_or(0, |t| t.encoder.config().hidden_size);
    check_parts(dir, &tokenizer, &text_cfg, text_width, &unet_cfg)?;
    Ok(Parts { architecture, tokenizer, text_encoder, text_encoder_2, unet, vae, scheduler })
}

/// SDXL's second text encoder from its tensors (named from the encoder's root) and the
/// `(projection_dim, hidden_size)` weight of its `text_projection`.
fn second_text_encoder(
    tokenizer: ClipTokenizer,
    (cfg, projection_dim): &(TextEncoderConfig, usize),
    tensors: HashMap<String, Tensor>,
    projection: Option<Tensor>,
    path: &Path,
    device: &Device,
    merger: &mut Merger,
) -> Result<SecondTextEncoder, SdError> {
    let projection = build(
        projection.map(|t| ("weight".to_string(), t)).into_iter().collect(),
        path,
        device,
        |vb| Ok(TokenLinear::from_parts(vb.get((*projection_dim, cfg.hidden_size), "weight")?, None)),
    )?;
    let encoder = text_encoder(tensors, cfg, path, device, Some((merger, lora::TEXT_ENCODER_2)))?;
    Ok(SecondTextEncoder { tokenizer, encoder, text_projection: projection })
}

/// The parts must fit together: token ids inside the embedding, text width (of both
/// encoders for SDXL) = cross-attention width.
fn check_parts(path: &Path, tok: &ClipTokenizer, text: &TextEncoderConfig, text_width: usize, unet: &UNet2DConditionConfig) -> Result<(), SdError> {
    if tok.vocab_size() > text.vocab_size {
        return Err(SdError::config(path, format!("the tokenizer has {} entries but the text encoder embeds {}", tok.vocab_size(), text.vocab_size)));
    }
    if text_width != unet.cross_attention_dim {
        return Err(SdError::config(
            path,
            format!("the text encoders' width {text_width} differs from the U-Net's cross_attention_dim {}", unet.cross_attention_dim),
        ));
    }
    Ok(())
}

fn load_single_file(path: &Path, options: &LoadOptions, device: &Device, merger: &mut Merger) -> Result<Parts, SdError> {
    let mut tensors = load_tensors(path, device).map_err(|e| match e {
        stipple_nn::NnError::NotSafetensors { reason, .. } => SdError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: format!("not a .safetensors file ({reason}); .ckpt pickles are not read"),
        },
        other => SdError::Weights(other),
    })?;
    let keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
    let Some(architecture) = Architecture::detect(keys.iter().copied()) else {
        return Err(SdError::UnknownArchitecture { path: path.to_path_buf(), found: Architecture::key_summary(keys, 8) });
    };
    if !Architecture::SUPPORTED_SINGLE_FILE.contains(&architecture) {
        return Err(unsupported(path, architecture, Architecture::SUPPORTED_SINGLE_FILE));
    }
    let in_channels = tensors.get(&format!("{UNET_PREFIX}input_blocks.0.0.weight")).map_or(4, |t| t.dims().get(1).copied().unwrap_or(4));
    let configs = match &options.config_dir {
        Some(dir) => SdConfigs::from_folder(dir)?,
        None => SdConfigs::released(architecture, in_channels)?,
    };
    let SdConfigs { unet: unet_cfg, vae: vae_cfg, text_encoder: text_cfg, text_encoder_2: text_cfg_2, scheduler } = configs;
    let tokenizer_at = |given: &Option<PathBuf>, name: &str| -> Result<ClipTokenizer, SdError> {
        let dir = given
            .clone()
            .or_else(|| options.config_dir.as_ref().map(|d| d.join(name)))
            .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).join(name));
        ClipTokenizer::from_dir(&dir).map_err(|e| match e {
            SdError::MissingTokenizer { path, .. } => SdError::MissingTokenizer {
                path,
                hint: format!("; a single file holds no tokenizer: give one, e.g. the {name}/ folder of a {architecture} diffusers folder"),
            },
            other => other,
        })
    };
    let tokenizer = tokenizer_at(&options.tokenizer_dir, "tokenizer")?;

    let mut unet_t = unet_to_diffusers(take_prefix(&mut tensors, UNET_PREFIX), &unet_cfg);
    merger.apply_unet(&mut unet_t, &unet_cfg)?;
    let unet = build(unet_t, path, device, |vb| UNet2DConditionModel::new(vb, &unet_cfg))?;
    let vae_t: HashMap<String, Tensor> = take_prefix(&mut tensors, VAE_PREFIX).into_iter().filter(|(k, _)| !k.starts_with("loss.")).collect();
    let vae_t = vae_to_diffusers(vae_t, &vae_cfg)?;
    let vae = build(vae_t, path, device, |vb| AutoencoderKL::new(vb, &vae_cfg))?;
    let text_t = match architecture {
        Architecture::Sd2 => open_clip_to_encoder(take_prefix(&mut tensors, OPEN_CLIP_PREFIX), text_cfg.num_hidden_layers)?,
        Architecture::SdxlBase => take_prefix(&mut tensors, SDXL_CLIP_PREFIX),
        _ => take_prefix(&mut tensors, CLIP_PREFIX),
    };
    let te_prefix = if architecture == Architecture::SdxlBase { lora::TEXT_ENCODER_1 } else { lora::TEXT_ENCODER };
    let text_encoder = text_encoder(text_t, &text_cfg, path, device, Some((&mut *merger, te_prefix)))?;
    let text_encoder_2 = match (&text_cfg_2, architecture) {
        (Some(cfg), Architecture::SdxlBase) => {
            let open_clip = take_prefix(&mut tensors, SDXL_OPEN_CLIP_PREFIX);
            let projection = open_clip_projection(&open_clip)?;
            let encoder_t = open_clip_to_encoder(open_clip, cfg.0.num_hidden_layers)?;
            let tokenizer = tokenizer_at(&options.tokenizer_2_dir, "tokenizer_2")?;
            Some(second_text_encoder(tokenizer, cfg, encoder_t, projection, path, device, merger)?)
        }
        (None, Architecture::SdxlBase) => return Err(SdError::config(path, "SDXL needs a text_encoder_2 config (config_dir has no text_encoder_2/config.json)")),
        _ => None,
    };
    let text_width = text_cfg.hidden_size + text_encoder_2.as_ref().map_or(0, |t| t.encoder.config().hidden_size);
    check_parts(path, &tokenizer, &text_cfg, text_width, &unet_cfg)?;
    Ok(Parts { architecture, tokenizer, text_encoder, text_encoder_2, unet, vae, scheduler })
}
