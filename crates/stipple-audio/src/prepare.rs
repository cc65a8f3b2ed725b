//! Making clips alike before training: one sample rate, silence trimmed, one length.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::AudioError;

/// `samples` at `from` Hz resampled to `to` Hz by `rubato`'s synchronous FFT resampler
/// (band-limited: the spectrum is cut at the lower Nyquist frequency with a Blackman–Harris²
/// anti-aliasing window, then transformed back at the new rate), its start-up delay trimmed,
/// so `round(len · to / from)` samples come back aligned with the input to within half an
/// input sample.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == 0 || to == 0 {
        return Err(AudioError::Setting { setting: "sample rate", expected: format!("rates above 0 Hz, got {from} → {to}") });
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let internal = |e: &dyn std::fmt::Display| AudioError::Setting { setting: "resampling", expected: format!("{from} → {to} Hz: {e}") };
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input).map_err(|e| internal(&e))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| internal(&e))?;
    let output = resampler.process_all(&input, samples.len(), None).map_err(|e| internal(&e))?;
    Ok(output.take_data())
}

/// The settings of [`trim_silence`]: frames of `frame` samples; a frame is sound while its RMS
/// is within `top_db` decibels of the loudest frame's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trim {
    pub top_db: f32,
    pub frame: usize,
}

impl Trim {
    /// 40 dB below the loudest frame (quieter than breath noise in a close-miked word, louder
    /// than the dither and hum of a quiet room) over frames of 10 ms at `rate`.
    pub fn for_rate(rate: u32) -> Self {
        Self { top_db: 40.0, frame: (rate as usize / 100).max(1) }
    }
}

/// The part of `samples` from the first to the last frame of sound, as
/// `librosa.effects.trim` decides it (an energy threshold relative to the clip's peak, so a
/// quiet recording is trimmed as a loud one): the clip is cut into consecutive frames of
/// `trim.frame` samples (the last one shorter), and a frame is sound when
/// 20·log₁₀(RMS / max RMS) > −`top_db`. Empty when every sample is 0.
pub fn trim_silence(samples: &[f32], trim: Trim) -> &[f32] {
    let frame = trim.frame.max(1);
    let rms: Vec<f64> = samples.chunks(frame).map(|c| (c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / c.len() as f64).sqrt()).collect();
    let peak = rms.iter().copied().fold(0.0, f64::max);
    if peak == 0.0 {
        return &[];
    }
    let floor = peak * 10f64.powf(-f64::from(trim.top_db) / 20.0);
    let loud = |r: &&f64| **r > floor;
    let first = rms.iter().position(|r| loud(&r)).expect("the peak frame is loud");
    let last = rms.iter().rposition(|r| loud(&r)).expect("the peak frame is loud");
    &samples[first * frame..((last + 1) * frame).min(samples.len())]
}

/// `samples` made exactly `length` long around their centre: a longer clip loses equal parts
/// at both ends (the extra sample, if odd, at the end), a shorter one gets zeros on both sides
/// the same way, so a trimmed word sits in the middle of its window.
pub fn fit_length(samples: &[f32], length: usize) -> Vec<f32> {
    let n = samples.len();
    if n >= length {
        let start = (n - length) / 2;
        return samples[start..start + length].to_vec();
    }
    let before = (length - n) / 2;
    let mut out = vec![0.0; length];
    out[before..before + n].copy_from_slice(samples);
    out
}
