//! The crate's typed error: every variant carries the context a user needs to act on it.

use std::path::PathBuf;

/// Errors of `stipple-nn`: configuration, weight files and the tensor backend.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// Reading or writing a file failed.
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file (truncated, or another format).
    #[error("{path} is not a valid .safetensors file (truncated or another format?): {reason}")]
    NotSafetensors { path: PathBuf, reason: String },
    /// The tensors of a file do not match what the configuration expects.
    #[error("weights in {path} do not match the model configuration: {details}")]
    WeightsMismatch { path: PathBuf, details: String },
    /// An invalid configuration (the message says which key and which values are accepted).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A valid safetensors file that is not a Stipple model file, or one from another format version.
    #[error("{path} is not a Stipple model file: {reason}")]
    Foreign { path: PathBuf, reason: String },
    /// An invalid diffusion-process configuration.
    #[error("invalid diffusion configuration: {0}")]
    Diffusion(String),
    /// A prompt, tokenizer or text-encoder problem (the message says what is expected).
    #[error("{0}")]
    Text(String),
    /// An error from candle (shapes, devices, dtypes).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl NnError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NnError::Io { path: path.into(), source }
    }
}
