//! The crate's typed error: every variant says what was found and what was expected.

use std::path::PathBuf;

use crate::Architecture;

/// Errors of `stipple-sd`: checkpoint files, configurations, prompts and the tensor backend.
#[derive(Debug, thiserror::Error)]
pub enum SdError {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path is neither a diffusers folder nor a single-file checkpoint.
    #[error("{path} is not a Stable Diffusion checkpoint: {reason}")]
    NotACheckpoint { path: PathBuf, reason: String },
    /// A single file whose keys match no known architecture.
    #[error(
        "{path}: unknown architecture (expected the keys of SD 1.x, SD 2.x or SDXL: \
         model.diffusion_model.*, first_stage_model.*, cond_stage_model.* or conditioner.*); found {found}"
    )]
    UnknownArchitecture { path: PathBuf, found: String },
    /// A recognised architecture this build cannot run yet.
    #[error("{path}: detected {arch}, which this build does not load yet (supported: {supported})")]
    Unsupported { path: PathBuf, arch: Architecture, supported: String },
    /// The tokenizer's `vocab.json` or `merges.txt` is missing.
    #[error("missing tokenizer file {path} (a CLIP tokenizer is a folder with vocab.json and merges.txt{hint})")]
    MissingTokenizer { path: PathBuf, hint: String },
    /// A configuration file that does not parse or holds a value this build cannot run.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// Missing, unexpected or wrongly shaped weights (the message lists them).
    #[error(transparent)]
    Weights(#[from] stipple_nn::NnError),
    /// A LoRA file that cannot be merged into this model.
    #[error("LoRA {path}: {message}")]
    Lora { path: PathBuf, message: String },
    /// A request that cannot be carried out (the message says which value is accepted).
    #[error("{0}")]
    Invalid(String),
    /// An error from candle (shapes, devices, dtypes).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl SdError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SdError::Io { path: path.into(), source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        SdError::Config { path: path.into(), message: message.into() }
    }
}
