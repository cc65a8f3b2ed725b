//! A picture of a clip: its log-magnitude spectrogram as a PNG, low frequencies at the
//! bottom, time to the right, in the viridis colour map.

use crate::mel::MelConfig;
use crate::stft::{stft_magnitude_padded, Padding};
use crate::AudioError;

/// The dynamic range shown: magnitudes more than this many dB below the clip's peak are
/// drawn in the colour map's darkest colour.
pub const SPECTROGRAM_RANGE_DB: f64 = 80.0;

/// matplotlib's viridis at 0, ¼, ½, ¾ and 1 (van der Walt & Smith 2015), interpolated
/// linearly between them: dark blue for quiet, yellow for loud, readable in grey too.
const VIRIDIS: [[f64; 3]; 5] = [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];

/// The colour of `v` in [0, 1] in the viridis map.
fn viridis(v: f64) -> [u8; 3] {
    let x = v.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let t = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|c| (a[c] + t * (b[c] - a[c])).round() as u8)
}

/// The spectrogram of `samples` (at `rate` Hz) as PNG bytes: 20·log₁₀|STFT| (the window of
/// [`MelConfig::for_rate`], about 64 ms, zero-padded and centred) relative to the clip's
/// peak, over [`SPECTROGRAM_RANGE_DB`]; one row per frequency bin (n_fft/2 + 1 rows, 0 Hz
/// at the bottom), one column per frame, the hop chosen so a short clip still spans about 256
/// columns (at most a quarter window, so long clips get wider pictures).
pub fn spectrogram_png(samples: &[f32], rate: u32) -> Result<Vec<u8>, AudioError> {
    let mut out = std::io::Cursor::new(Vec::new());
    spectrogram_image(samples, rate)?
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| AudioError::Setting { setting: "spectrogram", expected: format!("a PNG encoding: {e}") })?;
    Ok(out.into_inner())
}

/// The picture of [`spectrogram_png`], before encoding.
pub fn spectrogram_image(samples: &[f32], rate: u32) -> Result<image::RgbImage, AudioError> {
    if samples.is_empty() || rate == 0 {
        return Err(AudioError::Setting { setting: "spectrogram", expected: format!("a clip of at least one sample at a rate above 0 Hz, got {} samples at {rate} Hz", samples.len()) });
    }
    if let Some(index) = samples.iter().position(|s| !s.is_finite()) {
        return Err(AudioError::NonFinite { index });
    }
    let n_fft = MelConfig::for_rate(rate).n_fft;
    let hop = (samples.len() / 256).clamp(1, n_fft / 4);
    let frames = stft_magnitude_padded(samples, n_fft, hop, Padding::Zeros)?;
    let peak = frames.iter().flatten().copied().fold(0.0f32, f32::max).max(f32::MIN_POSITIVE);
    let (width, height) = (frames.len(), n_fft / 2 + 1);
    let mut pixels = vec![0u8; width * height * 3];
    for (x, frame) in frames.iter().enumerate() {
        for (bin, &m) in frame.iter().enumerate() {
            let db = 20.0 * f64::from(m.max(f32::MIN_POSITIVE) / peak).log10();
            let y = height - 1 - bin;
            let at = (y * width + x) * 3;
            pixels[at..at + 3].copy_from_slice(&viridis(1.0 + db / SPECTROGRAM_RANGE_DB));
        }
    }
    Ok(image::RgbImage::from_raw(width as u32, height as u32, pixels).expect("width × height × 3 bytes"))
}
