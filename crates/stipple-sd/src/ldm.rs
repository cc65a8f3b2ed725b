//! Tensor names of the original (CompVis `ldm`) layout of single-file checkpoints, renamed
//! to diffusers' names.
//!
//! Source: diffusers `src/diffusers/loaders/single_file_utils.py`
//! (`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`),
//! and the `ldm` modules they read (`openaimodel.UNetModel`: `input_blocks`, `middle_block`,
//! `output_blocks`, `ResBlock` with `in_layers`/`emb_layers`/`out_layers`; `model.Encoder`/
//! `Decoder`: `down.i.block.j`, `mid.block_1`/`attn_1`/`block_2`, `up.i` numbered from the top
//! resolution, attention projections as 1×1 convolutions).

use std::collections::HashMap;

use candle_core::Tensor;

use crate::{AutoencoderKLConfig, SdError, UNet2DConditionConfig};


/// Prefix of the U-Net in a single file.
pub const UNET_PREFIX: &str = "model.diffusion_model.";
/// Prefix of the autoencoder in a single file.
pub const VAE_PREFIX: &str = "first_stage_model.";
/// Prefix of the SD 1.x text encoder (a transformers `CLIPTextModel`) in a single file.
pub const CLIP_PREFIX: &str = "cond_stage_model.transformer.";
/// Prefix of the SD 2.x text encoder (OpenCLIP's text tower) in a single file.
pub const OPEN_CLIP_PREFIX: &str = "cond_stage_model.model.";
/// Prefix of SDXL's first text encoder (a transformers `CLIPTextModel`) in an SGM single file.
pub const SDXL_CLIP_PREFIX: &str = "conditioner.embedders.0.transformer.";
/// Prefix of SDXL's second text encoder (OpenCLIP ViT-bigG) in an SGM single file.
pub const SDXL_OPEN_CLIP_PREFIX: &str = "conditioner.embedders.1.model.";

/// `ldm` `ResBlock` parameter names → diffusers `ResnetBlock2D` names.
const RESNET: [(&str, &str); 6] = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("emb_layers.1", "time_emb_proj"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("skip_connection", "conv_shortcut"),
];

/// The tensors under `prefix`, with the prefix removed.
pub fn take_prefix(tensors: &mut HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    let keys: Vec<String> = tensors.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
    keys.into_iter().filter_map(|k| tensors.remove_entry(&k)).map(|(k, t)| (k[prefix.len()..].to_string(), t)).collect()
}

/// The `ldm` → diffusers module map of a U-Net with `cfg`'s layout: `(ldm, diffusers, resnet?)`.
fn unet_modules(cfg: &UNet2DConditionConfig) -> Vec<(String, String, bool)> {
    let (lpb, n) = (cfg.layers_per_block, cfg.block_out_channels.len());
    let mut m: Vec<(String, String, bool)> = [
        ("time_embed.0", "time_embedding.linear_1"),
        ("time_embed.2", "time_embedding.linear_2"),
        ("input_blocks.0.0", "conv_in"),
        ("out.0", "conv_norm_out"),
        ("out.2", "conv_out"),
        ("middle_block.1", "mid_block.attentions.0"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string(), false))
    .collect();
    if cfg.has_text_time() {
        m.push(("label_emb.0.0".into(), "add_embedding.linear_1".into(), false));
        m.push(("label_emb.0.2".into(), "add_embedding.linear_2".into(), false));
    }
    m.push(("middle_block.0".into(), "mid_block.resnets.0".into(), true));
    m.push(("middle_block.2".into(), "mid_block.resnets.1".into(), true));
    for i in 0..n {
        for j in 0..lpb {
            let k = 1 + i * (lpb + 1) + j;
            m.push((format!("input_blocks.{k}.0"), format!("down_blocks.{i}.resnets.{j}"), true));
            m.push((format!("input_blocks.{k}.1"), format!("down_blocks.{i}.attentions.{j}"), false));
        }
        if i + 1 < n {
            m.push((format!("input_blocks.{}.0.op", (i + 1) * (lpb + 1)), format!("down_blocks.{i}.downsamplers.0.conv"), false));
        }
        let cross = cfg.up_block_types[i] == "CrossAttnUpBlock2D";
        for j in 0..=lpb {
            let k = i * (lpb + 1) + j;
            m.push((format!("output_blocks.{k}.0"), format!("up_blocks.{i}.resnets.{j}"), true));
            if cross {
                m.push((format!("output_blocks.{k}.1"), format!("up_blocks.{i}.attentions.{j}"), false));
            }
        }
        if i + 1 < n {
            let k = i * (lpb + 1) + lpb;
            m.push((format!("output_blocks.{k}.{}.conv", if cross { 2 } else { 1 }), format!("up_blocks.{i}.upsamplers.0.conv"), false));
        }
    }
    m
}

/// Renames `ldm` U-Net tensors (prefix already removed) to diffusers names for `cfg`.
/// A name that fits no module of that layout is kept as it is, so that the check against
/// the configured network lists it as unexpected.
pub fn unet_to_diffusers(tensors: HashMap<String, Tensor>, cfg: &UNet2DConditionConfig) -> HashMap<String, Tensor> {
    let modules = unet_modules(cfg);
    tensors
        .into_iter()
        .map(|(key, t)| {
            let found = modules
                .iter()
                .filter(|(ldm, _, _)| key.strip_prefix(ldm.as_str()).is_some_and(|r| r.starts_with('.')))
                .max_by_key(|(ldm, _, _)| ldm.len());
            let Some((ldm, diff, resnet)) = found else {
                return (key, t);
            };
            let mut rest = key[ldm.len() + 1..].to_string();
            if *resnet {
                if let Some((a, b)) = RESNET.iter().find(|(a, _)| rest.starts_with(&format!("{a}."))) {
                    rest = format!("{b}{}", &rest[a.len()..]);
                }
            }
            (format!("{diff}.{rest}"), t)
        })
        .collect()
}

/// The `ldm` / SGM name of a diffusers U-Net tensor name for `cfg`'s layout (the inverse of
/// [`unet_to_diffusers`]), e.g. for LoRA files that name SGM modules; `None` when it fits none.
pub fn unet_ldm_name(name: &str, cfg: &UNet2DConditionConfig) -> Option<String> {
    let modules = unet_modules(cfg);
    let (ldm, diff, resnet) = modules
        .iter()
        .filter(|(_, diff, _)| name.strip_prefix(diff.as_str()).is_some_and(|r| r.starts_with('.')))
        .max_by_key(|(_, diff, _)| diff.len())?;
    let mut rest = name[diff.len() + 1..].to_string();
    if *resnet {
        if let Some((a, b)) = RESNET.iter().find(|(_, b)| rest.starts_with(&format!("{b}."))) {
            rest = format!("{a}{}", &rest[b.len()..]);
        }
    }
    Some(format!("{ldm}.{rest}"))
}

/// Renames `ldm` autoencoder tensors (prefix removed) to diffusers names; the attention
/// projections' `(C, C, 1, 1)` convolution weights become `(C, C)` linear weights.
/// Older diffusers names of the attention (`query`, `key`, `value`, `proj_attn`) are renamed too.
/// A name that does not parse (a level out of range) is kept as it is.
pub fn vae_to_diffusers(tensors: HashMap<String, Tensor>, cfg: &AutoencoderKLConfig) -> Result<HashMap<String, Tensor>, SdError> {
    let n = cfg.block_out_channels.len();
    tensors.into_iter().map(|(key, t)| attention_weight(vae_key(&key, n).unwrap_or(key), t)).collect()
}

/// The diffusers name of an `ldm` (or diffusers) autoencoder tensor; `None` when an `ldm`
/// level number is out of range for `n` levels.
fn vae_key(key: &str, n: usize) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len() + 2);
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let next = |d: usize| parts.get(i + d).copied();
        match p {
            "down" | "up" if i == 1 => {
                let level: usize = next(1)?.parse().ok()?;
                let level = if p == "up" { n.checked_sub(level + 1)? } else { level };
                out.push(format!("{p}_blocks.{level}"));
                i += 2;
                continue;
            }
            "block" => {
                out.push(format!("resnets.{}", next(1)?));
                i += 2;
                continue;
            }
            "downsample" => out.push("downsamplers.0".into()),
            "upsample" => out.push("upsamplers.0".into()),
            "mid" => out.push("mid_block".into()),
            "block_1" => out.push("resnets.0".into()),
            "block_2" => out.push("resnets.1".into()),
            "attn_1" => out.push("attentions.0".into()),
            "norm_out" => out.push("conv_norm_out".into()),
            "nin_shortcut" => out.push("conv_shortcut".into()),
            "norm" if out.last().is_some_and(|l| l == "attentions.0") => out.push("group_norm".into()),
            "q" | "query" => out.push("to_q".into()),
            "k" | "key" => out.push("to_k".into()),
            "v" | "value" => out.push("to_v".into()),
            "proj_out" | "proj_attn" => out.push("to_out.0".into()),
            other => out.push(other.to_string()),
        }
        i += 1;
    }
    Some(out.join("."))
}

/// `(C, C, 1, 1)` → `(C, C)` for the attention projections of the autoencoder.
fn attention_weight(key: String, t: Tensor) -> Result<(String, Tensor), SdError> {
    let projection = [".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight"].iter().any(|s| key.ends_with(s));
    if projection && key.contains("attentions.") {
        if let [o, i, 1, 1] = *t.dims() {
            return Ok((key, t.reshape((o, i))?));
        }
    }
    Ok((key, t))
}

/// The text encoder's names from a transformers `CLIPTextModel` state dict (`text_model.…`
/// in transformers 4, without it in 5) to [`stipple_nn::text::TextEncoder`]'s root; buffers
/// such as `position_ids` are dropped.
pub fn clip_to_encoder(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    tensors
        .into_iter()
        .map(|(k, t)| (k.strip_prefix("text_model.").map(str::to_string).unwrap_or(k), t))
        .filter(|(k, _)| !k.ends_with("position_ids"))
        .collect()
}

/// OpenCLIP text-tower names (prefix removed) → [`stipple_nn::text::TextEncoder`]'s, keeping the
/// first `layers` residual blocks: SD 2.x conditions on the penultimate layer, so its files
/// hold one block more than the encoder runs (diffusers drops it the same way). The packed
/// `attn.in_proj_{weight,bias}` are split into q, k, v (in that order); `text_projection`,
/// `logit_scale` and `attn_mask` are dropped (SDXL's `text_projection`: see
/// [`open_clip_projection`]).
///
/// Source: diffusers `single_file_utils.convert_open_clip_checkpoint`; OpenCLIP
/// `transformer.py` (`ResidualAttentionBlock`: `ln_1`, `attn`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`).
pub fn open_clip_to_encoder(tensors: HashMap<String, Tensor>, layers: usize) -> Result<HashMap<String, Tensor>, SdError> {
    let mut out = HashMap::new();
    for (key, t) in tensors {
        let name = match key.as_str() {
            "token_embedding.weight" => "embeddings.token_embedding.weight".to_string(),
            "positional_embedding" => "embeddings.position_embedding.weight".to_string(),
            "ln_final.weight" | "ln_final.bias" => key.replace("ln_final", "final_layer_norm"),
            _ => {
                let Some((i, rest)) = key.strip_prefix("transformer.resblocks.").and_then(|r| r.split_once('.')) else {
                    continue;
                };
                let Ok(i) = i.parse::<usize>() else { continue };
                if i >= layers {
                    continue;
                }
                let p = format!("encoder.layers.{i}.");
                if let Some(kind) = rest.strip_prefix("attn.in_proj_") {
                    let chunks = t.chunk(3, 0)?;
                    for (x, c) in ["q", "k", "v"].iter().zip(chunks) {
                        out.insert(format!("{p}self_attn.{x}_proj.{kind}"), c);
                    }
                    continue;
                }
                let renamed = [("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("attn.out_proj.", "self_attn.out_proj."), ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")]
                    .iter()
                    .find_map(|(a, b)| rest.strip_prefix(a).map(|r| format!("{b}{r}")))
                    .unwrap_or_else(|| rest.to_string());
                format!("{p}{renamed}")
            }
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// OpenCLIP's `text_projection` `(hidden, projection)`, applied as `x · P`, as the
/// `(projection, hidden)` weight of a linear layer (its transpose; diffusers
/// `convert_open_clip_checkpoint` does the same).
pub fn open_clip_projection(tensors: &HashMap<String, Tensor>) -> Result<Option<Tensor>, SdError> {
    Ok(match tensors.get("text_projection") {
        Some(p) => Some(p.t()?.contiguous()?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vae_names_follow_diffusers() {
        let k = |s: &str| vae_key(s, 4).unwrap();
        assert_eq!(k("encoder.down.1.block.0.nin_shortcut.weight"), "encoder.down_blocks.1.resnets.0.conv_shortcut.weight");
        assert_eq!(k("encoder.down.0.downsample.conv.bias"), "encoder.down_blocks.0.downsamplers.0.conv.bias");
        assert_eq!(k("decoder.up.3.block.2.norm1.weight"), "decoder.up_blocks.0.resnets.2.norm1.weight");
        assert_eq!(k("decoder.up.1.upsample.conv.weight"), "decoder.up_blocks.2.upsamplers.0.conv.weight");
        assert_eq!(k("decoder.mid.attn_1.norm.bias"), "decoder.mid_block.attentions.0.group_norm.bias");
        assert_eq!(k("encoder.mid.attn_1.proj_out.weight"), "encoder.mid_block.attentions.0.to_out.0.weight");
        assert_eq!(k("encoder.mid.block_2.norm2.weight"), "encoder.mid_block.resnets.1.norm2.weight");
        assert_eq!(k("encoder.norm_out.weight"), "encoder.conv_norm_out.weight");
        assert_eq!(k("post_quant_conv.weight"), "post_quant_conv.weight");
        assert_eq!(vae_key("decoder.up.4.block.0.norm1.weight", 4), None);
    }
}
