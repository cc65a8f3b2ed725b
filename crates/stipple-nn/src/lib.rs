//! Networks on candle for Stipple: diffusers' `UNet2DModel` as [`UNet2D`], its configuration
//! [`UNetConfig`] (diffusers' `config.json` keys), the 1-D U-Net for sequences ([`UNet1D`]),
//! either one as a model's [`Net`] ([`NetworkConfig`]), and weights I/O ([`weights`]).
//!
//! Parameter names are diffusers' checkpoint keys (`conv_in`, `time_embedding.linear_1`,
//! `down_blocks.0.resnets.0.norm1`, …), so diffusers `UNet2DModel` weights load unchanged.

pub mod attention;
mod attention_maps;
pub mod blocks;
mod clip_vision;
pub mod config;
pub mod conv1d;
pub mod diffwave;
mod diffwave_config;
mod diffusion;
pub mod dropout;
pub mod embeddings;
pub mod error;
pub mod init;
mod guidance;
mod latent;
mod layer_norm;
mod linear;
mod model_file;
mod net;
mod net_config;
mod network;
mod observation;
pub mod ops;
pub mod process;
pub mod resnet;
mod shapes;
pub mod text;
mod transformer;
pub mod unet;
pub mod unet1d;
pub mod weights;

pub use attention_maps::CrossAttentionRecorder;
pub use clip_vision::{ClipVisionConfig, ClipVisionTransformer};
pub use conv1d::Conv1d;
pub use diffwave::DiffWave;
pub use diffwave_config::DiffWaveConfig;
pub use config::{AttentionKind, DownBlockType, UNetConfig, UpBlockType};
pub use layer_norm::LayerNorm;
pub use shapes::{record_shapes, ParameterShapes};
pub use transformer::{SpatialTransformer, TransformerLayout};
pub use linear::TokenLinear;
pub use diffusion::DiffusionConfig;
pub use latent::TensorLatent;
pub use model_file::{
    load_model_file, model_from_tensors, read_model_config, save_model_file, LoadedModel, ModelConfig, SeriesWindow, SoundFormat, FORMAT_VERSION,
    MODEL_FORMAT, TEXT_ENCODER_PREFIX, TOKENIZER_KEY,
};
pub use net::Net;
pub use net_config::{DiffWaveNet, NetworkConfig, SampleShape};
pub use unet1d::{UNet1D, UNet1DConfig};
pub use network::{denoiser, UNetNetwork};
pub use observation::{observation_channels, OBSERVATION_CHANNELS};
pub use guidance::{guided_denoiser, Guided, GuidanceSettings, GuidedNetwork, Inpaint};
pub use error::NnError;
pub use unet::{num_parameters, UNet2D, UNetCond};
pub use weights::{
    check_tensors, check_unet_tensors, load_tensors, load_unet, read_metadata, save_safetensors, unet_from_tensors,
};
