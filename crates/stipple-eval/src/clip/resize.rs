//! PIL's bicubic resize of 8-bit images (`Image.resize(size, Image.BICUBIC)`), the resize of
//! transformers' `CLIPImageProcessorPil`; torch's uint8 antialiased bicubic kernel (the
//! default `CLIPImageProcessor`'s torchvision backend on CPU) is a port of the same code.
//!
//! Source: Pillow `src/libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc`): Keys' cubic convolution
//! kernel with a = −0.5 (Keys 1981), stretched by the scale factor when shrinking (so it
//! averages, antialiased), weights normalised to sum 1 and rounded to fixed point with 22
//! fractional bits; a horizontal pass, rounded and clamped to 8 bits, then a vertical one. A
//! pass whose size does not change is skipped.

use image::RgbImage;

/// Fractional bits of the fixed-point weights (`PRECISION_BITS = 32 − 8 − 2`).
const PRECISION_BITS: u32 = 22;
/// Support of the bicubic kernel (in output-scale pixels).
const SUPPORT: f64 = 2.0;

/// Keys' cubic convolution kernel with a = −0.5 (PIL's `bicubic_filter`).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: the first input pixel it reads and its fixed-point weights.
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncation, then clamped to the image.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) / filterscale)).collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|k| {
                    let k = if total != 0.0 { k / total } else { *k };
                    let s = k * (1u64 << PRECISION_BITS) as f64;
                    (if s < 0.0 { s - 0.5 } else { s + 0.5 }) as i64
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// Rounds a fixed-point sum to 8 bits (PIL's `clip8`).
fn clip8(sum: i64) -> u8 {
    ((sum + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass along x (`horizontal`) or y.
fn pass(src: &RgbImage, out_len: u32, horizontal: bool) -> RgbImage {
    let (w, h) = src.dimensions();
    let coeffs = coefficients(if horizontal { w } else { h }, out_len);
    let (ow, oh) = if horizontal { (out_len, h) } else { (w, out_len) };
    RgbImage::from_fn(ow, oh, |x, y| {
        let (start, k) = &coeffs[if horizontal { x } else { y } as usize];
        let mut sum = [0i64; 3];
        for (i, wk) in k.iter().enumerate() {
            let p = if horizontal { src.get_pixel(*start as u32 + i as u32, y) } else { src.get_pixel(x, *start as u32 + i as u32) };
            for c in 0..3 {
                sum[c] += p[c] as i64 * wk;
            }
        }
        image::Rgb(sum.map(clip8))
    })
}

/// `image` resized to `width × height` as PIL's bicubic resize does it.
pub fn resize_bicubic(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut out = image.clone();
    if width != out.width() {
        out = pass(&out, width, true);
    }
    if height != out.height() {
        out = pass(&out, height, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_keys_cubic_and_weights_sum_to_one() {
        assert_eq!((bicubic(0.0), bicubic(1.0), bicubic(2.0)), (1.0, 0.0, 0.0));
        assert!((bicubic(0.5) - 0.5625).abs() < 1e-12 && (bicubic(1.5) + 0.0625).abs() < 1e-12);
        for (i, o) in [(30, 20), (23, 16), (10, 19), (7, 7)] {
            for (_, k) in coefficients(i, o) {
                let total: i64 = k.iter().sum();
                assert!((total - (1 << PRECISION_BITS)).abs() <= k.len() as i64, "{i}→{o}: {total}");
            }
        }
        // A flat image stays flat both ways.
        let flat = RgbImage::from_pixel(9, 5, image::Rgb([200, 3, 77]));
        for (w, h) in [(4, 3), (20, 11)] {
            assert!(resize_bicubic(&flat, w, h).pixels().all(|p| p.0 == [200, 3, 77]));
        }
    }
}
