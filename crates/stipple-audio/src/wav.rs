//! WAV clips in and out through `hound`.

use std::io::Cursor;
use std::path::Path;

use crate::info::append_info;
use crate::AudioError;

/// A mono clip: samples in [−1, 1] at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub rate: u32,
    pub samples: Vec<f32>,
}

/// Decodes WAV bytes (`source_name` names them in errors): integer PCM of any depth scaled by
/// 2^(bits−1), float samples as they are, several channels averaged into one.
pub fn decode_wav(bytes: &[u8], source_name: &str) -> Result<Clip, AudioError> {
    decode_wav_channels(bytes, source_name).map(|(clip, _)| clip)
}

/// [`decode_wav`], also returning the file's channel count (before the down-mix to mono).
pub fn decode_wav_channels(bytes: &[u8], source_name: &str) -> Result<(Clip, u16), AudioError> {
    let bad = |e: hound::Error| AudioError::BadWav { source_name: source_name.to_string(), reason: e.to_string() };
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(bad)?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(bad)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>().map_err(bad)?
        }
    };
    let channels = usize::from(spec.channels.max(1));
    let samples = interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok((Clip { rate: spec.sample_rate, samples }, spec.channels))
}

/// Reads a WAV file; with `rate`, a clip at another rate is an [`AudioError::SampleRate`].
pub fn read_wav(path: &Path, rate: Option<u32>) -> Result<Clip, AudioError> {
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io { path: path.to_path_buf(), source })?;
    let name = path.display().to_string();
    let clip = decode_wav(&bytes, &name)?;
    match rate {
        Some(expected) if expected != clip.rate => Err(AudioError::SampleRate { source_name: name, got: clip.rate, expected }),
        _ => Ok(clip),
    }
}

/// The clip as 16-bit PCM mono WAV bytes (scaled by 2¹⁵ as [`decode_wav`] reads them, clipped
/// to the 16-bit range) with `comment` in a
/// `LIST`/`INFO` chunk after the samples ([`crate::read_info`] reads it back).
pub fn encode_wav(clip: &Clip, comment: &str) -> Result<Vec<u8>, AudioError> {
    if let Some(index) = clip.samples.iter().position(|s| !s.is_finite()) {
        return Err(AudioError::NonFinite { index });
    }
    let spec = hound::WavSpec { channels: 1, sample_rate: clip.rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = Cursor::new(Vec::new());
    let internal = |e: hound::Error| AudioError::BadWav { source_name: "the encoder".into(), reason: e.to_string() };
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(internal)?;
    for s in &clip.samples {
        writer.write_sample((s * 32_768.0).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16).map_err(internal)?;
    }
    writer.finalize().map_err(internal)?;
    Ok(append_info(out.into_inner(), comment))
}
