//! Errors of the evaluator: bad input (sizes, counts, non-finite values, a weights file of
//! the wrong architecture) apart from I/O and tensor failures.

use std::path::PathBuf;

/// What can go wrong while measuring sample quality.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Fewer samples than a metric needs.
    #[error("{metric} needs at least {needed} samples per set, got {got}")]
    TooFewSamples { metric: &'static str, needed: usize, got: usize },
    /// Two feature sets (or statistics) of different dimensions.
    #[error("the feature sets differ in dimension: {a} against {b}")]
    DimensionMismatch { a: usize, b: usize },
    /// A feature (or a mean or covariance entry) is NaN or infinite.
    #[error("{what} holds a non-finite value at sample {row}, feature {col}")]
    NonFinite { what: &'static str, row: usize, col: usize },
    /// An image does not have the size or channel count the feature network takes.
    #[error("{path}: expected a {expected} image, got {got} (the feature network takes one size; resize the set first)")]
    ImageShape { path: PathBuf, expected: String, got: String },
    /// A folder holds no image, or an image cannot be decoded.
    #[error("{path}: {reason}")]
    BadImage { path: PathBuf, reason: String },
    /// A weights file does not hold the network that was asked for.
    #[error("{path}: not a {architecture} weights file: {reason}")]
    WrongArchitecture { path: PathBuf, architecture: &'static str, reason: String },
    /// A model folder without some of the files it needs.
    #[error("{path}: missing {missing}; {expected}")]
    MissingFiles { path: PathBuf, missing: String, expected: String },
    /// A prompt with more tokens than the text encoder has positions for.
    #[error("the prompt {prompt:?} is {tokens} tokens long, {} more than the {fits} the text encoder takes between its start and end tokens", .tokens - .fits)]
    PromptTooLong { prompt: String, tokens: usize, fits: usize },
    /// A setting out of range (its name and what is accepted).
    #[error("{setting}: {expected}")]
    BadSetting { setting: &'static str, expected: String },
    /// Reading or writing a file failed.
    #[error("could not {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Generating the images to evaluate failed.
    #[error("generating the images failed")]
    Generate(#[from] stipple_pipeline::PipelineError),
    /// The training run being measured failed.
    #[error("the training run failed")]
    Training(#[source] Box<stipple_train::TrainError>),
    /// Sound that cannot be read or measured.
    #[error(transparent)]
    Audio(#[from] stipple_audio::AudioError),
    /// A tensor operation failed.
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
}

impl EvalError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action, path: path.into(), source }
    }

    pub fn setting(setting: &'static str, expected: impl Into<String>) -> Self {
        Self::BadSetting { setting, expected: expected.into() }
    }
}
