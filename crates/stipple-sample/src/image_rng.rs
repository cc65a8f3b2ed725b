//! Where an image's random numbers come from: the web UI's "Random number generator source"
//! setting, with the same per-image semantics as the web UI (`modules/rng.py`, `ImageRNG`) and
//! diffusers given one generator per image: image i has its own generator seeded with its
//! seed; its first draw is the starting noise, each later draw continues the same generator.

use std::str::FromStr;

use stipple_math::ParseNameError;

use crate::philox::Philox4x32;
use crate::torch_cpu::TorchCpuGenerator;

/// A random number source, by the name front ends use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RngSource {
    /// Philox 4×32-10 as the web UI's "NV" source ([`Philox4x32`]): the numbers CUDA's
    /// `torch.randn` gives, on any machine — so also the web UI's default "GPU" source on an
    /// NVIDIA card.
    #[default]
    Nv,
    /// PyTorch's CPU generator ([`TorchCpuGenerator`]): the web UI's "CPU" source, and
    /// diffusers with `torch.Generator("cpu")`.
    Cpu,
}

impl RngSource {
    /// Both sources, in declaration order.
    pub const ALL: [RngSource; 2] = [RngSource::Nv, RngSource::Cpu];
    const NAMES: &'static [&'static str] = &["nv", "cpu"];

    /// The name in configs and flags.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The web UI's name of the source (its `randn_source` option and the `RNG:` field of
    /// its parameters text).
    pub fn webui_name(self) -> &'static str {
        match self {
            RngSource::Nv => "NV",
            RngSource::Cpu => "CPU",
        }
    }

    /// Reads the web UI's `randn_source` values: "GPU" and "NV" give the same numbers
    /// ("GPU" on an NVIDIA card), "CPU" is PyTorch's CPU generator.
    pub fn from_webui(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "GPU" | "NV" => Some(RngSource::Nv),
            "CPU" => Some(RngSource::Cpu),
            _ => None,
        }
    }
}

impl FromStr for RngSource {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| ParseNameError { what: "rng", got: s.to_string(), accepted: Self::NAMES })
    }
}

impl std::fmt::Display for RngSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One image's generator.
#[derive(Debug, Clone)]
pub enum ImageRng {
    Nv(Philox4x32),
    Cpu(Box<TorchCpuGenerator>),
}

impl ImageRng {
    /// The generator of `source` seeded with `seed`.
    pub fn new(source: RngSource, seed: u64) -> Self {
        match source {
            RngSource::Nv => ImageRng::Nv(Philox4x32::new(seed)),
            RngSource::Cpu => ImageRng::Cpu(Box::new(TorchCpuGenerator::new(seed))),
        }
    }

    /// The next draw of `n` standard normals (one `randn((n,))` call of the source).
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        match self {
            ImageRng::Nv(p) => p.normals(n),
            ImageRng::Cpu(g) => g.randn(n),
        }
    }
}
