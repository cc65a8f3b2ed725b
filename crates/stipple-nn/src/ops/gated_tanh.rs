//! WaveNet's gated activation unit `tanh(f) ⊙ σ(g)` (van den Oord et al. 2016, *WaveNet: A
//! Generative Model for Raw Audio*, eq. 2) on the two halves of a convolution's channels, as
//! DiffWave applies it (lmnt-com/diffwave `ResidualBlock.forward`: `gate, filter =
//! torch.chunk(y, 2, dim=1); y = torch.sigmoid(gate) * torch.tanh(filter)`).
//!
//! As candle ops this is two `narrow`s, a sigmoid, a tanh (scalar libm calls) and a product,
//! and a backward pass of as many ops whose `narrow` gradients each pad a zero tensor of the
//! input's size: in a DiffWave training step these element-wise passes took longer than the
//! convolutions. [`GatedTanh`] is one parallel, vectorised pass each way, with
//! `σ(g) = 1/(1 + e^(−g))`, `tanh(f) = 2σ(2f) − 1` and the gradients
//! `∂/∂g = dz·tanh(f)·σ(g)(1 − σ(g))`, `∂/∂f = dz·σ(g)(1 − tanh²(f))`.

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::dispatch;
use super::simd::{self, Float};

/// `σ(g) ⊙ tanh(f)` for `[g, f]` the two halves of axis 1 of `y`, the gate first.
///
/// # Shapes
/// `y`: `(B, 2C, L)`; returns `(B, C, L)`.
///
/// On CPU in f32/f64 [`GatedTanh`], otherwise the same formula with candle ops.
pub fn gated_tanh(y: &Tensor) -> Result<Tensor> {
    let (_, c2, _) = y.dims3()?;
    if c2 % 2 != 0 {
        bail!("gated_tanh: axis 1 ({c2}) must hold two halves of equal width")
    }
    if !(y.device().is_cpu() && matches!(y.dtype(), DType::F32 | DType::F64)) {
        let c = c2 / 2;
        return candle_nn::ops::sigmoid(&y.narrow(1, 0, c)?)? * y.narrow(1, c, c)?.tanh()?;
    }
    y.contiguous()?.apply_op1(GatedTanh)
}

/// Forward op `y (B, 2C, L) -> σ(g)·tanh(f) (B, C, L)`.
#[derive(Debug, Clone, Copy)]
pub struct GatedTanh;

/// Its gradient: `(y, dz) -> dy (B, 2C, L)`.
#[derive(Debug, Clone, Copy)]
pub struct GatedTanhBackward;

impl CustomOp1 for GatedTanh {
    fn name(&self) -> &'static str {
        "stipple-gated-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c2, len) = l.shape().dims3()?;
        if c2 % 2 != 0 {
            bail!("gated_tanh: axis 1 ({c2}) must hold two halves of equal width")
        }
        let half = c2 / 2 * len;
        let out = dispatch([(s, l)], self.name(), |[y]| forward(y, half), |[y]| forward(y, half))?;
        Ok((out, Shape::from((b, c2 / 2, len))))
    }

    fn bwd(&self, y: &Tensor, _res: &Tensor, dz: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dz.contiguous()?, &GatedTanhBackward)?))
    }
}

impl CustomOp2 for GatedTanhBackward {
    fn name(&self) -> &'static str {
        "stipple-gated-tanh-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c2, len) = l1.shape().dims3()?;
        if l2.shape().dims() != [b, c2 / 2, len] || c2 % 2 != 0 {
            bail!("gated_tanh backward: gradient {:?} does not fit input {:?}", l2.shape().dims(), l1.shape().dims())
        }
        let half = c2 / 2 * len;
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[y, dz]| backward(y, dz, half), |[y, dz]| backward(y, dz, half))?;
        Ok((out, l1.shape().clone()))
    }
}

/// Values per rayon task.
const TASK: usize = 16 * 1024;

/// `σ(x)`, vectorisable.
#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (T::zero() - x).exp())
}

/// `tanh(x) = 2σ(2x) − 1`, vectorisable.
#[inline(always)]
fn tanh<T: Float>(x: T) -> T {
    let two = T::one() + T::one();
    two * sigmoid(two * x) - T::one()
}

/// Per sample, `y_b = [g (half) | f (half)]` → `z_b (half)`.
fn forward<T: Float>(y: &[T], half: usize) -> Vec<T> {
    let mut z = uninit(y.len() / 2);
    if half > 0 {
        z.par_chunks_mut(half).zip(y.par_chunks(2 * half)).for_each(|(z_b, y_b)| {
            let (g, f) = y_b.split_at(half);
            z_b.par_chunks_mut(TASK).zip(g.par_chunks(TASK).zip(f.par_chunks(TASK))).for_each(|(z, (g, f))| {
                simd::dispatch(Forward { g, f, z });
            });
        });
    }
    // SAFETY: the kernels wrote every value.
    unsafe { assume_init(z) }
}

/// Per sample, `dy_b = [dg | df]` from `y_b = [g | f]` and `dz_b`.
fn backward<T: Float>(y: &[T], dz: &[T], half: usize) -> Vec<T> {
    let mut dy = uninit(y.len());
    if half > 0 {
        dy.par_chunks_mut(2 * half).zip(y.par_chunks(2 * half).zip(dz.par_chunks(half))).for_each(|(dy_b, (y_b, dz_b))| {
            let (g, f) = y_b.split_at(half);
            let (dg, df) = dy_b.split_at_mut(half);
            let grads = dg.par_chunks_mut(TASK).zip(df.par_chunks_mut(TASK));
            grads.zip(g.par_chunks(TASK).zip(f.par_chunks(TASK))).zip(dz_b.par_chunks(TASK)).for_each(|(((dg, df), (g, f)), dz)| {
                simd::dispatch(Backward { g, f, dz, dg, df });
            });
        });
    }
    // SAFETY: the kernels wrote every value.
    unsafe { assume_init(dy) }
}

struct Forward<'a, T> {
    g: &'a [T],
    f: &'a [T],
    z: &'a mut [MaybeUninit<T>],
}

impl<T: Float> pulp::WithSimd for Forward<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for ((z, &g), &f) in self.z.iter_mut().zip(self.g).zip(self.f) {
            *z = MaybeUninit::new(sigmoid(g) * tanh(f));
        }
    }
}

struct Backward<'a, T> {
    g: &'a [T],
    f: &'a [T],
    dz: &'a [T],
    dg: &'a mut [MaybeUninit<T>],
    df: &'a mut [MaybeUninit<T>],
}

impl<T: Float> pulp::WithSimd for Backward<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let values = self.g.iter().zip(self.f).zip(self.dz);
        for ((dg, df), ((&g, &f), &dz)) in self.dg.iter_mut().zip(self.df.iter_mut()).zip(values) {
            let (s, t) = (sigmoid(g), tanh(f));
            *dg = MaybeUninit::new(dz * t * s * (T::one() - s));
            *df = MaybeUninit::new(dz * s * (T::one() - t * t));
        }
    }
}
