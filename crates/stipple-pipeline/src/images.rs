//! Tensors in [−1, 1] to 8-bit images, grids of them, and PNG files written atomically.

use candle_core::{DType, Tensor};
use image::{DynamicImage, GenericImage, GrayImage, RgbImage};

use crate::PipelineError;

/// Converts `(N, C, H, W)` in [−1, 1] (C = 1 or 3) to N images, rounding to 8 bits.
pub fn to_images(batch: &Tensor) -> Result<Vec<DynamicImage>, PipelineError> {
    let (n, c, h, w) = batch.dims4()?;
    let u8s = ((batch.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .round()?
        .to_dtype(DType::U8)?
        .to_device(&candle_core::Device::Cpu)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // CHW → HWC.
        let hwc = u8s.get(i)?.permute((1, 2, 0))?.flatten_all()?.to_vec1::<u8>()?;
        let img = match c {
            1 => DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, hwc).expect("sized buffer")),
            3 => DynamicImage::ImageRgb8(RgbImage::from_raw(w as u32, h as u32, hwc).expect("sized buffer")),
            _ => return Err(PipelineError::bad("model", format!("images need 1 or 3 channels, the model makes {c}"))),
        };
        out.push(img);
    }
    Ok(out)
}

/// Tiles equally sized images into a grid of `cols` columns with a `pad`-pixel white
/// border between and around them.
pub fn grid(images: &[DynamicImage], cols: usize, pad: u32) -> DynamicImage {
    let Some(first) = images.first() else { return DynamicImage::new_rgb8(1, 1) };
    let (w, h) = (first.width(), first.height());
    let cols = cols.clamp(1, images.len()) as u32;
    let rows = images.len().div_ceil(cols as usize) as u32;
    let mut canvas = RgbImage::from_pixel(cols * (w + pad) + pad, rows * (h + pad) + pad, image::Rgb([255, 255, 255]));
    for (i, img) in images.iter().enumerate() {
        let (r, c) = (i as u32 / cols, i as u32 % cols);
        canvas
            .copy_from(&img.to_rgb8(), pad + c * (w + pad), pad + r * (h + pad))
            .expect("tile fits the canvas");
    }
    DynamicImage::ImageRgb8(canvas)
}

/// Columns for a near-square grid of `n` images.
pub fn grid_columns(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn maps_range_and_layout() -> Result<(), PipelineError> {
        // One 1×2 RGB image: left pixel black, right pixel white-ish red.
        let t = Tensor::new(&[[[[-1f32, 1.0]], [[-1.0, -1.0]], [[-1.0, -1.0]]]], &Device::Cpu)?;
        let img = to_images(&t)?.remove(0).to_rgb8();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 0, 0]);
        Ok(())
    }

    #[test]
    fn grid_places_tiles() {
        let a = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, image::Rgb([0, 0, 0])));
        let g = grid(&[a.clone(), a.clone(), a], 2, 1).to_rgb8();
        assert_eq!((g.width(), g.height()), (7, 7));
        assert_eq!(g.get_pixel(4, 1).0, [0, 0, 0]);
        assert_eq!(g.get_pixel(4, 4).0, [255, 255, 255]);
        assert_eq!(grid_columns(16), 4);
        assert_eq!(grid_columns(5), 3);
    }
}
