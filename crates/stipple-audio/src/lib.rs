//! Sound for Stipple: WAV clips read as mono `f32` samples (any PCM bit depth or float,
//! channels averaged), and written back with text inside the file — a RIFF `LIST`/`INFO`
//! chunk after the samples, where the recipe of a generated clip goes, as PNGs carry theirs
//! in a text chunk; and the spectral measure of sound: STFT magnitudes and the
//! multi-resolution STFT distance.

mod error;
mod info;
mod stft;
mod wav;

pub use error::AudioError;
pub use info::{read_info, INFO_COMMENT};
pub use stft::{multi_resolution_stft_distance, stft_magnitude, RESOLUTIONS};
pub use wav::{decode_wav, encode_wav, read_wav, Clip};
