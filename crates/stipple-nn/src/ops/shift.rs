//! `x + s`, a shift per sample and channel broadcast along a sequence (DiffWave's
//! diffusion-step projection added to every position of a residual layer's input).
//!
//! candle's broadcast addition runs on the calling thread and its gradient for `s` is a
//! generic strided sum; [`add_shift`] is one parallel pass forward, and backward passes `dy`
//! through for `x` and takes the per-row sums for `s` (the 2-D convolution's bias gradient).

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::conv2d::Conv2dBiasGrad;
use super::dispatch;

/// `x[b, c, l] + s[b, c]`.
///
/// # Shapes
/// - `x`: `(B, C, L)`, `s`: `(B, C)`
/// - returns `(B, C, L)`
///
/// On CPU in f32/f64 [`AddShift`], otherwise a broadcast addition.
pub fn add_shift(x: &Tensor, s: &Tensor) -> Result<Tensor> {
    let (b, c, _) = x.dims3()?;
    if s.dims() != [b, c] {
        bail!("add_shift: shift has shape {:?}, expected ({b}, {c})", s.dims())
    }
    if !(x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && s.dtype() == x.dtype() && s.device().is_cpu()) {
        return x.broadcast_add(&s.unsqueeze(2)?);
    }
    x.contiguous()?.apply_op2(&s.contiguous()?, AddShift)
}

/// Forward op `(x, s) -> x + s`, see [`add_shift`].
#[derive(Debug, Clone, Copy)]
pub struct AddShift;

impl CustomOp2 for AddShift {
    fn name(&self) -> &'static str {
        "stipple-add-shift"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, len) = l1.shape().dims3()?;
        if l2.shape().dims() != [b, c] {
            bail!("add_shift: shift has shape {:?}, expected ({b}, {c})", l2.shape().dims())
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[x, s]| forward(x, s, len), |[x, s]| forward(x, s, len))?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, s: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ds = match s.track_op() {
            true => {
                let (b, c, len) = dy.dims3()?;
                Some(dy.contiguous()?.reshape((b, c, len, 1))?.apply_op1_no_bwd(&Conv2dBiasGrad)?)
            }
            false => None,
        };
        Ok((Some(dy.clone()), ds))
    }
}

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 4;

fn forward<T: WithDType>(x: &[T], s: &[T], len: usize) -> Vec<T> {
    let mut out = uninit(x.len());
    if len > 0 {
        let rows = out.par_chunks_mut(ROWS_PER_TASK * len).zip(x.par_chunks(ROWS_PER_TASK * len)).zip(s.par_chunks(ROWS_PER_TASK));
        rows.for_each(|((o, x), s)| {
            for ((o, x), &s) in o.chunks_exact_mut(len).zip(x.chunks_exact(len)).zip(s) {
                for (o, &x) in o.iter_mut().zip(x) {
                    *o = MaybeUninit::new(x + s);
                }
            }
        });
    }
    // SAFETY: every row was written above.
    unsafe { assume_init(out) }
}
