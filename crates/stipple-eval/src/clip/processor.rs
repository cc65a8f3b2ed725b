//! CLIP's image preprocessing as transformers' `CLIPImageProcessor` does it (the default
//! torchvision backend of transformers 5, and `CLIPImageProcessorPil`), from a folder's
//! `preprocessor_config.json`: RGB → resize the shortest side to `size` (bicubic, the long side
//! `int(size · long / short)`) → centre crop to `crop_size` (top-left at
//! `⌊(H − h)/2⌋, ⌊(W − w)/2⌋`, zero-padded where the image is smaller) → `· rescale_factor`
//! (1/255) → `(x − image_mean) / image_std` per channel.
//!
//! The resize is PIL's 8-bit bicubic ([`super::resize`]), which torch's uint8 antialiased
//! bicubic kernel (the torchvision backend's, on CPU) follows; an image already at the resize
//! size is passed through untouched, as both backends do.

use candle_core::{Device, Tensor};
use image::{imageops, DynamicImage, RgbImage};
use serde::Deserialize;

use super::resize::resize_bicubic;

/// PIL's resampling code for bicubic (`PILImageResampling.BICUBIC`), the only one read.
const BICUBIC: u32 = 3;

/// `size` / `crop_size`: an int or `{"shortest_edge": n}` / `{"height": h, "width": w}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Int(u32),
    Dict { shortest_edge: Option<u32>, height: Option<u32>, width: Option<u32> },
}

#[derive(Deserialize)]
#[serde(default)]
struct HfProcessor {
    do_resize: bool,
    size: Size,
    resample: u32,
    do_center_crop: bool,
    crop_size: Size,
    do_rescale: bool,
    rescale_factor: f64,
    do_normalize: bool,
    image_mean: Vec<f64>,
    image_std: Vec<f64>,
}

/// OpenAI CLIP's normalisation (transformers' `OPENAI_CLIP_MEAN`, `OPENAI_CLIP_STD`).
const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

impl Default for HfProcessor {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: Size::Int(224),
            resample: BICUBIC,
            do_center_crop: true,
            crop_size: Size::Int(224),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: OPENAI_CLIP_MEAN.to_vec(),
            image_std: OPENAI_CLIP_STD.to_vec(),
        }
    }
}

/// The steps of a `CLIPImageProcessor`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    /// Shortest side after the resize, if resizing.
    pub shortest_edge: Option<u32>,
    /// `(height, width)` of the centre crop, if cropping.
    pub crop: Option<(u32, u32)>,
    /// Factor applied to the 8-bit values (1 when `do_rescale` is off).
    pub rescale: f64,
    /// Per-channel mean and standard deviation, if normalising.
    pub normalize: Option<([f64; 3], [f64; 3])>,
}

impl ImageProcessor {
    /// Parses a `preprocessor_config.json` document; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let p: HfProcessor = serde_json::from_str(text).map_err(|e| format!("not an image processor config: {e}"))?;
        let shortest_edge = match (p.do_resize, p.size) {
            (false, _) => None,
            (true, Size::Int(n) | Size::Dict { shortest_edge: Some(n), .. }) if n > 0 => Some(n),
            (true, _) => return Err("size must be a positive shortest_edge (CLIPImageProcessor's resize)".into()),
        };
        if shortest_edge.is_some() && p.resample != BICUBIC {
            return Err(format!("resample = {}: only bicubic (3), CLIP's, is implemented", p.resample));
        }
        let crop = match (p.do_center_crop, p.crop_size) {
            (false, _) => None,
            (true, Size::Int(n)) if n > 0 => Some((n, n)),
            (true, Size::Dict { height: Some(h), width: Some(w), .. }) if h > 0 && w > 0 => Some((h, w)),
            (true, _) => return Err("crop_size must be a positive int or {\"height\", \"width\"}".into()),
        };
        let three = |v: &[f64], key: &str| -> Result<[f64; 3], String> {
            <[f64; 3]>::try_from(v).map_err(|_| format!("{key} must hold 3 values (RGB), got {}", v.len()))
        };
        let normalize = if p.do_normalize {
            let (mean, std) = (three(&p.image_mean, "image_mean")?, three(&p.image_std, "image_std")?);
            if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite()) {
                return Err(format!("image_mean {mean:?} and image_std {std:?} must be finite, image_std > 0"));
            }
            Some((mean, std))
        } else {
            None
        };
        let rescale = if p.do_rescale { p.rescale_factor } else { 1.0 };
        if !(rescale.is_finite() && rescale > 0.0) {
            return Err(format!("rescale_factor must be finite and > 0, got {rescale}"));
        }
        Ok(Self { shortest_edge, crop, rescale, normalize })
    }

    /// The 8-bit RGB image after the resize and the crop.
    pub fn resize_and_crop(&self, image: &DynamicImage) -> RgbImage {
        let mut rgb = image.to_rgb8();
        if let Some(size) = self.shortest_edge {
            let (w, h) = rgb.dimensions();
            let (short, long) = (w.min(h), w.max(h));
            // transformers' `get_resize_output_image_size(default_to_square=False)`.
            let new_long = (size as u64 * long as u64 / short as u64) as u32;
            let (nw, nh) = if w <= h { (size, new_long) } else { (new_long, size) };
            if (nw, nh) != (w, h) {
                rgb = resize_bicubic(&rgb, nw, nh);
            }
        }
        match self.crop {
            Some((ch, cw)) => center_crop(&rgb, ch, cw),
            None => rgb,
        }
    }

    /// `image` as the vision tower's input.
    ///
    /// # Shapes
    /// Returns `(3, H, W)` f32 with `(H, W)` the crop size (or the resized size without a crop).
    pub fn pixel_values(&self, image: &DynamicImage, device: &Device) -> candle_core::Result<Tensor> {
        let rgb = self.resize_and_crop(image);
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let (mean, std) = self.normalize.unwrap_or(([0.0; 3], [1.0; 3]));
        let mut out = vec![0f32; 3 * h * w];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = ((px[c] as f64 * self.rescale - mean[c]) / std[c]) as f32;
            }
        }
        Tensor::from_vec(out, (3, h, w), device)
    }
}

/// torchvision's `center_crop` (transformers' `TorchvisionBackend.center_crop`): zero padding
/// first where the image is smaller than the crop (left/top get the smaller half).
fn center_crop(rgb: &RgbImage, ch: u32, cw: u32) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let mut canvas = RgbImage::new(w.max(cw), h.max(ch));
    imageops::overlay(&mut canvas, rgb, (cw.saturating_sub(w) / 2) as i64, (ch.saturating_sub(h) / 2) as i64);
    let (top, left) = ((canvas.height() - ch) / 2, (canvas.width() - cw) / 2);
    imageops::crop_imm(&canvas, left, top, cw, ch).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_int_and_dict_sizes_and_refuses_other_resampling() {
        let p = ImageProcessor::from_json(r#"{"size": 224, "crop_size": 224}"#).unwrap();
        assert_eq!((p.shortest_edge, p.crop), (Some(224), Some((224, 224))));
        let p = ImageProcessor::from_json(r#"{"size": {"shortest_edge": 16}, "crop_size": {"height": 16, "width": 12}, "do_normalize": false}"#).unwrap();
        assert_eq!((p.shortest_edge, p.crop, p.normalize), (Some(16), Some((16, 12)), None));
        assert!(ImageProcessor::from_json(r#"{"resample": 2}"#).unwrap_err().contains("bicubic"));
        assert!(ImageProcessor::from_json(r#"{"image_mean": [0.5]}"#).unwrap_err().contains("3 values"));
        assert!(ImageProcessor::from_json(r#"{"size": {"height": 16, "width": 16}}"#).unwrap_err().contains("shortest_edge"));
    }

    #[test]
    fn resize_keeps_the_aspect_and_crop_centres_and_pads() {
        let p = ImageProcessor { shortest_edge: Some(16), crop: Some((16, 16)), rescale: 1.0, normalize: None };
        let wide = DynamicImage::ImageRgb8(RgbImage::from_fn(30, 23, |x, _| image::Rgb([x as u8 * 8, 0, 0])));
        let resized = ImageProcessor { crop: None, ..p.clone() }.resize_and_crop(&wide);
        assert_eq!(resized.dimensions(), (20, 16)); // int(16 · 30 / 23) = 20
        assert_eq!(p.resize_and_crop(&wide).dimensions(), (16, 16));
        let small = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, image::Rgb([9, 9, 9])));
        let padded = center_crop(&small.to_rgb8(), 5, 6);
        // Left padding (6 − 3)/2 = 1, top (5 − 2)/2 = 1.
        assert_eq!((padded.get_pixel(0, 0)[0], padded.get_pixel(1, 1)[0], padded.get_pixel(3, 2)[0], padded.get_pixel(4, 1)[0]), (0, 9, 9, 0));
    }
}
