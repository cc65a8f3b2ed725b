//! The cheap live preview of latents: a linear map from the 4 latent channels to RGB plus a
//! bias, per latent family, at latent resolution (the web UIs' "approximate" preview; no VAE
//! call, so it can run at every step).
//!
//! The coefficients are published linear fits of the released VAEs, as ComfyUI ships them in
//! `comfy/latent_formats.py` (`SD15.latent_rgb_factors`, used for SD 1.x and 2.x, which share
//! the VAE; `SDXL.latent_rgb_factors` and `latent_rgb_factors_bias`). They act on the scaled
//! latents the sampler walks (`scaling_factor · z`) and give RGB in about [−1, 1]. They are
//! properties of the released VAEs: for any other VAE (such as a test fixture's random one)
//! the preview is only a rough picture.

use candle_core::Tensor;

use crate::{Architecture, SdError};

/// Rows: latent channels 1–4; columns: R, G, B (ComfyUI `SD15.latent_rgb_factors`).
const SD1_FACTORS: [[f32; 3]; 4] = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]];
/// SD 1.x/2.x have no bias term in that fit.
const SD1_BIAS: [f32; 3] = [0.0; 3];
/// ComfyUI `SDXL.latent_rgb_factors`.
const SDXL_FACTORS: [[f32; 3]; 4] = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]];
/// ComfyUI `SDXL.latent_rgb_factors_bias`.
const SDXL_BIAS: [f32; 3] = [0.1084, -0.0175, -0.0011];

/// The 4×3 factors and the bias of `architecture`'s latent family.
pub fn preview_factors(architecture: Architecture) -> ([[f32; 3]; 4], [f32; 3]) {
    match architecture {
        Architecture::Sd1 | Architecture::Sd2 => (SD1_FACTORS, SD1_BIAS),
        Architecture::SdxlBase | Architecture::SdxlRefiner => (SDXL_FACTORS, SDXL_BIAS),
    }
}

/// RGB in [−1, 1] of scaled latents: `rgb_c = Σ_k z_k · F[k][c] + b_c` per pixel, clamped.
///
/// # Shapes
/// `latents`: `(B, 4, h, w)`; returns `(B, 3, h, w)`.
pub fn latent_preview(architecture: Architecture, latents: &Tensor) -> Result<Tensor, SdError> {
    let (b, c, h, w) = latents.dims4()?;
    if c != 4 {
        return Err(SdError::Invalid(format!("a latent preview takes 4 latent channels, got {c}")));
    }
    let (factors, bias) = preview_factors(architecture);
    // (3, 4): column k of the map is latent channel k's colour.
    let m: Vec<f32> = (0..3).flat_map(|rgb| factors.iter().map(move |row| row[rgb])).collect();
    let m = Tensor::from_vec(m, (1, 3, 4), latents.device())?.to_dtype(latents.dtype())?;
    let bias = Tensor::from_vec(bias.to_vec(), (1, 3, 1), latents.device())?.to_dtype(latents.dtype())?;
    let z = latents.reshape((b, 4, h * w))?;
    let rgb = m.broadcast_as((b, 3, 4))?.contiguous()?.matmul(&z.contiguous()?)?.broadcast_add(&bias)?;
    Ok(rgb.reshape((b, 3, h, w))?.clamp(-1f32, 1f32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn each_pixel_is_the_published_linear_map() -> Result<(), SdError> {
        // Latent pixel 0 = unit vector of channel k picks row k (+ bias); pixel 1 sums rows.
        for arch in [Architecture::Sd1, Architecture::SdxlBase] {
            let (f, bias) = preview_factors(arch);
            for k in 0..4 {
                let mut data = vec![0f32; 4 * 2];
                data[k * 2] = 1.0;
                for ch in 0..4 {
                    data[ch * 2 + 1] = 0.5;
                }
                let z = Tensor::from_vec(data, (1, 4, 1, 2), &Device::Cpu)?;
                let rgb = latent_preview(arch, &z)?.flatten_all()?.to_vec1::<f32>()?;
                for c in 0..3 {
                    assert!((rgb[c * 2] - (f[k][c] + bias[c]).clamp(-1.0, 1.0)).abs() < 1e-6, "{arch} channel {k} colour {c}");
                    let sum: f32 = (0..4).map(|j| 0.5 * f[j][c]).sum::<f32>() + bias[c];
                    assert!((rgb[c * 2 + 1] - sum).abs() < 1e-6);
                }
            }
        }
        assert!(latent_preview(Architecture::Sd1, &Tensor::zeros((1, 3, 2, 2), candle_core::DType::F32, &Device::Cpu)?).is_err());
        Ok(())
    }
}
