//! The change between a feature map's `(B, C, N)` layout and a transformer's tokens `(B, N, C)`,
//! as custom ops: [`transpose_last`] (into tokens), and [`transpose_last_add`], which leaves the
//! tokens and adds the block's residual in the same pass (diffusers' `Transformer2DModel` and
//! `Attention` blocks end with `reshape(proj_out(t)) + x`).
//!
//! candle's copy of a transposed view runs element by element on the calling thread; here the
//! matrices are transposed in 32 × 32 tiles (each read and written a cache line at a time,
//! the classic blocked transpose) with the tiles spread over rayon's threads. Both backward
//! passes are a transpose of the gradient (and, for the residual, the gradient itself).

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::{cpu_kernel_applies, dispatch};

/// Tile side of the blocked transpose.
const TILE: usize = 32;

/// `x (B, R, S) → (B, S, R)`, contiguous.
///
/// On CPU in f32/f64 [`TransposeLast`]; elsewhere candle's `transpose(1, 2)?.contiguous()`.
pub fn transpose_last(x: &Tensor) -> Result<Tensor> {
    x.dims3()?;
    if !cpu_kernel_applies(&[x]) {
        return x.transpose(1, 2)?.contiguous();
    }
    x.contiguous()?.apply_op1(TransposeLast)
}

/// `t (B, S, R)` transposed to `(B, R, S)`, plus `x (B, R, S)`: `y[b, r, s] = t[b, s, r] +
/// x[b, r, s]`.
///
/// On CPU in f32/f64 [`TransposeLastAdd`]; elsewhere the composition of candle ops.
pub fn transpose_last_add(t: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (b, s, r) = t.dims3()?;
    if x.dims() != [b, r, s] {
        bail!("transpose_last_add: t {:?} transposed does not fit x {:?}", t.dims(), x.dims())
    }
    if !cpu_kernel_applies(&[t, x]) {
        return t.transpose(1, 2)? + x;
    }
    t.contiguous()?.apply_op2(&x.contiguous()?, TransposeLastAdd)
}

/// Forward op of [`transpose_last`].
#[derive(Debug, Clone, Copy)]
pub struct TransposeLast;

/// Forward op of [`transpose_last_add`]: `(t, x) → tᵀ + x`.
#[derive(Debug, Clone, Copy)]
pub struct TransposeLastAdd;

impl CustomOp1 for TransposeLast {
    fn name(&self) -> &'static str {
        "stipple-transpose-last"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, r, s) = l.shape().dims3()?;
        let out = dispatch([(st, l)], self.name(), |[x]| transpose(x, None, b, r, s), |[x]| transpose(x, None, b, r, s))?;
        Ok((out, Shape::from((b, s, r))))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(transpose_last(dy)?))
    }
}

impl CustomOp2 for TransposeLastAdd {
    fn name(&self) -> &'static str {
        "stipple-transpose-last-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, s, r) = l1.shape().dims3()?;
        if l2.shape().dims() != [b, r, s] {
            bail!("{}: t {:?} transposed does not fit x {:?}", self.name(), l1.shape().dims(), l2.shape().dims())
        }
        let f32s = |[t, x]: [&[f32]; 2]| transpose(t, Some(x), b, s, r);
        let f64s = |[t, x]: [&[f64]; 2]| transpose(t, Some(x), b, s, r);
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), f32s, f64s)?;
        Ok((out, l2.shape().clone()))
    }

    fn bwd(&self, _t: &Tensor, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(transpose_last(dy)?), Some(dy.clone())))
    }
}

/// `out[b, j, i] = src[b, i, j] (+ add[b, j, i])` for `src (B, R, S)`; one rayon task per tile
/// row of the output (`TILE` output rows of one sample).
fn transpose<T: WithDType>(src: &[T], add: Option<&[T]>, b: usize, r: usize, s: usize) -> Vec<T> {
    let plane = r * s;
    let mut out = uninit(b * plane);
    if plane == 0 {
        // SAFETY: empty.
        return unsafe { assume_init(out) };
    }
    out.par_chunks_mut(plane).enumerate().for_each(|(bi, out_b)| {
        let src_b = &src[bi * plane..][..plane];
        let add_b = add.map(|a| &a[bi * plane..][..plane]);
        out_b.par_chunks_mut(TILE * r).enumerate().for_each(|(tj, rows)| {
            let j0 = tj * TILE;
            let nj = rows.len() / r;
            for i0 in (0..r).step_by(TILE) {
                let ni = TILE.min(r - i0);
                for dj in 0..nj {
                    let row = &mut rows[dj * r + i0..][..ni];
                    let j = j0 + dj;
                    match add_b {
                        Some(a) => {
                            let a = &a[j * r + i0..][..ni];
                            for (di, (o, &av)) in row.iter_mut().zip(a).enumerate() {
                                *o = MaybeUninit::new(src_b[(i0 + di) * s + j] + av);
                            }
                        }
                        None => {
                            for (di, o) in row.iter_mut().enumerate() {
                                *o = MaybeUninit::new(src_b[(i0 + di) * s + j]);
                            }
                        }
                    }
                }
            }
        });
    });
    // SAFETY: each output row j of each sample was written for every i (tiles of i cover 0..r).
    unsafe { assume_init(out) }
}
