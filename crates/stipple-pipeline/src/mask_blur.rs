//! The web UI's "mask blur" of inpainting (AUTOMATIC1111, `StableDiffusionProcessingImg2Img.
//! init` in `modules/processing.py`): the binary mask is blurred with a Gaussian of σ = the
//! blur in pixels, as OpenCV's `GaussianBlur` computes it on 8-bit images, along the rows and
//! then along the columns, each pass rounded to 8 bits; the blurred mask then gives the
//! latents' mask (rounded to 0 or 1) and the weights with which the original picture is laid
//! back over the generated one (`clip(2·mask)` repainted: the blur widens the repainted region
//! by a soft edge, it never lets the original through inside the mask).
//!
//! OpenCV blurs 8-bit images in fixed point (`GaussianBlurFixedPoint`): the kernel is
//! `getGaussianKernelBitExact`'s, turned into integers summing to 256 by error diffusion from
//! the outer taps inwards (`getGaussianKernelFixedPoint_ED`), and each pass is `⌊(Σ kᵢ·vᵢ +
//! 128) / 256⌋`. Done the same way here, the result is OpenCV's bit for bit.

use image::GrayImage;

/// Largest mask blur accepted, in pixels (the web UI's slider goes to 64).
pub const MAX_MASK_BLUR: f64 = 64.0;

/// The web UI's kernel for σ = `sigma` in 256ths: `ksize = 2·⌊2.5σ + 0.5⌋ + 1` taps of
/// `exp(−d² / 2σ²)`, normalised as OpenCV's `getGaussianKernelBitExact` does (the centre tap 1
/// before normalising), then rounded (ties to even) with the rounding error carried inwards
/// from the outer taps, and the centre tap taking what makes the sum 256.
fn kernel(sigma: f64) -> Vec<i64> {
    let n = 2 * (2.5 * sigma + 0.5).floor() as i64 + 1;
    let half = (n / 2) as usize;
    let scale2x = -0.125 / (sigma * sigma);
    // Taps from the outermost in: x = 2d runs over 1 − n, 3 − n, … (d = −r … −1).
    let outer: Vec<f64> = (0..half).map(|i| ((1 - n + 2 * i as i64).pow(2) as f64 * scale2x).exp()).collect();
    let norm = 1.0 / (2.0 * outer.iter().sum::<f64>() + 1.0);
    let mut k = vec![0i64; n as usize];
    let (mut err, mut sum) = (0.0, 0);
    for (i, v) in outer.iter().enumerate() {
        let adj = v * norm * 256.0 + err;
        let q = adj.round_ties_even();
        err = adj - q;
        k[i] = q as i64;
        k[n as usize - 1 - i] = q as i64;
        sum += q as i64;
    }
    k[half] = 256 - 2 * sum;
    k
}

/// OpenCV's default border (`BORDER_REFLECT_101`): index `i` of a line of `n` values mirrored
/// about its first and last value (`−1 → 1`, `n → n − 2`).
fn reflect101(i: i64, n: i64) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let i = i.rem_euclid(period);
    (if i < n { i } else { period - i }) as usize
}

/// One pass of the kernel along rows (`horizontal`) or columns, rounded to 8 bits.
fn pass(img: &GrayImage, k: &[i64], horizontal: bool) -> GrayImage {
    let (w, h) = img.dimensions();
    let r = (k.len() / 2) as i64;
    GrayImage::from_fn(w, h, |x, y| {
        let s: i64 = k
            .iter()
            .enumerate()
            .map(|(j, kv)| {
                let d = j as i64 - r;
                let (sx, sy) = if horizontal { (reflect101(x as i64 + d, w as i64), y as usize) } else { (x as usize, reflect101(y as i64 + d, h as i64)) };
                kv * i64::from(img.get_pixel(sx as u32, sy as u32)[0])
            })
            .sum();
        image::Luma([((s + 128) >> 8).clamp(0, 255) as u8])
    })
}

/// The mask blurred by σ = `sigma` pixels (0: unchanged), along rows and then columns.
pub fn blur_mask(mask: &GrayImage, sigma: f64) -> GrayImage {
    if sigma <= 0.0 {
        return mask.clone();
    }
    let k = kernel(sigma);
    pass(&pass(mask, &k, true), &k, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_has_the_web_uis_size_and_sums_to_one() {
        for (sigma, size) in [(1.0, 7), (2.0, 11), (4.0, 21), (0.5, 3)] {
            let k = kernel(sigma);
            assert_eq!(k.len(), size, "σ = {sigma}");
            assert_eq!(k.iter().sum::<i64>(), 256);
            assert!(k.windows(2).take(size / 2).all(|p| p[0] <= p[1]), "rising to the centre: {k:?}");
            assert!(k.iter().zip(k.iter().rev()).all(|(a, b)| a == b), "symmetric: {k:?}");
        }
    }

    #[test]
    fn borders_reflect_about_the_edge_values() {
        let n = 5;
        let got: Vec<usize> = (-3..8).map(|i| reflect101(i, n)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
