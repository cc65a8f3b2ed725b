//! Errors of the generation pipeline: bad input (which setting, what was expected) apart from
//! I/O and internal failures, so that each front end can answer in its own terms (a flag for
//! the CLI, a JSON field and a 4xx status for the server).

use std::path::PathBuf;

/// What can go wrong between a request and its images.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A request setting is out of range, names something unknown or does not fit the model.
    /// `setting` is the library's name of the setting (the `GenerateRequest` field, e.g.
    /// `guidance_scale`, `init_image`, `prompt`); `expected` says what is accepted. Front ends
    /// translate the setting to their flag or field ([`PipelineError::bad_input`]).
    #[error("{setting}: {expected}")]
    BadInput { setting: &'static str, expected: String },
    /// Reading or writing a file failed.
    #[error("could not {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded (an internal failure, not the caller's input).
    #[error("could not encode the image")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The model file could not be used.
    #[error(transparent)]
    Model(#[from] stipple_nn::NnError),
    /// A Stable Diffusion checkpoint could not be used.
    #[error(transparent)]
    Checkpoint(#[from] stipple_sd::SdError),
    /// The sampler stopped (cancelled, or the model failed mid-way).
    #[error(transparent)]
    Sample(#[from] stipple_sample::SampleError),
    /// A tensor operation failed.
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
    /// The requested device is not available in this build or on this machine.
    #[error("{0}")]
    Device(String),
}

impl PipelineError {
    /// Bad input in `setting`; `expected` says what is accepted.
    pub fn bad(setting: &'static str, expected: impl Into<String>) -> Self {
        PipelineError::BadInput { setting, expected: expected.into() }
    }

    /// An I/O failure while doing `action` ("read", "write", …) on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PipelineError::Io { action, path: path.into(), source }
    }

    /// For bad input, the setting and what was expected; `None` for every other failure.
    pub fn bad_input(&self) -> Option<(&'static str, &str)> {
        match self {
            PipelineError::BadInput { setting, expected } => Some((setting, expected)),
            _ => None,
        }
    }

    /// The message with the setting named as a front end names it (`--guidance-scale`,
    /// `cfg_scale`, …); other errors keep their message and causes.
    pub fn describe(&self, name: impl Fn(&'static str) -> String) -> String {
        match self {
            PipelineError::BadInput { setting, expected } => format!("{}: {expected}", name(setting)),
            other => chain(other),
        }
    }
}

/// An error and its causes, joined by ": " (what `anyhow`'s `{:#}` prints).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s += ": ";
            s += &text;
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_its_setting_in_the_front_ends_terms() {
        let e = PipelineError::bad("guidance_scale", "must lie in [0, 100], got 120");
        assert_eq!(e.bad_input(), Some(("guidance_scale", "must lie in [0, 100], got 120")));
        let flag = e.describe(|s| format!("--{}", s.replace('_', "-")));
        assert_eq!(flag, "--guidance-scale: must lie in [0, 100], got 120");
    }

    #[test]
    fn io_errors_keep_their_source_once() {
        let e = PipelineError::io("read", "/nope.png", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(e.bad_input().is_none());
        let text = e.describe(|s| s.to_string());
        assert!(text.starts_with("could not read /nope.png: "), "{text}");
        assert_eq!(text.matches("not found").count(), 1, "{text}");
    }
}
