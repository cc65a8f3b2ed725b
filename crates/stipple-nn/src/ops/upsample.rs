//! Nearest-neighbour upsampling by an integer factor as a candle custom op with its own
//! backward pass: `y[b, c, s·i + u, s·j + v] = x[b, c, i, j]` for `0 ≤ u, v < s`, and
//! `dx[b, c, i, j] = Σ_{u,v} dy[b, c, s·i + u, s·j + v]`.
//!
//! candle's `upsample_nearest2d` runs on the calling thread, and its backward is a grouped
//! convolution with a kernel of ones (candle's direct convolution loop); here both directions
//! are one pass with the `(sample, channel)` planes spread over rayon's threads.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::{cpu_kernel_applies, dispatch};

/// `x (B, C, H, W)` upsampled to `(B, C, s·H, s·W)` by repeating each value in an `s × s`
/// block; on CPU with f32/f64 [`UpsampleNearest`], otherwise candle's `upsample_nearest2d`.
pub fn upsample_nearest(x: &Tensor, scale: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if scale == 0 {
        bail!("upsample_nearest: the scale must be at least 1")
    }
    if !cpu_kernel_applies(&[x]) {
        return x.upsample_nearest2d(scale * h, scale * w);
    }
    x.contiguous()?.apply_op1(UpsampleNearest { scale })
}

/// Forward op: `x -> y`.
#[derive(Debug, Clone, Copy)]
pub struct UpsampleNearest {
    pub scale: usize,
}

/// Backward op: `dy (B, C, s·H, s·W) -> dx (B, C, H, W)`, the sums over the `s × s` blocks.
#[derive(Debug, Clone, Copy)]
pub struct UpsampleNearestBackward {
    pub scale: usize,
}


impl CustomOp1 for UpsampleNearest {
    fn name(&self) -> &'static str {
        "stipple-upsample-nearest"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let s = self.scale;
        let op = self.name();
        let out = dispatch([(st, l)], op, |[x]| forward(x, h, w, s), |[x]| forward(x, h, w, s))?;
        Ok((out, Shape::from((b, c, s * h, s * w))))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&UpsampleNearestBackward { scale: self.scale })?))
    }
}

impl CustomOp1 for UpsampleNearestBackward {
    fn name(&self) -> &'static str {
        "stipple-upsample-nearest-backward"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, sh, sw) = l.shape().dims4()?;
        let s = self.scale;
        let op = self.name();
        if s == 0 || sh % s != 0 || sw % s != 0 {
            bail!("{op}: gradient {:?} is not a multiple of the scale {s}", l.shape().dims())
        }
        let (h, w) = (sh / s, sw / s);
        let out = dispatch([(st, l)], op, |[x]| backward(x, h, w, s), |[x]| backward(x, h, w, s))?;
        Ok((out, Shape::from((b, c, h, w))))
    }
}

fn forward<T: WithDType>(x: &[T], h: usize, w: usize, s: usize) -> Vec<T> {
    let (plane, big) = (h * w, h * w * s * s);
    if plane == 0 {
        return vec![T::zero(); x.len() * s * s];
    }
    // Written in full row by row, so never zeroed first.
    let mut y = uninit(x.len() * s * s);
    y.par_chunks_mut(big).zip(x.par_chunks(plane)).for_each(|(yp, xp)| {
        for (i, xrow) in xp.chunks_exact(w).enumerate() {
            // Row i of x, each value s times, written s times.
            for copy in yp[i * s * s * w..][..s * s * w].chunks_exact_mut(s * w) {
                for (block, &v) in copy.chunks_exact_mut(s).zip(xrow) {
                    for d in block {
                        d.write(v);
                    }
                }
            }
        }
    });
    // SAFETY: each plane's rows of s·w values, s per row of x, were all written.
    unsafe { assume_init(y) }
}

fn backward<T: WithDType>(dy: &[T], h: usize, w: usize, s: usize) -> Vec<T> {
    let (plane, big) = (h * w, h * w * s * s);
    let mut dx = vec![T::zero(); dy.len() / (s * s)];
    if plane == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane).zip(dy.par_chunks(big)).for_each(|(xp, yp)| {
        for (i, xrow) in xp.chunks_exact_mut(w).enumerate() {
            for yrow in yp[i * s * s * w..][..s * s * w].chunks_exact(s * w) {
                for (d, block) in xrow.iter_mut().zip(yrow.chunks_exact(s)) {
                    *d += block.iter().fold(T::zero(), |a, &v| a + v);
                }
            }
        }
    });
    dx
}
