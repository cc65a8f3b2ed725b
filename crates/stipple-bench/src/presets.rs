//! The benchmark networks and the figures timed on each.

use std::fmt;
use std::str::FromStr;

use stipple_nn::UNetConfig;

use crate::BenchError;

/// Names of the benchmark presets, in the default order.
pub const PRESETS: &[&str] = &["bench-unet16", "bench-unet32", "bench-unet64", "emoji16"];

/// Names of the figures, in order.
pub const FIGURES: &[&str] = &["train", "forward", "sample"];

/// The network of a preset name: the three `bench-unet` sizes of `UNetConfig::bench_unet32`,
/// the default run's `emoji16`, or `tiny` (an 8×8 test network, not in [`PRESETS`]).
pub fn preset_config(name: &str) -> Result<UNetConfig, BenchError> {
    let bench = |size| UNetConfig { sample_size: Some(size), ..UNetConfig::bench_unet32() };
    Ok(match name {
        "bench-unet16" => bench(16),
        "bench-unet32" => bench(32),
        "bench-unet64" => bench(64),
        "emoji16" => UNetConfig::emoji16(),
        "tiny" => UNetConfig::tiny(),
        _ => return Err(BenchError::UnknownPreset { name: name.into(), known: PRESETS.join(", ") }),
    })
}

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// One optimisation step.
    Train,
    /// One inference forward pass.
    Forward,
    /// One 20-step sample.
    Sample,
}

impl Figure {
    /// The name in [`FIGURES`] and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Train => "train",
            Figure::Forward => "forward",
            Figure::Sample => "sample",
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Figure {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, BenchError> {
        match s {
            "train" => Ok(Figure::Train),
            "forward" => Ok(Figure::Forward),
            "sample" => Ok(Figure::Sample),
            _ => Err(BenchError::UnknownFigure { name: s.into(), known: FIGURES.join(", ") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let msg = preset_config("unet32").unwrap_err().to_string();
        assert!(PRESETS.iter().all(|p| msg.contains(p)), "{msg}");
    }

    #[test]
    fn figure_names_round_trip_and_unknown_ones_list_the_known() {
        for name in FIGURES {
            assert_eq!(name.parse::<Figure>().unwrap().name(), *name);
        }
        let msg = "backward".parse::<Figure>().unwrap_err().to_string();
        assert!(FIGURES.iter().all(|f| msg.contains(f)) && msg.contains("backward"), "{msg}");
    }
}
