//! 1-D convolution (cross-correlation, like candle's and PyTorch's `conv1d`) with stride,
//! zero padding and dilation, as a candle custom op with its own backward pass.
//!
//! candle's CPU `conv1d` is im2col plus a matmul in the forward pass, and its gradients go
//! through `conv_transpose1d` and a convolution with sequence-long kernels, both direct loops.
//! Here every pass is a sum of GEMMs over strided views of the operands, one per kernel tap
//! (the private `kernels` module: no im2col matrix, nothing copied, also for dilated kernels
//! such as DiffWave's), spread over candle's threads in chunks of positions.
//!
//! [`conv1d_add`] adds the convolution onto a tensor of the output's shape in the same pass
//! (a residual or skip connection: no separate addition over the output, nor a copy of its
//! gradient).
//!
//! The bias is per output channel `(O)` or per sample and channel `(B, O)` (as for
//! [`super::conv2d`]); its gradient is that of the 2-D op.
//!
//! Only f32 and f64 on the CPU with one group have kernels here; [`conv1d`] hands everything
//! else to candle's own `Tensor::conv1d`.
//!
//! The module by purpose: `op` (the custom ops and their backward pass), `geometry` (sizes,
//! which outputs each tap reaches, the cut into tasks), `kernels` (the passes).

use candle_core::{bail, Result, Tensor};
use candle_nn::Conv1dConfig;

use super::cpu_kernel_applies;

mod geometry;
mod kernels;
mod op;

pub use op::{Conv1dAddOp, Conv1dBackwardInput, Conv1dBackwardWeight, Conv1dOp};

/// `conv1d(x, w) + bias` with `cfg`'s stride, zero padding, dilation and groups.
///
/// # Shapes
/// - `x`: `(B, C, L)`
/// - `w`: `(O, C / groups, K)`
/// - `bias`: `(O)` (per channel) or `(B, O)` (per sample and channel), or none
/// - returns `(B, O, (L + 2p − d·(K − 1) − 1)/s + 1)`
///
/// On CPU with f32/f64 and one group this is [`Conv1dOp`] (differentiable through its
/// backward); anywhere else `x.conv1d(w, p, s, d, groups)` plus a broadcast addition of the
/// bias.
pub fn conv1d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, cfg: &Conv1dConfig) -> Result<Tensor> {
    let (b, o) = (x.dim(0)?, w.dim(0)?);
    if let Some(t) = bias.filter(|t| t.dims() != [o] && t.dims() != [b, o]) {
        bail!("conv1d: bias has shape {:?}, expected ({o}) or ({b}, {o})", t.dims())
    }
    let Conv1dConfig { padding, stride, dilation, groups, .. } = *cfg;
    if groups != 1 || !cpu_kernel_applies(&[x, w]) {
        // Contiguous: candle 0.11's CPU conv1d ignores the strides of a non-contiguous kernel.
        let y = x.conv1d_with_algo(&w.contiguous()?, padding, stride, dilation, groups, cfg.cudnn_fwd_algo)?;
        return match bias {
            None => Ok(y),
            Some(t) if t.rank() == 1 => y.broadcast_add(&t.reshape((1, o, 1))?),
            Some(t) => y.broadcast_add(&t.reshape((b, o, 1))?),
        };
    }
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let bias = match bias {
        Some(t) => t.contiguous()?,
        None => Tensor::zeros(o, x.dtype(), x.device())?,
    };
    x.apply_op3(&w, &bias, Conv1dOp { stride, padding, dilation })
}

/// `conv1d(x, w) + bias + addend` in one pass, the convolution as [`conv1d`] with one group.
///
/// # Shapes
/// - `x`: `(B, C, L)`, `w`: `(O, C, K)`, `bias`: `(O)` or none
/// - `addend` and the result: `(B, O, Lo)`, `Lo` as for [`conv1d`]
pub fn conv1d_add(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, addend: &Tensor, cfg: &Conv1dConfig) -> Result<Tensor> {
    let (o, c, k) = w.dims3()?;
    if let Some(t) = bias.filter(|t| t.dims() != [o]) {
        bail!("conv1d_add: bias has shape {:?}, expected ({o})", t.dims())
    }
    if cfg.groups != 1 {
        bail!("conv1d_add: one group only (got {})", cfg.groups)
    }
    if !cpu_kernel_applies(&[x, w, addend]) {
        return conv1d(x, w, bias, cfg)? + addend;
    }
    let bias = match bias {
        Some(t) => t.clone(),
        None => Tensor::zeros(o, x.dtype(), x.device())?,
    };
    let wb = Tensor::cat(&[w.flatten_all()?, bias], 0)?;
    let op = Conv1dAddOp { stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation, weight: (o, c, k) };
    x.contiguous()?.apply_op3(&wb, &addend.contiguous()?, op)
}
