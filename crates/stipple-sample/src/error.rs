//! The error type of the samplers.

/// A boxed error from a model, a noise source or latent arithmetic.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why sampling stopped.
#[derive(thiserror::Error, Debug)]
pub enum SampleError {
    /// The observer returned `ControlFlow::Break` after step `step` (0-based) completed.
    #[error("sampling was cancelled after step {step}")]
    Cancelled { step: usize },
    /// The denoiser (the model) failed.
    #[error("the model failed: {0}")]
    Model(BoxError),
    /// The noise source failed.
    #[error("drawing noise failed: {0}")]
    Noise(BoxError),
    /// A linear combination of latents failed (e.g. shapes differ).
    #[error("latent arithmetic failed: {0}")]
    Latent(BoxError),
    /// η must be finite and ≥ 0.
    #[error("invalid eta {0}: it must be finite and >= 0")]
    InvalidEta(f64),
    /// A sampler or denoiser-wrapper option lies outside its range.
    #[error("invalid {name} {value}: expected {expected}")]
    InvalidOption { name: &'static str, value: f64, expected: &'static str },
}
