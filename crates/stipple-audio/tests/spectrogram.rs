//! The spectrogram picture: a PNG whose bright row sits at a tone's frequency.

use stipple_audio::{spectrogram_png, MelConfig};

#[test]
fn a_tone_draws_one_bright_row_at_its_frequency() {
    let rate = 16_000;
    let x: Vec<f32> = (0..rate).map(|i| 0.5 * (std::f32::consts::TAU * 2000.0 * i as f32 / rate as f32).sin()).collect();
    let png = spectrogram_png(&x, rate).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    let n_fft = MelConfig::for_rate(rate).n_fft;
    assert_eq!(img.height() as usize, n_fft / 2 + 1);
    assert!(img.width() >= 256, "a one-second clip spans at least 256 columns: {}", img.width());
    // 2 kHz is bin 2000·1024/16000 = 128, drawn 128 rows above the bottom.
    let brightness = |y: u32| -> u32 { let p = img.get_pixel(img.width() / 2, y); p[0] as u32 + p[1] as u32 + p[2] as u32 };
    let brightest = (0..img.height()).max_by_key(|&y| brightness(y)).unwrap();
    assert_eq!(img.height() - 1 - brightest, 128);
    assert_eq!(img.get_pixel(img.width() / 2, brightest).0, [253, 231, 37], "the peak is viridis' yellow");
    assert_eq!(img.get_pixel(img.width() / 2, 0).0, [68, 1, 84], "80 dB below the peak is viridis' dark end");
}

#[test]
fn empty_or_non_finite_clips_are_refused() {
    assert!(spectrogram_png(&[], 16_000).unwrap_err().to_string().contains("at least one sample"));
    assert!(spectrogram_png(&[0.0, f32::NAN], 16_000).unwrap_err().to_string().contains("sample 1"));
    assert!(spectrogram_png(&[0.0; 100], 16_000).is_ok(), "silence draws a dark picture");
}
