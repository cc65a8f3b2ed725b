//! Networks on candle for Stipple: diffusers' `UNet2DModel` as [`UNet2D`], its configuration
//! [`UNetConfig`] (diffusers' `config.json` keys), and weights I/O ([`weights`]).
//!
//! Parameter names are diffusers' checkpoint keys (`conv_in`, `time_embedding.linear_1`,
//! `down_blocks.0.resnets.0.norm1`, …), so diffusers `UNet2DModel` weights load unchanged.

pub mod attention;
pub mod blocks;
pub mod config;
pub mod dropout;
pub mod embeddings;
pub mod error;
pub mod resnet;
pub mod unet;
pub mod weights;

pub use config::{DownBlockType, UNetConfig, UpBlockType};
pub use error::NnError;
pub use unet::{num_parameters, UNet2D};
pub use weights::{
    check_unet_tensors, load_tensors, load_unet, read_metadata, save_safetensors, unet_from_tensors,
};
