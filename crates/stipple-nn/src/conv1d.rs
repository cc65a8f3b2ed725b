//! A 1-D convolution layer with the API of `candle_nn::Conv1d`, running on
//! [`crate::ops::conv1d`] (Stipple's CPU kernels for f32/f64 with one group, candle's own
//! convolution otherwise).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv1dConfig, VarBuilder};

/// `y = conv1d(x, weight) + bias`, a drop-in for `candle_nn::Conv1d`.
#[derive(Debug, Clone)]
pub struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv1dConfig,
}

impl Conv1d {
    /// `weight (O, C / groups, K)`, `bias (O)`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: Conv1dConfig) -> Self {
        Self { weight, bias, config }
    }

    pub fn config(&self) -> &Conv1dConfig {
        &self.config
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The layer's output plus `shift`, a `(B, O)` addition per sample and channel, fused
    /// into the convolution as its bias.
    pub fn forward_shifted(&self, x: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let bias = match &self.bias {
            Some(b) => shift.broadcast_add(b)?,
            None => shift.clone(),
        };
        crate::ops::conv1d(x, &self.weight, Some(&bias), &self.config)
    }
}

impl Module for Conv1d {
    /// # Shapes
    /// - `x`: `(B, C, L)`
    /// - returns `(B, O, (L + 2p − d·(K − 1) − 1)/s + 1)`
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::ops::conv1d(x, &self.weight, self.bias.as_ref(), &self.config)
    }
}

/// A [`Conv1d`] whose parameters come from `vb`, with `candle_nn::conv1d`'s shapes, names and
/// initialisation hints: `weight (O, C / groups, K)` Kaiming-normal, `bias (O)` uniform in
/// `±1/√C`.
pub fn conv1d(in_channels: usize, out_channels: usize, kernel_size: usize, config: Conv1dConfig, vb: VarBuilder) -> Result<Conv1d> {
    let weight = conv1d_weight(in_channels, out_channels, kernel_size, &config, &vb)?;
    let bound = 1. / (in_channels as f64).sqrt();
    let bias = vb.get_with_hints(out_channels, "bias", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
    Ok(Conv1d::new(weight, Some(bias), config))
}

/// [`conv1d`] without a bias, as `candle_nn::conv1d_no_bias`.
pub fn conv1d_no_bias(in_channels: usize, out_channels: usize, kernel_size: usize, config: Conv1dConfig, vb: VarBuilder) -> Result<Conv1d> {
    let weight = conv1d_weight(in_channels, out_channels, kernel_size, &config, &vb)?;
    Ok(Conv1d::new(weight, None, config))
}

fn conv1d_weight(in_channels: usize, out_channels: usize, kernel_size: usize, config: &Conv1dConfig, vb: &VarBuilder) -> Result<Tensor> {
    let shape = (out_channels, in_channels / config.groups.max(1), kernel_size);
    vb.get_with_hints(shape, "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)
}
