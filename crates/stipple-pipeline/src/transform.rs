//! The per-image transform shared by training data and init images/masks: composite on white, resize so the image
//! covers the target size, centre-crop to it, scale to `[-1, 1]` in CHW order.

use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, Rgb32FImage};


/// Resampling filter for both down- and up-scaling (image scales the kernel when shrinking, so
/// down-scaling is anti-aliased).
const FILTER: FilterType = FilterType::CatmullRom;

/// Rec. 709 luma weights, the ones `image` uses for its own greyscale conversion.
const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Turns a decoded image into `C × size × size` floats in `[-1, 1]` (C = 1 with `grey`, else 3).
pub fn prepare_image(img: &DynamicImage, size: usize, grey: bool) -> Vec<f32> {
    prepare_image_sized(img, (size, size), grey)
}

/// Turns a decoded image into `C × height × width` floats in `[-1, 1]`: scaled to cover
/// `width × height` (the aspect ratio kept), centre-cropped to it.
pub fn prepare_image_sized(img: &DynamicImage, (width, height): (usize, usize), grey: bool) -> Vec<f32> {
    let cropped = resize_and_crop(&composite_on_white(img), (width as u32, height as u32));
    to_chw(&cropped, grey)
}

/// RGB in `[0, 1]` with any alpha composited onto a white background.
fn composite_on_white(img: &DynamicImage) -> Rgb32FImage {
    let rgba = img.to_rgba32f();
    Rgb32FImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        Rgb([r * a + 1.0 - a, g * a + 1.0 - a, b * a + 1.0 - a])
    })
}

/// Resizes so that the image just covers `width × height` (the side with the smaller ratio of
/// target to source fits exactly; skipped when the image already fits), then keeps the centred
/// `width × height` part. For a square target this resizes the shorter side to it.
fn resize_and_crop(img: &Rgb32FImage, (width, height): (u32, u32)) -> Rgb32FImage {
    let (w, h) = img.dimensions();
    // Which side fits exactly: the one whose target/source ratio is the larger
    // (compared as width/w ≥ height/h without division).
    let (num, den) = if width as u64 * h as u64 >= height as u64 * w as u64 { (width, w) } else { (height, h) };
    // Round the other side, but never below its target.
    let scale = |side: u32, min: u32| ((side as u64 * num as u64 + den as u64 / 2) / den as u64).max(min as u64) as u32;
    let (sw, sh) = (scale(w, width), scale(h, height));
    let resized;
    let src = if (sw, sh) == (w, h) {
        img
    } else {
        resized = imageops::resize(img, sw, sh, FILTER);
        &resized
    };
    let (w, h) = src.dimensions();
    imageops::crop_imm(src, (w - width) / 2, (h - height) / 2, width, height).to_image()
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
