//! A linear layer over the last dimension of a token tensor, as one GEMM.
//!
//! candle-nn's `Linear` on a `(B, N, C)` input broadcasts the weight over the batch and runs
//! B small GEMMs forward and backward (and sums B weight gradients); flattening the leading
//! dimensions first gives one `(B·N, C) × (C, C')` GEMM with the same result. The bias is added
//! by [`crate::ops::add_bias`], whose backward sums the gradient's columns in one parallel pass;
//! at inference the GEMM accumulates onto the bias (and residual) instead
//! ([`crate::ops::linear_inference`]).

use candle_core::{Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::ops::{add_bias_to_fresh, linear_inference};

/// `y = x Wᵀ + b` over the last dimension of any-rank `x` (PyTorch `nn.Linear`).
#[derive(Debug, Clone)]
pub struct TokenLinear(Linear);

impl TokenLinear {
    /// With a bias, initialised as candle-nn's `linear`.
    pub fn new(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self(candle_nn::linear(in_dim, out_dim, vb)?))
    }

    /// Without a bias, initialised as candle-nn's `linear_no_bias`.
    pub fn no_bias(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self(candle_nn::linear_no_bias(in_dim, out_dim, vb)?))
    }

    /// From a `(out_dim, in_dim)` weight and an optional `(out_dim,)` bias.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self(Linear::new(weight, bias))
    }

    /// # Shapes
    /// `x`: `(…, in_dim)`; returns `(…, out_dim)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_plus(x, None)
    }

    /// `forward(x) + residual`, the addition fused with the bias's (a transformer block's skip
    /// connection around its output projection).
    ///
    /// # Shapes
    /// `x`: `(…, in_dim)`, `residual`: `(…, out_dim)`; returns `(…, out_dim)`.
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.forward_plus(x, Some(residual))
    }

    fn forward_plus(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let dims = x.dims();
        let (lead, c) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let x = x.reshape((rows, c[0]))?;
        let out_dim = self.0.weight().dim(0)?;
        let residual = residual.map(|r| r.reshape((rows, out_dim))).transpose()?;
        let y = match linear_inference(&x, self.0.weight(), self.0.bias(), residual.as_ref())? {
            Some(y) => y,
            None => {
                let y = x.matmul(&self.0.weight().t()?)?;
                match (self.0.bias(), &residual) {
                    (Some(b), _) => add_bias_to_fresh(y, b, residual.as_ref())?,
                    (None, Some(r)) => (y + r)?,
                    (None, None) => y,
                }
            }
        };
        let mut out = lead.to_vec();
        out.push(out_dim);
        y.reshape(out)
    }
}
