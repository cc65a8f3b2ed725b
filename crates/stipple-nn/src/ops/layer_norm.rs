//! Layer normalisation over the last axis (Ba et al. 2016, Eq. 4) as one parallel pass per
//! row: `y = (x − mean) / √(var + ε) · γ + β`, biased variance (PyTorch `nn.LayerNorm`), mean
//! and variance in two passes (no cancellation in `E[x²] − mean²`).
//!
//! [`crate::LayerNorm`] written with candle ops is some eight element-wise ops and reductions,
//! each a pass over the tensor on the calling thread; in a Stable Diffusion U-Net call the
//! transformer blocks normalise some 7·10⁷ values. This op has no backward pass: the layer
//! takes it only when nothing is tracked for autograd (inference), and the candle ops otherwise.

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::dispatch;
use super::simd::{self, Float};

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 32;

/// Whether [`layer_norm`] runs on these operands (CPU, f32 or f64, one dtype).
pub fn fused(x: &Tensor, weight: &Tensor, bias: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && weight.dtype() == x.dtype() && bias.dtype() == x.dtype()
}

/// `(x − mean)/√(var + eps) · weight + bias` over the last axis of `x`, without autograd.
///
/// # Shapes
/// `x`: `(…, D)`; `weight`, `bias`: `(D,)`; returns the shape of `x`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !fused(x, weight, bias) {
        bail!("layer_norm: the fused op runs on the CPU in f32 or f64 only (got {:?} on {:?})", x.dtype(), x.device())
    }
    x.contiguous()?.apply_op3_no_bwd(&weight.contiguous()?, &bias.contiguous()?, &LayerNormOp { eps })
}

/// Forward op `(x, γ, β) -> y`.
#[derive(Debug, Clone, Copy)]
pub struct LayerNormOp {
    pub eps: f64,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "stipple-layer-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        let d = l1.shape().dims().last().copied().unwrap_or(0);
        if l2.shape().dims() != [d] || l3.shape().dims() != [d] {
            bail!("{op}: weight {:?} and bias {:?} must be ({d},)", l2.shape().dims(), l3.shape().dims())
        }
        let eps = self.eps;
        let out = dispatch([(s1, l1), (s2, l2), (s3, l3)], op, |[x, w, b]| forward(x, w, b, eps), |[x, w, b]| forward(x, w, b, eps))?;
        Ok((out, l1.shape().clone()))
    }
}

fn forward<T: Float>(x: &[T], w: &[T], b: &[T], eps: f64) -> Vec<T> {
    let d = w.len();
    let mut out = vec![T::zero(); x.len()];
    if d == 0 {
        return out;
    }
    out.par_chunks_mut(ROWS_PER_TASK * d).zip(x.par_chunks(ROWS_PER_TASK * d)).for_each(|(y, x)| {
        simd::dispatch(NormRows { x, y, w, b, eps });
    });
    out
}

/// Rows of `w.len()` values of `x` normalised into `y`.
struct NormRows<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    w: &'a [T],
    b: &'a [T],
    eps: f64,
}

impl<T: Float> pulp::WithSimd for NormRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let d = self.w.len();
        let n = T::from_f64(d as f64);
        for (y, x) in self.y.chunks_exact_mut(d).zip(self.x.chunks_exact(d)) {
            let mean = simd::sum(x, |v| v) / n;
            let var = simd::sum(x, |v| (v - mean) * (v - mean)) / n;
            let inv = T::from_f64(1.0 / (var.to_f64() + self.eps).sqrt());
            for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(self.w).zip(self.b) {
                *y = (x - mean) * inv * w + b;
            }
        }
    }
}
