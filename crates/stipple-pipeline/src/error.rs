//! Errors of the generation pipeline.

use std::path::PathBuf;

/// What can go wrong between a request and its images.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A request field is out of range or names something unknown; the message lists
    /// what is accepted.
    #[error("{0}")]
    Invalid(String),
    /// The model file could not be used.
    #[error(transparent)]
    Model(#[from] stipple_nn::NnError),
    /// The sampler stopped (cancelled, or the model failed mid-way).
    #[error(transparent)]
    Sample(#[from] stipple_sample::SampleError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// An output image could not be written.
    #[error("could not write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    /// The requested device is not available in this build or on this machine.
    #[error("{0}")]
    Device(String),
}
