//! A built network of either kind ([`crate::NetworkConfig`]), called the same way by the
//! denoiser wrappers, the pipeline and the training objective.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use crate::{check_tensors, CrossAttentionRecorder, DiffWave, NetworkConfig, NnError, UNet1D, UNet2D, UNetCond};

/// The denoiser network `F(x, t, cond)` of a model.
#[derive(Debug, Clone)]
pub enum Net {
    UNet2D(UNet2D),
    UNet1D(UNet1D),
    DiffWave(DiffWave),
}

impl Net {
    /// Builds the network of `cfg`, every parameter from `vb`.
    pub fn new(vb: VarBuilder, cfg: &NetworkConfig) -> Result<Self> {
        Ok(match cfg {
            NetworkConfig::UNet2D(c) => Net::UNet2D(UNet2D::new(vb, c)?),
            NetworkConfig::UNet1D(c) => Net::UNet1D(UNet1D::new(vb, c)?),
            NetworkConfig::DiffWave(c) => Net::DiffWave(DiffWave::new(vb, &c.net)?),
        })
    }

    /// Builds the network of `cfg` from named tensors after checking their names and shapes
    /// (converted to f32 on `device`).
    pub fn from_tensors(tensors: HashMap<String, Tensor>, cfg: &NetworkConfig, device: &Device) -> std::result::Result<Self, NnError> {
        check_tensors(&tensors, cfg.parameter_shapes()?, Path::new("<tensors>"))?;
        Ok(Net::new(VarBuilder::from_tensors(tensors, DType::F32, device), cfg)?)
    }

    /// Inference forward pass with class labels only.
    ///
    /// # Shapes
    /// `x`: `(B, C, spatial…)`, `timesteps`: `(B,)` or `(1,)`, `class_labels`: `(B,)` → `(B, C_out, spatial…)`
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, class_labels: Option<&Tensor>) -> Result<Tensor> {
        let cond = UNetCond { class_labels: class_labels.cloned(), encoder_hidden_states: None, observed: None };
        self.forward_cond(x, timesteps, &cond)
    }

    /// Inference forward pass with every kind of conditioning the network takes.
    pub fn forward_cond(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond) -> Result<Tensor> {
        match self {
            Net::UNet2D(n) => n.forward_cond(x, timesteps, cond),
            Net::UNet1D(n) => n.forward_cond(x, timesteps, cond),
            Net::DiffWave(n) => n.forward(x, timesteps, without_text(cond)?),
        }
    }

    /// Training forward pass (dropout masks from `dropout_seed`).
    pub fn forward_train(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, dropout_seed: u64) -> Result<Tensor> {
        match self {
            Net::UNet2D(n) => n.forward_train(x, timesteps, cond, dropout_seed),
            Net::UNet1D(n) => n.forward_train(x, timesteps, cond, dropout_seed),
            // DiffWave has no dropout: training and inference are one pass.
            Net::DiffWave(n) => n.forward(x, timesteps, without_text(cond)?),
        }
    }

    /// [`Net::forward_cond`] with the cross-attention handed to `recorder`: only a 2-D
    /// prompt model has cross-attention.
    pub fn forward_recorded(&self, x: &Tensor, timesteps: &Tensor, cond: &UNetCond, recorder: &CrossAttentionRecorder) -> Result<Tensor> {
        match self {
            Net::UNet2D(n) => n.forward_recorded(x, timesteps, cond, recorder),
            _ => candle_core::bail!("only a 2-D U-Net with text conditioning has cross-attention to record"),
        }
    }

    /// The 2-D U-Net, if that is the network.
    pub fn unet2d(&self) -> Option<&UNet2D> {
        match self {
            Net::UNet2D(n) => Some(n),
            _ => None,
        }
    }
}

/// The class labels of `cond`, for a network without text conditioning or an observation.
fn without_text(cond: &UNetCond) -> Result<Option<&Tensor>> {
    if cond.encoder_hidden_states.is_some() {
        candle_core::bail!("this network takes no text conditioning");
    }
    if cond.observed.is_some() {
        candle_core::bail!("this network takes no observation (CSDI conditioning is a 1-D U-Net's, with cond_channels)");
    }
    Ok(cond.class_labels.as_ref())
}
