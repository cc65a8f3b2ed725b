//! The per-image transform shared by training data and init images/masks: composite on white, resize the shorter side
//! to the target size, centre-crop to a square, scale to `[-1, 1]` in CHW order.

use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, Rgb32FImage};


/// Resampling filter for both down- and up-scaling (image scales the kernel when shrinking, so
/// down-scaling is anti-aliased).
const FILTER: FilterType = FilterType::CatmullRom;

/// Rec. 709 luma weights, the ones `image` uses for its own greyscale conversion.
const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Turns a decoded image into `C × size × size` floats in `[-1, 1]` (C = 1 with `grey`, else 3).
pub fn prepare_image(img: &DynamicImage, size: usize, grey: bool) -> Vec<f32> {
    let square = resize_and_crop(&composite_on_white(img), size as u32);
    to_chw(&square, grey)
}

/// RGB in `[0, 1]` with any alpha composited onto a white background.
fn composite_on_white(img: &DynamicImage) -> Rgb32FImage {
    let rgba = img.to_rgba32f();
    Rgb32FImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        Rgb([r * a + 1.0 - a, g * a + 1.0 - a, b * a + 1.0 - a])
    })
}

/// Resizes so that the shorter side equals `size` (skipped when it already does), then keeps the
/// centred `size × size` square.
fn resize_and_crop(img: &Rgb32FImage, size: u32) -> Rgb32FImage {
    let (w, h) = img.dimensions();
    let short = w.min(h);
    let resized;
    let src = if short == size {
        img
    } else {
        // Round the longer side, but never below `size`.
        let scale = |side: u32| {
            ((side as u64 * size as u64 + short as u64 / 2) / short as u64).max(size as u64) as u32
        };
        resized = imageops::resize(img, scale(w), scale(h), FILTER);
        &resized
    };
    let (w, h) = src.dimensions();
    imageops::crop_imm(src, (w - size) / 2, (h - size) / 2, size, size).to_image()
}

/// Planar (CHW) floats in `[-1, 1]`; greyscale uses Rec. 709 luma.
fn to_chw(img: &Rgb32FImage, grey: bool) -> Vec<f32> {
    let scale = |v: f32| (v * 2.0 - 1.0).clamp(-1.0, 1.0);
    match grey {
        false => (0..3)
            .flat_map(|c| img.pixels().map(move |p| scale(p.0[c])))
            .collect(),
        true => img
            .pixels()
            .map(|p| scale(p.0.iter().zip(LUMA).map(|(v, w)| v * w).sum()))
            .collect(),
    }
}
