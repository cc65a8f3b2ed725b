//! Mel spectrograms and MFCCs as librosa computes them (librosa 0.11: `filters.mel` with the
//! Slaney mel scale and area normalisation, `feature.melspectrogram`, `power_to_db`,
//! `feature.mfcc`), the features of the spectral metrics of generated sound.

use crate::stft::{stft_magnitude_padded, Padding};
use crate::AudioError;

/// The analysis settings of every mel feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelConfig {
    pub rate: u32,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub fmin: f64,
    /// The top of the highest band in Hz (at most rate/2).
    pub fmax: f64,
    /// The number of cepstral coefficients of [`mfcc`].
    pub n_mfcc: usize,
}

impl MelConfig {
    /// A 64 ms window (n_fft = 1024 at 16 kHz) moved by a quarter of it, 80 mel bands up to
    /// rate/2 (the mel front end of DiffWave and HiFi-GAN), 20 MFCCs (librosa's default).
    pub fn for_rate(rate: u32) -> Self {
        let n_fft = (rate as usize * 64 / 1000).next_power_of_two().max(64);
        Self { rate, n_fft, hop: n_fft / 4, n_mels: 80, fmin: 0.0, fmax: f64::from(rate) / 2.0, n_mfcc: 20 }
    }

    fn validate(&self) -> Result<(), AudioError> {
        let nyquist = f64::from(self.rate) / 2.0;
        let ok = self.rate > 0 && self.n_fft >= 2 && self.hop > 0 && self.n_mels > 0 && (1..=self.n_mels).contains(&self.n_mfcc)
            && 0.0 <= self.fmin && self.fmin < self.fmax && self.fmax <= nyquist;
        if ok {
            Ok(())
        } else {
            Err(AudioError::Setting { setting: "mel", expected: format!("rate > 0, n_fft ≥ 2, hop ≥ 1, 1 ≤ n_mfcc ≤ n_mels and 0 ≤ fmin < fmax ≤ rate/2 = {nyquist}, got {self:?}") })
        }
    }
}

/// Hz → mel on the Slaney scale (Slaney 1998, Auditory Toolbox; librosa `hz_to_mel`,
/// `htk=False`): linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per
/// factor 6.4).
pub fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_hz / f_sp + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

/// Mel → Hz, the inverse of [`hz_to_mel`] (librosa `mel_to_hz`, `htk=False`).
pub fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let (min_log_mel, logstep) = (min_log_hz / f_sp, 6.4f64.ln() / 27.0);
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The mel filterbank, `n_mels × (n_fft/2 + 1)`, as `librosa.filters.mel(sr, n_fft, n_mels,
/// fmin, fmax, htk=False, norm="slaney")` builds it: triangles between consecutive points of
/// n_mels + 2 frequencies evenly spaced in mel from fmin to fmax, each scaled by
/// 2/(f_{i+2} − f_i) so every band has the same area.
pub fn mel_filterbank(cfg: &MelConfig) -> Result<Vec<Vec<f64>>, AudioError> {
    cfg.validate()?;
    let bins = cfg.n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * f64::from(cfg.rate) / cfg.n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax));
    let points: Vec<f64> = (0..cfg.n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (cfg.n_mels + 1) as f64)).collect();
    Ok((0..cfg.n_mels)
        .map(|i| {
            let (left, centre, right) = (points[i], points[i + 1], points[i + 2]);
            let area = 2.0 / (right - left);
            fft_freqs.iter().map(|&f| ((f - left) / (centre - left)).min((right - f) / (right - centre)).max(0.0) * area).collect()
        })
        .collect())
}

/// The log-mel spectrogram of `samples` in decibels, `frames × n_mels`:
/// `librosa.power_to_db(librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels, fmin,
/// fmax))` with librosa's defaults otherwise (power 2 of a zero-padded centred STFT with the
/// periodic Hann window, `ref=1`, `amin=1e-10`, `top_db=80`: 10·log₁₀ max(amin, S), then
/// floored at the clip's maximum − 80 dB).
pub fn log_mel_spectrogram(samples: &[f32], cfg: &MelConfig) -> Result<Vec<Vec<f64>>, AudioError> {
    let bank = mel_filterbank(cfg)?;
    let frames = stft_magnitude_padded(samples, cfg.n_fft, cfg.hop, Padding::Zeros)?;
    let mut db: Vec<Vec<f64>> = frames
        .iter()
        .map(|mag| {
            let power: Vec<f64> = mag.iter().map(|&m| f64::from(m).powi(2)).collect();
            bank.iter().map(|band| 10.0 * band.iter().zip(&power).map(|(w, p)| w * p).sum::<f64>().max(1e-10).log10()).collect()
        })
        .collect();
    let floor = db.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max) - 80.0;
    db.iter_mut().flatten().for_each(|v| *v = v.max(floor));
    Ok(db)
}

/// Mel-frequency cepstral coefficients, `frames × n_mfcc`: `librosa.feature.mfcc(y, sr,
/// n_mfcc, n_fft, hop_length, n_mels, fmin, fmax)` with its defaults (`dct_type=2`,
/// `norm="ortho"`, no liftering), i.e. the orthonormal DCT-II over the mel bands of
/// [`log_mel_spectrogram`] (Davis & Mermelstein 1980), the first n_mfcc coefficients kept:
/// c_k = s_k Σₙ xₙ cos(πk(2n + 1)/(2N)), s₀ = √(1/N), s_k = √(2/N).
pub fn mfcc(samples: &[f32], cfg: &MelConfig) -> Result<Vec<Vec<f64>>, AudioError> {
    let log_mel = log_mel_spectrogram(samples, cfg)?;
    let n = cfg.n_mels;
    let basis: Vec<Vec<f64>> = (0..cfg.n_mfcc)
        .map(|k| {
            let s = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
            (0..n).map(|i| s * (std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2 * n) as f64).cos()).collect()
        })
        .collect();
    Ok(log_mel.iter().map(|frame| basis.iter().map(|b| b.iter().zip(frame).map(|(w, x)| w * x).sum()).collect()).collect())
}
