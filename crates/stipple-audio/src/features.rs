//! Per-clip spectral features and distances for comparing generated sound with real sound.

use crate::mel::{log_mel_spectrogram, mfcc, MelConfig};
use crate::AudioError;

/// The log-mel spectral distance of `generated` from `reference`: the mean absolute
/// difference, in dB, of their [`log_mel_spectrogram`]s over the frames both have (the
/// longer clip cut to the shorter), the L1 mel-spectrogram distance of HiFi-GAN's evaluation
/// (Kong et al. 2020, §4.1) on a decibel scale. 0 for identical clips.
pub fn log_mel_distance(generated: &[f32], reference: &[f32], cfg: &MelConfig) -> Result<f64, AudioError> {
    let len = generated.len().min(reference.len());
    let (g, r) = (log_mel_spectrogram(&generated[..len], cfg)?, log_mel_spectrogram(&reference[..len], cfg)?);
    Ok(mean_abs_difference(&g, &r))
}

/// The mean absolute difference of two spectrograms over the frames both have.
pub fn mean_abs_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (sum, count) = a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y)).fold((0.0, 0usize), |(s, c), (x, y)| (s + (x - y).abs(), c + 1));
    sum / count.max(1) as f64
}

/// The long-term average spectrum of a set of clips in dB: the mean over every frame of every
/// clip of its [`log_mel_spectrogram`], one value per mel band.
pub fn mean_log_mel(clips: &[Vec<f32>], cfg: &MelConfig) -> Result<Vec<f64>, AudioError> {
    let mut sum = vec![0.0; cfg.n_mels];
    let mut frames = 0usize;
    for clip in clips {
        for frame in log_mel_spectrogram(clip, cfg)? {
            sum.iter_mut().zip(&frame).for_each(|(s, v)| *s += v);
            frames += 1;
        }
    }
    if frames == 0 {
        return Err(AudioError::Setting { setting: "clips", expected: "at least one clip".into() });
    }
    Ok(sum.into_iter().map(|s| s / frames as f64).collect())
}

/// Every MFCC frame ([`mfcc`]) of every clip, row after row (`n_mfcc` values each): the
/// sample whose mean and covariance the Fréchet distance on MFCC statistics compares.
pub fn mfcc_frames(clips: &[Vec<f32>], cfg: &MelConfig) -> Result<Vec<f64>, AudioError> {
    let mut rows = Vec::new();
    for clip in clips {
        rows.extend(mfcc(clip, cfg)?.into_iter().flatten());
    }
    Ok(rows)
}
