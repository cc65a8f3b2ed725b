//! What the network predicts, and the preconditioning that turns it into a denoiser.

use crate::error::{parse_name, ParseNameError};
use std::str::FromStr;

/// What a network is trained to predict, which fixes its preconditioning.
///
/// Serde: the diffusers `prediction_type` strings `"epsilon"`, `"v_prediction"`, `"sample"`
/// (plain strings), and `{"edm": {"sigma_data": 0.5}}` for EDM.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Prediction {
    /// The noise ε (Ho et al. 2020).
    Epsilon,
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022, "Progressive Distillation",
    /// §4 and Appendix D).
    VPrediction,
    /// The clean sample x₀.
    Sample,
    /// The EDM preconditioning with data standard deviation σ_data (Karras et al. 2022, §5).
    Edm { sigma_data: f64 },
}

/// The preconditioning D(x;σ) = c_skip·x + c_out·F(c_in·x, c_noise) (Karras et al. 2022,
/// eq. 7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scalings {
    pub c_skip: f64,
    pub c_out: f64,
    pub c_in: f64,
}

impl Prediction {
    /// The σ_data of EDM used when none is given (Karras et al. 2022, Table 1: 0.5).
    pub const EDM_SIGMA_DATA: f64 = 0.5;
    /// Accepted names for `FromStr` ("edm" takes σ_data = 0.5).
    pub const NAMES: &'static [&'static str] = &["epsilon", "v_prediction", "sample", "edm"];

    /// The name ("epsilon", "v_prediction", "sample", "edm").
    pub fn name(self) -> &'static str {
        match self {
            Prediction::Epsilon => "epsilon",
            Prediction::VPrediction => "v_prediction",
            Prediction::Sample => "sample",
            Prediction::Edm { .. } => "edm",
        }
    }

    /// The scalings at noise level σ (DESIGN.md §2 table):
    ///
    /// | prediction | c_skip | c_out | c_in |
    /// |---|---|---|---|
    /// | ε | 1 | −σ | 1/√(σ²+1) |
    /// | v | 1/(σ²+1) | −σ/√(σ²+1) | 1/√(σ²+1) |
    /// | x₀ | 0 | 1 | 1/√(σ²+1) |
    /// | EDM | σ_d²/(σ²+σ_d²) | σ·σ_d/√(σ²+σ_d²) | 1/√(σ²+σ_d²) |
    ///
    /// Mirrors k-diffusion `external.DiscreteEpsDDPMDenoiser.get_scalings`,
    /// `external.DiscreteVDDPMDenoiser.get_scalings` (σ_data = 1) and
    /// `layers.Denoiser.get_scalings` (Karras et al. 2022, Table 1).
    pub fn scalings(self, sigma: f64) -> Scalings {
        let vp_in = 1.0 / (sigma * sigma + 1.0).sqrt();
        match self {
            Prediction::Epsilon => Scalings {
                c_skip: 1.0,
                c_out: -sigma,
                c_in: vp_in,
            },
            Prediction::VPrediction => Scalings {
                c_skip: 1.0 / (sigma * sigma + 1.0),
                c_out: -sigma * vp_in,
                c_in: vp_in,
            },
            Prediction::Sample => Scalings {
                c_skip: 0.0,
                c_out: 1.0,
                c_in: vp_in,
            },
            Prediction::Edm { sigma_data: sd } => {
                let v = sigma * sigma + sd * sd;
                Scalings {
                    c_skip: sd * sd / v,
                    c_out: sigma * sd / v.sqrt(),
                    c_in: 1.0 / v.sqrt(),
                }
            }
        }
    }

    /// (a, b) such that the network's training target for x = x₀ + σ·ε is a·x₀ + b·ε.
    ///
    /// From target = (x₀ − c_skip·x)/c_out (Karras et al. 2022, eq. 8), simplified by hand
    /// so that nothing cancels numerically:
    /// - ε: (0, 1); x₀: (1, 0);
    /// - v: (−σ/√(σ²+1), 1/√(σ²+1)) = (−√(1−ᾱ), √ᾱ), i.e. v = √ᾱ·ε − √(1−ᾱ)·x₀;
    /// - EDM: (σ/(σ_d·√(σ²+σ_d²)), −σ_d/√(σ²+σ_d²)).
    pub fn target_coefficients(self, sigma: f64) -> (f64, f64) {
        match self {
            Prediction::Epsilon => (0.0, 1.0),
            Prediction::Sample => (1.0, 0.0),
            Prediction::VPrediction => {
                let r = (sigma * sigma + 1.0).sqrt();
                (-sigma / r, 1.0 / r)
            }
            Prediction::Edm { sigma_data: sd } => {
                let r = (sigma * sigma + sd * sd).sqrt();
                (sigma / (sd * r), -sd / r)
            }
        }
    }

    /// Min-SNR-γ loss weight (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    /// Weighting Strategy", Eq. 9 and Table 1) for a loss on this prediction's target:
    /// the x₀-space weight min(SNR, γ) with SNR = 1/σ², times c_out(σ)², because
    /// ‖F − target‖² = ‖D − x₀‖²/c_out². Gives min(SNR, γ)/SNR for ε,
    /// min(SNR, γ)/(SNR + 1) for v and min(SNR, γ) for x₀, as in the paper.
    pub fn min_snr_weight(self, sigma: f64, gamma: f64) -> f64 {
        let snr = 1.0 / (sigma * sigma);
        let c_out = self.scalings(sigma).c_out;
        snr.min(gamma) * c_out * c_out
    }
}

impl FromStr for Prediction {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match parse_name("prediction type", s, Self::NAMES)? {
            0 => Prediction::Epsilon,
            1 => Prediction::VPrediction,
            2 => Prediction::Sample,
            _ => Prediction::Edm {
                sigma_data: Self::EDM_SIGMA_DATA,
            },
        })
    }
}

impl std::fmt::Display for Prediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod min_snr_tests {
    use super::*;

    /// The closed forms of Hang et al. 2023, Table 1, for σ on both sides of SNR = γ.
    #[test]
    fn matches_the_papers_closed_forms() {
        let gamma = 5.0;
        for sigma in [0.1f64, 0.3, 1.0, 4.0] {
            let snr = 1.0 / (sigma * sigma);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * b.abs().max(1.0);
            assert!(close(Prediction::Epsilon.min_snr_weight(sigma, gamma), snr.min(gamma) / snr));
            assert!(close(Prediction::VPrediction.min_snr_weight(sigma, gamma), snr.min(gamma) / (snr + 1.0)));
            assert!(close(Prediction::Sample.min_snr_weight(sigma, gamma), snr.min(gamma)));
        }
    }
}
