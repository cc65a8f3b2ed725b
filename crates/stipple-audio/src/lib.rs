//! Sound for Stipple: WAV clips read as mono `f32` samples (any PCM bit depth or float,
//! channels averaged), and written back with text inside the file — a RIFF `LIST`/`INFO`
//! chunk after the samples, where the recipe of a generated clip goes, as PNGs carry theirs
//! in a text chunk.

mod error;
mod info;
mod wav;

pub use error::AudioError;
pub use info::{read_info, INFO_COMMENT};
pub use wav::{decode_wav, encode_wav, read_wav, Clip};
