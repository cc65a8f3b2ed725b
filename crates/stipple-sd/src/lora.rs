//! LoRA files in the kohya / web-UI format, merged into the weights at load.
//!
//! A LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3) adds
//! `ΔW = multiplier · (alpha / rank) · up · down` to a weight `W`, with `down` `(rank, in, k…)`
//! and `up` `(out, rank, 1…)` (`rank` = `down`'s first dimension; kohya sd-scripts' `alpha`
//! scaling, the web UI's `<lora:name:multiplier>`). Keys are `lora_unet_<module>` and
//! `lora_te_<module>` (SDXL: `lora_te1_`, `lora_te2_`) with the module path written with `_`
//! for `.`: diffusers' path (`lora_unet_down_blocks_1_attentions_0_proj_in`,
//! `lora_te_text_model_encoder_layers_0_self_attn_q_proj`) or, for the U-Net, the SGM / `ldm`
//! one that SDXL LoRAs use (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`),
//! each with `.lora_down.weight`, `.lora_up.weight` and an optional `.alpha` (default: rank).
//! Linear layers and convolutions (LoCon: a `k×k` down, a 1×1 up) are both merged as
//! `(up.flatten(1) · down.flatten(1))` reshaped to `W`'s shape.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use stipple_nn::load_tensors;

use crate::SdError;

/// Which network a LoRA key prefix addresses: the U-Net.
pub(crate) const UNET: &str = "lora_unet_";
/// The SD 1.x/2.x text encoder (named from `text_model.`).
pub(crate) const TEXT_ENCODER: &str = "lora_te_text_model_";
/// SDXL's first text encoder.
pub(crate) const TEXT_ENCODER_1: &str = "lora_te1_text_model_";
/// SDXL's second text encoder.
pub(crate) const TEXT_ENCODER_2: &str = "lora_te2_text_model_";

/// One low-rank pair.
#[derive(Debug, Clone)]
struct Pair {
    down: Tensor,
    up: Tensor,
    alpha: Option<f64>,
}

/// A LoRA file read into pairs, with its multiplier.
#[derive(Debug, Clone)]
pub struct Lora {
    path: PathBuf,
    multiplier: f64,
    /// By module key without suffix (`lora_unet_down_blocks_0_resnets_0_conv1`).
    pairs: BTreeMap<String, Pair>,
}

fn bad(path: &Path, message: String) -> SdError {
    SdError::Lora { path: path.to_path_buf(), message }
}

impl Lora {
    /// Reads a kohya-format LoRA `.safetensors` file, to be merged at `multiplier`.
    pub fn read(path: &Path, multiplier: f64, device: &Device) -> Result<Self, SdError> {
        let tensors = load_tensors(path, device)?;
        // (lora_down, lora_up, alpha) of each module as they are read.
        type Parts = (Option<Tensor>, Option<Tensor>, Option<f64>);
        let mut parts: BTreeMap<String, Parts> = BTreeMap::new();
        for (key, t) in tensors {
            let (module, what) = if let Some(m) = key.strip_suffix(".lora_down.weight") {
                (m, 0)
            } else if let Some(m) = key.strip_suffix(".lora_up.weight") {
                (m, 1)
            } else if let Some(m) = key.strip_suffix(".alpha") {
                (m, 2)
            } else {
                return Err(bad(path, format!("{key:?} is not a kohya LoRA tensor (<module>.lora_down.weight, .lora_up.weight, .alpha)")));
            };
            let entry = parts.entry(module.to_string()).or_default();
            match what {
                0 => entry.0 = Some(t.to_dtype(DType::F32)?),
                1 => entry.1 = Some(t.to_dtype(DType::F32)?),
                _ => entry.2 = Some(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?.first().copied().unwrap_or(0.0)),
            }
        }
        let mut pairs = BTreeMap::new();
        for (module, (down, up, alpha)) in parts {
            let (Some(down), Some(up)) = (down, up) else {
                return Err(bad(path, format!("{module} needs both lora_down.weight and lora_up.weight")));
            };
            if down.dim(0)? != up.dim(1)? {
                return Err(bad(path, format!("{module}: lora_down has rank {} but lora_up {}", down.dim(0)?, up.dim(1)?)));
            }
            pairs.insert(module, Pair { down, up, alpha });
        }
        if pairs.is_empty() {
            return Err(bad(path, "no LoRA pairs in the file".into()));
        }
        Ok(Self { path: path.to_path_buf(), multiplier, pairs })
    }
}

/// Merges every pair of `loras` whose key is `prefix` + a weight's module path (`.` → `_`) into
/// `tensors` (diffusers names of one network), and records the keys used in `used`. `alias`
/// gives a second name of a weight (the SGM name of a U-Net weight, which SDXL LoRAs use).
pub(crate) fn merge(
    tensors: &mut HashMap<String, Tensor>,
    loras: &[Lora],
    prefix: &str,
    alias: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<Vec<String>>,
) -> Result<(), SdError> {
    if loras.is_empty() {
        return Ok(());
    }
    let key = |name: &str| name.strip_suffix(".weight").map(|m| format!("{prefix}{}", m.replace('.', "_")));
    let modules: HashMap<String, String> = tensors
        .keys()
        .flat_map(|k| [key(k), alias(k).as_deref().and_then(key)].into_iter().flatten().map(move |m| (m, k.clone())))
        .collect();
    used.resize(loras.len(), Vec::new());
    for (l, lora) in loras.iter().enumerate() {
        for (module, pair) in &lora.pairs {
            let Some(name) = modules.get(module) else { continue };
            let w = &tensors[name];
            let rank = pair.down.dim(0)?;
            let scale = lora.multiplier * pair.alpha.unwrap_or(rank as f64) / rank as f64;
            let product = pair.up.flatten_from(1)?.matmul(&pair.down.flatten_from(1)?)?;
            if product.elem_count() != w.elem_count() {
                return Err(bad(&lora.path, format!("{module}: the pair makes a {:?} update for the {:?} weight {name}", product.dims(), w.dims())));
            }
            let delta = (product.reshape(w.shape())? * scale)?;
            let merged = (w.to_dtype(DType::F32)? + delta)?;
            tensors.insert(name.clone(), merged);
            used[l].push(module.clone());
        }
    }
    Ok(())
}

/// Errors for LoRA keys that matched no weight (a LoRA for another architecture, or a format
/// this build does not read), listing a few.
pub(crate) fn check_all_used(loras: &[Lora], used: &[Vec<String>]) -> Result<(), SdError> {
    for (l, lora) in loras.iter().enumerate() {
        let done = used.get(l).map(Vec::as_slice).unwrap_or(&[]);
        let left: Vec<&String> = lora.pairs.keys().filter(|k| !done.contains(k)).collect();
        if !left.is_empty() {
            let n = left.len();
            let list = left.iter().take(4).map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return Err(bad(&lora.path, format!("{n} LoRA modules match no weight of this model ({list}{})", if n > 4 { ", …" } else { "" })));
        }
    }
    Ok(())
}
