//! Errors of training.

use std::path::PathBuf;

/// What can stop a training run; each message says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A time-series CSV that cannot be trained on (the message names the file, row, column).
    #[error("time series data: {0}")]
    Series(String),
    /// WAV clips that cannot be trained on (the message names the file or folder).
    #[error("sound data: {0}")]
    Sound(String),
    #[error(transparent)]
    Model(#[from] stipple_nn::NnError),
    #[error(transparent)]
    Pipeline(#[from] stipple_pipeline::PipelineError),
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("no checkpoint in {0} (expected a folder `checkpoint` with state.json; start without --resume)")]
    NoCheckpoint(PathBuf),
    #[error("checkpoint file {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("data-parallel training: {0}")]
    Parallel(String),
    #[error("{0} already holds a run; pass --resume to continue it or choose another --out folder")]
    RunExists(PathBuf),
    #[error(
        "the loss became {loss} at step {step}; training stopped. The last good checkpoint \
         ({checkpoint_step} steps) is kept in {run}; try a lower learning rate or gradient clipping"
    )]
    NonFiniteLoss { step: usize, loss: f64, checkpoint_step: usize, run: PathBuf },
    /// An observer's own work failed (e.g. measuring sample quality while training).
    #[error("{what} failed at step {step}")]
    Observer {
        what: &'static str,
        step: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
