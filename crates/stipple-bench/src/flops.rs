//! Analytic FLOP count of a U-Net forward pass.

use stipple_nn::{UNet2D, UNetConfig};

use crate::BenchError;

/// FLOPs of one forward pass of one image (2 per multiply-add), from the parameter shapes:
/// a k×k convolution with `cout × cin` weights producing an `r × r` map costs
/// `2·cout·cin·k²·r²`; a linear `in → out` on `rows` rows costs `2·in·out·rows` (rows = 1
/// for the time-embedding MLP and each ResBlock's `time_emb_proj`, `L = r²` tokens inside an
/// attention); each attention adds `4·L²·C` for `QKᵀ` and the weighted sum of `V`.
/// Norms, activations, biases and element-wise ops are not counted.
pub fn forward_flops(cfg: &UNetConfig) -> Result<u64, BenchError> {
    let s = cfg.sample_size.ok_or_else(|| BenchError::Settings("the network has no sample_size".into()))? as u64;
    let n = cfg.block_out_channels.len() as u64;
    let mut total = 0u64;
    for (name, dims) in UNet2D::parameter_shapes(cfg)? {
        let parts: Vec<&str> = name.split('.').collect();
        // Side of the feature map this parameter's layer works at.
        let level = |i: &str| i.parse::<u64>().unwrap_or(0);
        let r = match parts[0] {
            "down_blocks" if parts[2] == "downsamplers" => s >> (level(parts[1]) + 1),
            "down_blocks" => s >> level(parts[1]),
            "mid_block" => s >> (n - 1),
            "up_blocks" if parts[2] == "upsamplers" => s >> (n - 2 - level(parts[1])),
            "up_blocks" => s >> (n - 1 - level(parts[1])),
            _ => s,
        };
        let last = *parts.last().unwrap_or(&"");
        if last != "weight" {
            continue;
        }
        let layer = parts[parts.len() - 2];
        match *dims.as_slice() {
            [cout, cin, kh, kw] => total += 2 * (cout * cin * kh * kw) as u64 * r * r,
            [out, inp] if parts[0] != "class_embedding" => {
                let in_attention = parts.contains(&"attentions");
                let rows = if in_attention { r * r } else { 1 };
                total += 2 * (out * inp) as u64 * rows;
                if in_attention && layer == "to_q" {
                    total += 4 * (r * r) * (r * r) * out as u64;
                }
            }
            _ => {}
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset_config;

    /// The analytic count equals the one the PyTorch twin gets from forward hooks on
    /// diffusers' UNet2DModel (printed by `bench/reference/unet_bench.py`).
    #[test]
    fn forward_flops_match_the_pytorch_hook_count() {
        assert_eq!(forward_flops(&preset_config("bench-unet32").unwrap()).unwrap(), 2_839_347_200);
        assert_eq!(forward_flops(&preset_config("tiny").unwrap()).unwrap(), 2_122_752);
    }
}
