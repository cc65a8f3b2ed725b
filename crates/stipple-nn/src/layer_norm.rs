//! Layer normalisation over the last dimension (Ba et al. 2016, Eq. 4):
//! `y = (x − mean) / √(var + ε) · γ + β`, biased variance as in PyTorch's `nn.LayerNorm`.
//!
//! Written with ordinary candle ops so that autograd differentiates it (candle-nn 0.11's
//! `LayerNorm` dispatches contiguous inputs to a fused op that has no backward); when nothing is
//! tracked for autograd (inference), on the CPU, it is one fused pass
//! ([`crate::ops::layer_norm`]).

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::ops;

/// PyTorch `nn.LayerNorm(dim, eps)`. Parameters: `weight` (γ, ones) and `bias` (β, zeros).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    /// # Shapes
    /// `x`: `(…, dim)`; returns the same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let tracked = x.track_op() || self.weight.track_op() || self.bias.track_op();
        if !tracked && ops::layer_norm::fused(x, &self.weight, &self.bias) {
            return ops::layer_norm(x, &self.weight, &self.bias, self.eps);
        }
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred.broadcast_div(&(var + self.eps)?.sqrt()?)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}
