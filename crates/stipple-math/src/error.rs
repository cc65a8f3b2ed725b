//! Error types of the crate.

use std::fmt;

/// An unknown name was given for one of the named enums (`BetaSchedule`, `TimestepSpacing`,
/// `SigmaSchedule`, `Prediction`, …). The message lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError {
    /// What was being parsed, e.g. "beta schedule".
    pub what: &'static str,
    /// The rejected input.
    pub got: String,
    /// Every accepted name.
    pub accepted: &'static [&'static str],
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; expected one of: {}",
            self.what,
            self.got,
            self.accepted.join(", ")
        )
    }
}

impl std::error::Error for ParseNameError {}

/// Parses `s` as one of `names` (exact match), returning its index.
pub(crate) fn parse_name(
    what: &'static str,
    s: &str,
    names: &'static [&'static str],
) -> Result<usize, ParseNameError> {
    names.iter().position(|n| *n == s).ok_or_else(|| ParseNameError {
        what,
        got: s.to_string(),
        accepted: names,
    })
}

/// Why a list of sigmas was rejected, or could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmasError {
    /// Fewer than two values (a schedule needs at least one step).
    TooShort { len: usize },
    /// A value is NaN or infinite.
    NotFinite { index: usize, value: f64 },
    /// A value is negative.
    Negative { index: usize, value: f64 },
    /// `sigmas[index] <= sigmas[index + 1]`.
    NotDecreasing { index: usize, value: f64, next: f64 },
    /// `steps == 0` was requested.
    ZeroSteps,
    /// A builder argument was invalid (e.g. σ_min ≥ σ_max or ≤ 0).
    InvalidArgument(String),
}

impl fmt::Display for SigmasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigmasError::TooShort { len } => {
                write!(f, "sigmas need at least 2 values (one step), got {len}")
            }
            SigmasError::NotFinite { index, value } => {
                write!(f, "sigma[{index}] = {value} is not finite")
            }
            SigmasError::Negative { index, value } => {
                write!(f, "sigma[{index}] = {value} is negative")
            }
            SigmasError::NotDecreasing { index, value, next } => write!(
                f,
                "sigmas must be strictly decreasing: sigma[{index}] = {value} <= sigma[{}] = {next}",
                index + 1
            ),
            SigmasError::ZeroSteps => write!(f, "the number of steps must be at least 1"),
            SigmasError::InvalidArgument(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for SigmasError {}
