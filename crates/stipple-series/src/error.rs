//! Errors of the series scores: inputs that cannot be scored, each saying what was expected.

/// Why a forecast cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    /// Too few values for what was asked.
    #[error("{what} needs at least {needed} values, got {got}")]
    TooShort { what: &'static str, needed: usize, got: usize },
    /// Two sequences that must be as long as each other are not.
    #[error("{what}: {a} against {b} values")]
    LengthMismatch { what: &'static str, a: usize, b: usize },
    /// A NaN or infinite value.
    #[error("{what} holds a non-finite value at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// A table that cannot be read as series.
    #[error("{path}: {reason}")]
    Table { path: std::path::PathBuf, reason: String },
    /// A value the log transform (Box-Cox λ = 0) cannot take.
    #[error("value {value} at index {index} (0-based) is not positive; the log transform (Box-Cox λ = 0) needs every value above 0")]
    NotPositive { index: usize, value: f64 },
    /// A value an inverse difference needs is missing.
    #[error("rebuilding the value at index {index} (0-based) from its difference needs the value at index {needed}, which is missing; fill it in")]
    MissingBefore { index: usize, needed: usize },
    /// A setting out of range.
    #[error("{setting}: {expected}")]
    BadSetting { setting: &'static str, expected: String },
}

/// Checks that every value of `values` is finite.
pub(crate) fn finite(what: &'static str, values: &[f64]) -> Result<(), SeriesError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(SeriesError::NonFinite { what, index }),
        None => Ok(()),
    }
}
