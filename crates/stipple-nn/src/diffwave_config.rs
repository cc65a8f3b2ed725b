//! [`DiffWaveConfig`]: the hyperparameters of [`crate::DiffWave`], with the keys of the
//! reference implementation's `params.py` (lmnt-com/diffwave: `residual_layers`,
//! `residual_channels`, `dilation_cycle_length`).

use serde::{Deserialize, Serialize};

use crate::NnError;

/// Largest `dilation_cycle_length`: dilations up to 2^19 taps apart (sequences of millions of
/// samples), far beyond DiffWave's 10 or 11.
pub const MAX_DILATION_CYCLE: usize = 20;

/// DiffWave's network shape (Kong et al. 2021, *DiffWave: A Versatile Diffusion Model for
/// Audio Synthesis*, ICLR, §3 and Figure 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffWaveConfig {
    /// Channels of the input signal (1 for mono audio, as the reference's `audio.unsqueeze(1)`).
    #[serde(default = "d_one")]
    pub in_channels: usize,
    /// Channels of the output (1 in the reference).
    #[serde(default = "d_one")]
    pub out_channels: usize,
    /// Residual layers `N`. Reference default: 30.
    #[serde(default = "d_layers")]
    pub residual_layers: usize,
    /// Residual channels `C`. Reference default: 64.
    #[serde(default = "d_channels")]
    pub residual_channels: usize,
    /// Layer `i` has dilation `2^(i mod dilation_cycle_length)`. Reference default: 10.
    #[serde(default = "d_cycle")]
    pub dilation_cycle_length: usize,
    /// Width of the diffusion-step embedding after its two projections (and of the class
    /// embedding). Fixed at 512 in the reference; smaller suits small networks.
    #[serde(default = "d_embedding")]
    pub embedding_dim: usize,
    /// Rows of a class embedding added to the diffusion-step embedding: one per class and the
    /// "no label" token of classifier-free guidance (label `num_class_embeds − 1`, as for the
    /// 2-D U-Net). `None`: unconditional. Not in the reference (which conditions on
    /// spectrograms instead).
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
}

fn d_one() -> usize {
    1
}
fn d_layers() -> usize {
    30
}
fn d_channels() -> usize {
    64
}
fn d_cycle() -> usize {
    10
}
fn d_embedding() -> usize {
    512
}

impl Default for DiffWaveConfig {
    fn default() -> Self {
        Self::base()
    }
}

impl DiffWaveConfig {
    /// The reference's defaults (lmnt-com/diffwave `params.py`; the paper's DiffWave_BASE).
    pub fn base() -> Self {
        Self {
            in_channels: 1,
            out_channels: 1,
            residual_layers: 30,       // three cycles of dilations 1 … 512
            residual_channels: 64,     // C = 64 (paper: DiffWave_BASE)
            dilation_cycle_length: 10, // receptive field 6139 samples
            embedding_dim: 512,        // the reference's projection width
            num_class_embeds: None,    // unconditional
        }
    }

    /// A network small enough for tests on CPU.
    pub fn tiny() -> Self {
        Self {
            residual_layers: 4,       // two cycles
            residual_channels: 8,     // C = 8
            dilation_cycle_length: 2, // dilations 1, 2, 1, 2
            embedding_dim: 32,        // small projections
            ..Self::base()
        }
    }

    /// The dilation of residual layer `i`: `2^(i mod dilation_cycle_length)`.
    pub fn dilation(&self, i: usize) -> usize {
        1 << (i % self.dilation_cycle_length.max(1))
    }

    /// Input samples that one output sample depends on: `1 + Σ_i 2·dilation(i)` (each
    /// kernel-3 layer adds its dilation on either side; the 1×1 convolutions add nothing).
    /// The reference's defaults give 6139 (Kong et al. 2021, §3.1).
    pub fn receptive_field(&self) -> usize {
        1 + (0..self.residual_layers).map(|i| 2 * self.dilation(i)).sum::<usize>()
    }

    /// Checks every field; the message names the key and the accepted values.
    pub fn validate(&self) -> Result<(), NnError> {
        let err = |m: String| Err(NnError::Config(format!("DiffWave: {m}")));
        for (key, v) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("residual_layers", self.residual_layers),
            ("residual_channels", self.residual_channels),
            ("embedding_dim", self.embedding_dim),
        ] {
            if v == 0 {
                return err(format!("{key} must be at least 1"));
            }
        }
        if !(1..=MAX_DILATION_CYCLE).contains(&self.dilation_cycle_length) {
            return err(format!("dilation_cycle_length must be in 1..={MAX_DILATION_CYCLE}, got {}", self.dilation_cycle_length));
        }
        if self.num_class_embeds == Some(0) {
            return err("num_class_embeds must be None or at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_keys_and_defaults() {
        // lmnt-com/diffwave params.py: residual_layers=30, residual_channels=64,
        // dilation_cycle_length=10.
        let cfg: DiffWaveConfig = serde_json::from_str(r#"{"residual_layers": 30, "residual_channels": 64, "dilation_cycle_length": 10}"#).unwrap();
        assert_eq!(cfg, DiffWaveConfig::base());
        assert_eq!(serde_json::from_str::<DiffWaveConfig>("{}").unwrap(), DiffWaveConfig::default());
        assert!(serde_json::from_str::<DiffWaveConfig>(r#"{"residual_layer": 3}"#).is_err());
        let round = serde_json::to_string(&DiffWaveConfig { num_class_embeds: Some(4), ..DiffWaveConfig::tiny() }).unwrap();
        assert_eq!(serde_json::from_str::<DiffWaveConfig>(&round).unwrap().num_class_embeds, Some(4));
    }

    #[test]
    fn receptive_field_of_the_paper() {
        // Kong et al. 2021, §3.1: 30 layers in 3 cycles of [1, 2, …, 512] see 6139 samples.
        assert_eq!(DiffWaveConfig::base().receptive_field(), 6139);
        // 1 + 2·(1 + 2 + 1 + 2).
        assert_eq!(DiffWaveConfig::tiny().receptive_field(), 13);
    }

    #[test]
    fn validate_names_the_bad_key() {
        let bad = [
            (DiffWaveConfig { residual_channels: 0, ..DiffWaveConfig::tiny() }, "residual_channels"),
            (DiffWaveConfig { residual_layers: 0, ..DiffWaveConfig::tiny() }, "residual_layers"),
            (DiffWaveConfig { in_channels: 0, ..DiffWaveConfig::tiny() }, "in_channels"),
            (DiffWaveConfig { embedding_dim: 0, ..DiffWaveConfig::tiny() }, "embedding_dim"),
            (DiffWaveConfig { dilation_cycle_length: 0, ..DiffWaveConfig::tiny() }, "dilation_cycle_length"),
            (DiffWaveConfig { dilation_cycle_length: 21, ..DiffWaveConfig::tiny() }, "dilation_cycle_length"),
            (DiffWaveConfig { num_class_embeds: Some(0), ..DiffWaveConfig::tiny() }, "num_class_embeds"),
        ];
        for (cfg, key) in bad {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e:?} does not name {key}");
        }
        DiffWaveConfig::base().validate().unwrap();
    }
}
