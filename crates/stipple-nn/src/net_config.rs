//! What network a model has, 2-D (images) or 1-D (sequences), and the shape of one sample.
//! Each kind of network is one variant: adding a kind adds a variant and its arm in each
//! `match` here and in [`crate::Net`].

use serde::{Deserialize, Serialize};

use crate::shapes::ParameterShapes;
use crate::{NnError, UNet1D, UNet1DConfig, UNet2D, UNetConfig};

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

/// The network of a model.
#[derive(Clone, Debug, PartialEq)]
pub enum NetworkConfig {
    /// diffusers' `UNet2DModel` on images (the model file's `unet` key).
    UNet2D(UNetConfig),
    /// The 1-D U-Net on sequences (the model file's `unet1d` key).
    UNet1D(UNet1DConfig),
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
        }
    }

    /// Channels of the network's output.
    pub fn out_channels(&self) -> usize {
        match self {
            NetworkConfig::UNet2D(c) => c.out_channels,
            NetworkConfig::UNet1D(c) => c.out_channels,
        }
    }

    /// Class embeddings (classes + the "no label" token), if class-conditional.
    pub fn num_class_embeds(&self) -> Option<usize> {
        match self {
            NetworkConfig::UNet2D(c) => c.num_class_embeds,
            NetworkConfig::UNet1D(c) => c.num_class_embeds,
        }
    }

    /// Makes the network class-conditional with `n` embeddings (or unconditional).
    pub fn set_num_class_embeds(&mut self, n: Option<usize>) {
        match self {
            NetworkConfig::UNet2D(c) => c.num_class_embeds = n,
            NetworkConfig::UNet1D(c) => c.num_class_embeds = n,
        }
    }

    /// Width of the text states the network attends to (only 2-D prompt models have one).
    pub fn cross_attention_dim(&self) -> Option<usize> {
        match self {
            NetworkConfig::UNet2D(c) => c.cross_attention_dim,
            NetworkConfig::UNet1D(_) => None,
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
        }
    }

    /// Names and shapes of every parameter of the network.
    pub fn parameter_shapes(&self) -> Result<ParameterShapes, NnError> {
        match self {
            NetworkConfig::UNet2D(c) => UNet2D::parameter_shapes(c),
            NetworkConfig::UNet1D(c) => UNet1D::parameter_shapes(c),
        }
    }
}
