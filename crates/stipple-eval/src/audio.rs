//! Sound quality of a set of clips against held-out real clips, from spectral features
//! computed by `stipple_audio` (librosa's log-mel spectrogram and MFCCs): the Fréchet
//! distance between Gaussians fitted to MFCC frames (FID's formula, Heusel et al. 2017, on
//! MFCC statistics instead of Inception features), the distance between the sets' long-term
//! average log-mel spectra, and, per generated clip, the log-mel and multi-resolution STFT
//! distances to its nearest reference clip.

use stipple_audio::{log_mel_spectrogram, mean_abs_difference, mean_log_mel, mfcc_frames, multi_resolution_stft_distance, MelConfig, RESOLUTIONS};

use crate::{frechet_distance_of, EvalError, Features};

/// The spectral measures of a set of clips against a reference set; lower is closer.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioMetrics {
    /// Fréchet distance between Gaussians fitted to every MFCC frame of each set.
    pub mfcc_frechet: f64,
    /// Root mean square over mel bands of the difference of the sets' mean log-mel spectra, dB.
    pub log_mel_average_db: f64,
    /// Mean over generated clips of the log-mel distance ([`stipple_audio::log_mel_distance`],
    /// dB) to the nearest reference clip.
    pub log_mel_nearest_db: f64,
    /// Mean over generated clips of the multi-resolution STFT distance (Parallel WaveGAN's
    /// resolutions) to the nearest reference clip.
    pub mr_stft_nearest: f64,
}

/// The [`AudioMetrics`] of `generated` against `reference` (clips at `cfg.rate`, each longer
/// than 1024 samples, the largest STFT's half window). Nearest neighbours are searched in
/// the whole reference set for each generated clip, so the two sets need not be paired.
pub fn audio_metrics(generated: &[Vec<f32>], reference: &[Vec<f32>], cfg: &MelConfig) -> Result<AudioMetrics, EvalError> {
    if generated.is_empty() || reference.is_empty() {
        return Err(EvalError::TooFewSamples { metric: "the audio metrics", needed: 1, got: 0 });
    }
    let (g, r) = (Features::new(mfcc_frames(generated, cfg)?, cfg.n_mfcc)?, Features::new(mfcc_frames(reference, cfg)?, cfg.n_mfcc)?);
    let mfcc_frechet = frechet_distance_of(&g, &r)?;
    let (mg, mr) = (mean_log_mel(generated, cfg)?, mean_log_mel(reference, cfg)?);
    let log_mel_average_db = (mg.iter().zip(&mr).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / mg.len() as f64).sqrt();
    let spectra = |clips: &[Vec<f32>]| clips.iter().map(|c| log_mel_spectrogram(c, cfg)).collect::<Result<Vec<_>, _>>();
    let (sg, sr) = (spectra(generated)?, spectra(reference)?);
    let mut log_mel_nearest_db = 0.0;
    let mut mr_stft_nearest = 0.0;
    for (clip, spec) in generated.iter().zip(&sg) {
        log_mel_nearest_db += sr.iter().map(|s| mean_abs_difference(spec, s)).fold(f64::INFINITY, f64::min);
        let mut nearest = f64::INFINITY;
        for other in reference {
            nearest = nearest.min(multi_resolution_stft_distance(clip, other, &RESOLUTIONS)?);
        }
        mr_stft_nearest += nearest;
    }
    let n = generated.len() as f64;
    Ok(AudioMetrics { mfcc_frechet, log_mel_average_db, log_mel_nearest_db: log_mel_nearest_db / n, mr_stft_nearest: mr_stft_nearest / n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, amp: f32, phase: f32) -> Vec<f32> {
        (0..8000).map(|i| amp * (std::f32::consts::TAU * freq * i as f32 / 16_000.0 + phase).sin()).collect()
    }

    #[test]
    fn a_set_against_itself_is_at_zero_and_another_set_is_farther() {
        let cfg = MelConfig::for_rate(16_000);
        let real: Vec<Vec<f32>> = (0..6).map(|i| tone(300.0 + 50.0 * i as f32, 0.3 + 0.05 * i as f32, i as f32)).collect();
        let same = audio_metrics(&real, &real, &cfg).unwrap();
        // Zero up to rounding: the MFCC frames of six tones have a nearly singular covariance,
        // and each eigenvalue that is zero up to rounding (~ε‖Σ‖) adds its square root to the
        // trace term, ~√(ε‖Σ‖) ≈ 1e-6·tr Σ here.
        let fit = crate::Gaussian::fit(&Features::new(mfcc_frames(&real, &cfg).unwrap(), cfg.n_mfcc).unwrap()).unwrap();
        let trace: f64 = (0..fit.dim).map(|i| fit.cov[i * fit.dim + i]).sum();
        assert!(same.mfcc_frechet.abs() < 1e-6 * trace && same.log_mel_average_db == 0.0, "{same:?}, tr Σ = {trace}");
        assert_eq!((same.log_mel_nearest_db, same.mr_stft_nearest), (0.0, 0.0), "each clip finds itself");
        let high: Vec<Vec<f32>> = (0..6).map(|i| tone(3000.0 + 50.0 * i as f32, 0.3, 0.0)).collect();
        let far = audio_metrics(&high, &real, &cfg).unwrap();
        assert!(far.mfcc_frechet > 1.0 && far.log_mel_average_db > 1.0 && far.log_mel_nearest_db > 1.0 && far.mr_stft_nearest > 0.1, "{far:?}");
        assert!(audio_metrics(&[], &real, &cfg).is_err());
    }
}
