//! `x Wᵀ [+ b] [+ residual]` at inference as one GEMM into a buffer that already holds the
//! additions.
//!
//! candle's matmul zeroes its output before the product, and the bias (and a transformer
//! block's residual) is then added in another pass over it. Without gradients,
//! [`linear_inference`] starts the output from what is added (`b` broadcast over the rows,
//! or `residual + b`), and the GEMM accumulates the product onto it ([`AccumulateProduct`]);
//! without either, the GEMM writes a fresh, unzeroed output ([`Product`]).

use candle_core::{bail, CpuStorage, CustomOp2, InplaceOp3, Layout, Result, Shape, Tensor, WithDType};
use gemm::Parallelism;

use super::conv2d::elem::{assume_init, uninit};
use super::matmul::{matmul, Mat};
use super::{cpu_kernel_applies, data, dispatch};

/// `x (R, C) · wᵀ [+ b] [+ residual]` with `w (O, C)`, `b (O)` and `residual (R, O)`, when
/// no operand tracks gradients and all are f32 or f64 on the CPU; `None` otherwise (the caller
/// then uses candle's matmul and [`super::add_bias_to_fresh`]). Products in a different order
/// from theirs: equal within rounding, not bit for bit.
pub fn linear_inference(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, residual: Option<&Tensor>) -> Result<Option<Tensor>> {
    let mut operands = vec![x, w];
    operands.extend(bias);
    operands.extend(residual);
    if operands.iter().any(|t| t.track_op()) || !cpu_kernel_applies(&operands) {
        return Ok(None);
    }
    let (r, c) = x.dims2()?;
    let (o, cw) = w.dims2()?;
    if cw != c || bias.is_some_and(|b| b.dims() != [o]) || residual.is_some_and(|res| res.dims() != [r, o]) {
        bail!("linear: x {:?}, weight {:?}, bias {:?} and residual {:?} do not fit", x.dims(), w.dims(), bias.map(|b| b.dims()), residual.map(|res| res.dims()))
    }
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    // A fresh tensor, held by no one else, for the product to accumulate onto.
    let start = match (bias, residual) {
        (None, None) => return x.apply_op2_no_bwd(&w, &Product).map(Some),
        (Some(b), None) => b.reshape((1, o))?.broadcast_as((r, o))?.contiguous()?,
        (None, Some(res)) => res.copy()?,
        (Some(b), Some(res)) => res.broadcast_add(b)?,
    };
    start.inplace_op3(&x, &w, &AccumulateProduct)?;
    Ok(Some(start))
}

/// `(x, w) -> x · wᵀ` (no backward pass).
#[derive(Debug, Clone, Copy)]
pub struct Product;

/// In place on `y (R, O)`: `y += x (R, C) · wᵀ` with `w (O, C)` (no backward pass).
#[derive(Debug, Clone, Copy)]
pub struct AccumulateProduct;

/// `dst (R, O) [+]= x (R, C) · wᵀ`, over rayon's threads.
///
/// # Safety
/// `dst` must hold `R·O` values, initialised when `accumulate`.
unsafe fn product<T: WithDType>(dst: *mut T, x: &[T], w: &[T], (r, c, o): (usize, usize, usize), accumulate: bool) {
    assert!(x.len() == r * c && w.len() == o * c);
    let threads = rayon::current_num_threads();
    let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: x is (R, C) and w (O, C), read as wᵀ (C, O); dst (R, O) as the caller promises.
    unsafe { matmul(r, o, c, dst, o, accumulate, Mat::rows(x, c), Mat::transposed(w, c), T::one(), T::one(), par) }
}

/// The sizes `(R, C, O)` of a product of `x (R, C)` and `w (O, C)`.
fn sizes(op: &str, x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (r, c) = x.shape().dims2()?;
    let (o, cw) = w.shape().dims2()?;
    if cw != c {
        bail!("{op}: x {:?} and weight {:?} do not fit (R, C) and (O, C)", x.shape().dims(), w.shape().dims())
    }
    Ok((r, c, o))
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "stipple-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (r, c, o) = sizes(self.name(), l1, l2)?;
        fn run<T: WithDType>([x, w]: [&[T]; 2], size: (usize, usize, usize)) -> Vec<T> {
            let mut y = uninit::<T>(size.0 * size.2);
            // SAFETY: y holds R·O values, every one written by the product (not accumulated).
            unsafe {
                product(y.as_mut_ptr().cast::<T>(), x, w, size, false);
                assume_init(y)
            }
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |a| run(a, (r, c, o)), |a| run(a, (r, c, o)))?;
        Ok((out, Shape::from((r, o))))
    }
}

impl InplaceOp3 for AccumulateProduct {
    fn name(&self) -> &'static str {
        "stipple-linear-accumulate"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<()> {
        let op = InplaceOp3::name(self);
        let (r, c, o) = sizes(op, l2, l3)?;
        let Some((y0, y1)) = l1.contiguous_offsets().filter(|(a, b)| b - a == r * o) else {
            bail!("{op}: the output {:?} is not a contiguous ({r}, {o})", l1.shape().dims())
        };
        match (s1, s2, s3) {
            (CpuStorage::F32(y), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let (x, w) = (data::<f32>(s2, l2, op)?, data::<f32>(s3, l3, op)?);
                // SAFETY: y[y0..y1] holds R·O initialised values.
                unsafe { product(y[y0..y1].as_mut_ptr(), x, w, (r, c, o), true) }
            }
            (CpuStorage::F64(y), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (x, w) = (data::<f64>(s2, l2, op)?, data::<f64>(s3, l3, op)?);
                // SAFETY: as for f32.
                unsafe { product(y[y0..y1].as_mut_ptr(), x, w, (r, c, o), true) }
            }
            _ => bail!("{op}: y, x and the weight must all be f32 or all f64"),
        }
        Ok(())
    }
}
