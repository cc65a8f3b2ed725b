//! GEGLU, `a · GELU(g)` for `[a, g]` the two halves of the last axis (Shazeer 2020, "GLU
//! Variants Improve Transformer", eq. 6; diffusers `GEGLU`), GELU the exact one on the error
//! function (Hendrycks & Gimpel 2016): `GELU(x) = x·Φ(x) = x/2·(1 + erf(x/√2))`.
//!
//! As candle ops this is a `narrow` of each half, candle's scalar `erf` on every value of the
//! gate, and a strided multiplication, all on the calling thread: in a Stable Diffusion U-Net
//! call the gates of the transformer blocks' feed-forward layers hold some 10⁸ values. This op
//! is one parallel pass over the rows with a vectorisable `erf`. Its backward pass is written
//! with candle ops (training runs small networks): `da = dy·GELU(g)`,
//! `dg = dy·a·(Φ(g) + g·φ(g))` with `φ` the standard normal density.

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::dispatch;
use super::simd::{self, Float};

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 16;

/// `a · GELU(g)` with `[a, g]` split in the middle of the last axis of `h`.
///
/// # Shapes
/// `h`: `(…, 2·D)`; returns `(…, D)`.
///
/// On CPU in f32/f64 [`Geglu`], otherwise the same formula with candle ops.
pub fn geglu(h: &Tensor) -> Result<Tensor> {
    let last = h.rank().checked_sub(1).ok_or_else(|| candle_core::Error::Msg("geglu: a scalar has no last axis".into()))?;
    let width = h.dim(last)?;
    if width % 2 != 0 {
        bail!("geglu: the last axis ({width}) must hold two halves of equal width")
    }
    if !(h.device().is_cpu() && matches!(h.dtype(), DType::F32 | DType::F64)) {
        return geglu_candle(h);
    }
    h.contiguous()?.apply_op1(Geglu)
}

/// The reference composition of candle ops.
fn geglu_candle(h: &Tensor) -> Result<Tensor> {
    let last = h.rank() - 1;
    let inner = h.dim(last)? / 2;
    let (a, g) = (h.narrow(last, 0, inner)?, h.narrow(last, inner, inner)?);
    a * g.gelu_erf()?
}

/// Forward op `h (…, 2D) -> a·GELU(g) (…, D)`.
#[derive(Debug, Clone, Copy)]
pub struct Geglu;

impl CustomOp1 for Geglu {
    fn name(&self) -> &'static str {
        "stipple-geglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        let mut dims = l.shape().dims().to_vec();
        let Some(width) = dims.last_mut() else { bail!("{op}: a scalar has no last axis") };
        if *width % 2 != 0 {
            bail!("{op}: the last axis ({width}) must hold two halves of equal width")
        }
        *width /= 2;
        let inner = *width;
        let out = dispatch([(s, l)], op, |[h]| forward(h, inner), |[h]| forward(h, inner))?;
        Ok((out, Shape::from(dims)))
    }

    fn bwd(&self, h: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let last = h.rank() - 1;
        let inner = h.dim(last)? / 2;
        let (a, g) = (h.narrow(last, 0, inner)?, h.narrow(last, inner, inner)?);
        let da = (dy * g.gelu_erf()?)?;
        // Φ(g) + g·φ(g), φ(x) = exp(−x²/2)/√(2π).
        let cdf = ((g.affine(std::f64::consts::FRAC_1_SQRT_2, 0.0)?.erf()? + 1.0)? * 0.5)?;
        let pdf = (g.sqr()?.affine(-0.5, 0.0)?.exp()? * (0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2))?;
        let dg = ((dy * a)? * (cdf + (g * pdf)?)?)?;
        Ok(Some(Tensor::cat(&[da, dg], last)?))
    }
}

fn forward<T: Float>(h: &[T], inner: usize) -> Vec<T> {
    if inner == 0 {
        return vec![T::zero(); h.len() / 2];
    }
    // Written in full row by row, so never zeroed first.
    let mut out = uninit(h.len() / 2);
    out.par_chunks_mut(ROWS_PER_TASK * inner).zip(h.par_chunks(ROWS_PER_TASK * 2 * inner)).for_each(|(o, h)| {
        simd::dispatch(GegluRows { h, out: o, inner });
    });
    // SAFETY: the row chunks cover `out` and every value of each was written.
    unsafe { assume_init(out) }
}

/// `out = a·GELU(g)` for rows `h = [a, g]` of `2·inner` values.
struct GegluRows<'a, T> {
    h: &'a [T],
    out: &'a mut [MaybeUninit<T>],
    inner: usize,
}

impl<T: Float> pulp::WithSimd for GegluRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (o, h) in self.out.chunks_exact_mut(self.inner).zip(self.h.chunks_exact(2 * self.inner)) {
            let (a, g) = h.split_at(self.inner);
            for ((o, &a), &g) in o.iter_mut().zip(a).zip(g) {
                o.write(a * g * T::from_f64(0.5) * (T::one() + (g * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf()));
            }
        }
    }
}
