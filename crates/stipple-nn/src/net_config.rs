//! What network a model has, 2-D (images) or 1-D (sequences), and the shape of one sample.
//! Each kind of network is one variant: adding a kind adds a variant and its arm in each
//! `match` here and in [`crate::Net`].

use serde::{Deserialize, Serialize};

use crate::shapes::ParameterShapes;
use crate::{DiffWave, DiffWaveConfig, NnError, UNet1D, UNet1DConfig, UNet2D, UNetConfig};

/// The shape of one sample: channels, then the spatial dimensions (`[H, W]` for an image,
/// `[L]` for a sequence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleShape {
    pub channels: usize,
    pub spatial: Vec<usize>,
}

impl SampleShape {
    /// `[C, spatial…]`: the dims of one sample, without the batch.
    pub fn dims(&self) -> Vec<usize> {
        std::iter::once(self.channels).chain(self.spatial.iter().copied()).collect()
    }

    /// `[n, C, spatial…]`.
    pub fn batch_dims(&self, n: usize) -> Vec<usize> {
        std::iter::once(n).chain(self.dims()).collect()
    }

    /// Values per sample.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// `(1, 1, …)` of the batch rank with `n` first: the shape of a per-sample scalar that
    /// broadcasts over a batch of these samples.
    pub fn per_sample_column(&self, n: usize) -> Vec<usize> {
        let mut d = vec![1; 2 + self.spatial.len()];
        d[0] = n;
        d
    }

    /// The side of a square image (`None` for other shapes).
    pub fn square_side(&self) -> Option<usize> {
        match self.spatial.as_slice() {
            [h, w] if h == w => Some(*h),
            _ => None,
        }
    }
}

/// DiffWave on sequences of `sample_size` values: the network takes any length; the model
/// generates this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffWaveNet {
    pub sample_size: usize,
    pub net: DiffWaveConfig,
}

/// The network of a model.
#[derive(Clone, Debug, PartialEq)]
pub enum NetworkConfig {
    /// diffusers' `UNet2DModel` on images (the model file's `unet` key).
    UNet2D(UNetConfig),
    /// The 1-D U-Net on sequences (the model file's `unet1d` key).
    UNet1D(UNet1DConfig),
    /// DiffWave's dilated residual stack on sequences (the model file's `diffwave` key).
    DiffWave(DiffWaveNet),
}

impl NetworkConfig {
    /// Checks the network's keys.
    pub fn validate(&self) -> Result<(), NnError> {
        match self {
            NetworkConfig::UNet2D(c) => {
                c.validate()?;
                if c.sample_size.is_none() {
                    return Err(NnError::Config("sample_size must be set: it is the image size the model generates".into()));
                }
                Ok(())
            }
            NetworkConfig::UNet1D(c) => c.validate(),
            NetworkConfig::DiffWave(c) if c.sample_size == 0 => Err(NnError::Config("DiffWave: sample_size (the sequence length) must be at least 1".into())),
            NetworkConfig::DiffWave(c) => c.net.validate(),
        }
    }

    /// The shape of one sample the network denoises (validated configs have one).
    pub fn sample_shape(&self) -> Result<SampleShape, NnError> {
        match self {
            NetworkConfig::UNet2D(c) => {
                let s = c.sample_size.ok_or_else(|| NnError::Config("sample_size must be set".into()))?;
                Ok(SampleShape { channels: c.in_channels, spatial: vec![s, s] })
            }
            NetworkConfig::UNet1D(c) => Ok(SampleShape { channels: c.in_channels, spatial: vec![c.sample_size] }),
            NetworkConfig::DiffWave(c) => Ok(SampleShape { channels: c.net.in_channels, spatial: vec![c.sample_size] }),
        }
    }

    /// Channels of the network's output.
    pub fn out_channels(&self) -> usize {
        match self {
            NetworkConfig::UNet2D(c) => c.out_channels,
            NetworkConfig::UNet1D(c) => c.out_channels,
            NetworkConfig::DiffWave(c) => c.net.out_channels,
        }
    }

    /// Whether the network reads a conditional observation beside the noisy sequence (a 1-D
    /// U-Net with `cond_channels`, conditioned as in CSDI, Tashiro et al. 2021).
    pub fn reads_observation(&self) -> bool {
        matches!(self, NetworkConfig::UNet1D(c) if c.cond_channels > 0)
    }

    /// Class embeddings (classes + the "no label" token), if class-conditional.
    pub fn num_class_embeds(&self) -> Option<usize> {
        match self {
            NetworkConfig::UNet2D(c) => c.num_class_embeds,
            NetworkConfig::UNet1D(c) => c.num_class_embeds,
            NetworkConfig::DiffWave(c) => c.net.num_class_embeds,
        }
    }

    /// Makes the network class-conditional with `n` embeddings (or unconditional).
    pub fn set_num_class_embeds(&mut self, n: Option<usize>) {
        match self {
            NetworkConfig::UNet2D(c) => c.num_class_embeds = n,
            NetworkConfig::UNet1D(c) => c.num_class_embeds = n,
            NetworkConfig::DiffWave(c) => c.net.num_class_embeds = n,
        }
    }

    /// Width of the text states the network attends to (only 2-D prompt models have one).
    pub fn cross_attention_dim(&self) -> Option<usize> {
        match self {
            NetworkConfig::UNet2D(c) => c.cross_attention_dim,
            NetworkConfig::UNet1D(_) | NetworkConfig::DiffWave(_) => None,
        }
    }

    /// The 2-D U-Net's config, if that is the network.
    pub fn unet2d(&self) -> Option<&UNetConfig> {
        match self {
            NetworkConfig::UNet2D(c) => Some(c),
            _ => None,
        }
    }

    /// The 2-D U-Net's config, mutably, if that is the network.
    pub fn unet2d_mut(&mut self) -> Option<&mut UNetConfig> {
        match self {
            NetworkConfig::UNet2D(c) => Some(c),
            _ => None,
        }
    }

    /// The network in words (`stipple inspect`, error messages).
    pub fn describe(&self) -> &'static str {
        match self {
            NetworkConfig::UNet2D(_) => "a 2-D U-Net (images)",
            NetworkConfig::UNet1D(_) => "a 1-D U-Net (sequences)",
            NetworkConfig::DiffWave(_) => "a DiffWave network (sequences)",
        }
    }

    /// Names and shapes of every parameter of the network.
    pub fn parameter_shapes(&self) -> Result<ParameterShapes, NnError> {
        match self {
            NetworkConfig::UNet2D(c) => UNet2D::parameter_shapes(c),
            NetworkConfig::UNet1D(c) => UNet1D::parameter_shapes(c),
            NetworkConfig::DiffWave(c) => {
                c.net.validate()?;
                crate::record_shapes(|vb| DiffWave::new(vb, &c.net).map(|_| ()))
            }
        }
    }
}

impl From<UNet1DConfig> for NetworkConfig {
    fn from(c: UNet1DConfig) -> Self {
        NetworkConfig::UNet1D(c)
    }
}

impl From<DiffWaveNet> for NetworkConfig {
    fn from(c: DiffWaveNet) -> Self {
        NetworkConfig::DiffWave(c)
    }
}
