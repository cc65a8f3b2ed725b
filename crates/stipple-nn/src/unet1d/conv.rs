//! A 1-D convolution written with candle ops whose gradients are right: the input's windows
//! gathered into columns (im2col, Chellapilla et al. 2006) and one matrix product.
//!
//! candle 0.11's `conv1d` computes a wrong kernel gradient (seen with the finite-difference
//! check of `tests/gradcheck.rs`: off by factors of 3 to 4 for a padded k = 3 kernel), so
//! training cannot use it. This layer has the same constructor and `Module::forward` as
//! `candle_nn::Conv1d`, so a faster layer with a correct backward can take its place.

use candle_core::{Module, Result, Tensor};
use candle_nn::Conv1dConfig;

/// `y[b, o, i] = bias[o] + Σ_{c, j} w[o, c, j] · x_pad[b, c, i·stride + j·dilation]`.
#[derive(Debug, Clone)]
pub struct Im2colConv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv1dConfig,
}

impl Im2colConv1d {
    /// `weight`: `(C_out, C_in, k)`; `bias`: `(C_out)`. Only `groups = 1` is supported
    /// (checked at `forward`).
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: Conv1dConfig) -> Self {
        Self { weight, bias, config }
    }
}

impl Module for Im2colConv1d {
    /// # Shapes
    /// `x`: `(B, C_in, L)` → `(B, C_out, (L + 2·padding − dilation·(k − 1) − 1) / stride + 1)`
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Conv1dConfig { padding: p, stride: s, dilation: d, groups, .. } = self.config;
        let (b, cin, l) = x.dims3()?;
        let (cout, cin_w, k) = self.weight.dims3()?;
        if groups != 1 || cin != cin_w || s == 0 || d == 0 {
            candle_core::bail!("conv1d: input {:?} does not fit weight {:?} (groups {groups}, stride {s}, dilation {d})", x.dims(), self.weight.dims());
        }
        let span = d * (k - 1) + 1;
        if l + 2 * p < span {
            candle_core::bail!("conv1d: input length {l} (padding {p}) is shorter than the kernel's span {span}");
        }
        let lout = (l + 2 * p - span) / s + 1;
        let xp = if p > 0 { x.pad_with_zeros(2, p, p)? } else { x.clone() };
        // Column (c, j) at output i reads x_pad[c, i·s + j·d]: gathered as (B, C_in, k·L_out).
        let idx: Vec<u32> = (0..k).flat_map(|j| (0..lout).map(move |i| (i * s + j * d) as u32)).collect();
        let idx = Tensor::from_vec(idx, k * lout, x.device())?;
        let cols = xp.index_select(&idx, 2)?.reshape((b, cin * k, lout))?.transpose(1, 2)?.contiguous()?.reshape((b * lout, cin * k))?;
        let w = self.weight.reshape((cout, cin * k))?.t()?;
        let y = cols.matmul(&w)?.reshape((b, lout, cout))?.transpose(1, 2)?.contiguous()?;
        match &self.bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, cout, 1))?),
            None => Ok(y),
        }
    }
}
