//! The per-image transform shared by every source (and by init images at sampling time):
//! `stipple_pipeline::prepare_image`.

use image::DynamicImage;

use super::ColorMode;

/// Turns a decoded image into `C × size × size` floats in `[-1, 1]` (C from `mode`).
pub(crate) fn prepare(img: &DynamicImage, size: usize, mode: ColorMode) -> Vec<f32> {
    stipple_pipeline::prepare_image(img, size, mode == ColorMode::Grey)
}
