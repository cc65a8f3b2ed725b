//! Sound for Stipple: WAV clips read as mono `f32` samples (any PCM bit depth or float,
//! channels averaged), and written back with text inside the file — a RIFF `LIST`/`INFO`
//! chunk after the samples, where the recipe of a generated clip goes, as PNGs carry theirs
//! in a text chunk; folders of clips made alike for training (one rate, mono, silence
//! trimmed, one length); and the spectral measure of sound: STFT magnitudes, the
//! multi-resolution STFT distance, log-mel spectrograms and MFCCs as librosa computes them,
//! and a spectrogram picture.

mod clips;
mod error;
mod features;
mod info;
mod mel;
mod prepare;
mod spectrogram;
mod stft;
mod wav;

pub use clips::{load_clips, load_clips_with, ClipSet, ClipSpec, Conversion};
pub use error::AudioError;
pub use features::{log_mel_distance, mean_abs_difference, mean_log_mel, mfcc_frames};
pub use info::{read_info, INFO_COMMENT};
pub use mel::{hz_to_mel, log_mel_spectrogram, mel_filterbank, mel_to_hz, mfcc, MelConfig};
pub use prepare::{fit_length, resample, trim_silence, Trim};
pub use spectrogram::{spectrogram_image, spectrogram_png, SPECTROGRAM_RANGE_DB};
pub use stft::{multi_resolution_stft_distance, stft_magnitude, stft_magnitude_padded, Padding, RESOLUTIONS};
pub use wav::{decode_wav, decode_wav_channels, encode_wav, read_wav, Clip};
