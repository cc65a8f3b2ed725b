//! Errors of the audio I/O, each saying what was expected.

use std::path::PathBuf;

/// Why a clip cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Not a WAV file, or one cut short.
    #[error("{source_name}: not a readable WAV file ({reason}); expected RIFF/WAVE with PCM or float samples")]
    BadWav { source_name: String, reason: String },
    /// A clip whose sample rate is not the one asked for.
    #[error("{source_name}: sampled at {got} Hz, expected {expected} Hz (resample it first, e.g. `sox in.wav -r {expected} out.wav`)")]
    SampleRate { source_name: String, got: u32, expected: u32 },
    /// A clip with several channels where mono was required.
    #[error("{source_name}: {got} channels, expected mono (down-mix it first, e.g. `sox in.wav -c 1 out.wav`, or allow down-mixing)")]
    Channels { source_name: String, got: u16 },
    /// A clip with no sound left after trimming silence (or no samples at all).
    #[error("{source_name}: silent (every sample is 0, or the file holds none); expected a clip with sound")]
    Silent { source_name: String },
    /// A folder without WAV files.
    #[error("{dir}: no .wav files in the folder or its sub-folders; expected a folder of WAV clips")]
    NoClips { dir: PathBuf },
    /// A setting out of range.
    #[error("{setting}: {expected}")]
    Setting { setting: &'static str, expected: String },
    /// Samples that cannot be written (NaN or infinite).
    #[error("sample {index} is not finite")]
    NonFinite { index: usize },
    /// Reading a file failed.
    #[error("could not read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
