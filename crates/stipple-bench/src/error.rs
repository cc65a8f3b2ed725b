//! Errors of the benchmarks.

/// What can go wrong while setting up or timing a figure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A preset name that is not one of [`crate::PRESETS`] (or `tiny`).
    #[error("unknown preset {name:?}; known: {known}")]
    UnknownPreset { name: String, known: String },
    /// A figure name that is not one of [`crate::FIGURES`].
    #[error("unknown figure {name:?}; known: {known}")]
    UnknownFigure { name: String, known: String },
    /// Settings out of range (zero runs, a preset without an image size).
    #[error("bad benchmark settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] stipple_nn::NnError),
    #[error(transparent)]
    Pipeline(#[from] stipple_pipeline::PipelineError),
    #[error(transparent)]
    Train(#[from] stipple_train::TrainError),
}
