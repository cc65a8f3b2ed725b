//! `y + x` for a `y` that no one else holds (a layer's output just computed) and a residual `x`
//! of the same shape (a ResNet block's skip connection): at inference `x` is added into `y` in
//! place, in parallel, with no new buffer and its page faults; with gradients a candle
//! addition. The same bits either way (one addition per value).

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor, WithDType};
use rayon::prelude::*;

use super::cpu_kernel_applies;

/// Values per rayon task.
const PIECE: usize = 32 * 1024;

/// `y + x` with `y` and `x` of one shape. `y`'s storage must be its own (a fresh result, not a
/// view or a clone of a tensor used elsewhere): when no operand tracks gradients it is
/// overwritten with the sum ([`AddInPlace`]).
pub fn add_to_fresh(y: Tensor, x: &Tensor) -> Result<Tensor> {
    if y.dims() != x.dims() {
        bail!("add_to_fresh: {:?} and {:?} differ in shape", y.dims(), x.dims())
    }
    if y.track_op() || x.track_op() || !cpu_kernel_applies(&[&y, x]) || !y.is_contiguous() {
        return y + x;
    }
    y.inplace_op2(&x.contiguous()?, &AddInPlace)?;
    Ok(y)
}

/// In-place op `y += x` of [`add_to_fresh`] (no backward: for tensors without gradients).
#[derive(Debug, Clone, Copy)]
pub struct AddInPlace;

impl InplaceOp2 for AddInPlace {
    fn name(&self) -> &'static str {
        "stipple-add-in-place"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let op = self.name();
        let offsets = |l: &Layout| l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{op}: operands must be contiguous")));
        let ((y0, y1), (x0, x1)) = (offsets(l1)?, offsets(l2)?);
        if y1 - y0 != x1 - x0 {
            bail!("{op}: {} values and {} values", y1 - y0, x1 - x0)
        }
        match (s1, s2) {
            (CpuStorage::F32(y), CpuStorage::F32(x)) => add(&mut y[y0..y1], &x[x0..x1]),
            (CpuStorage::F64(y), CpuStorage::F64(x)) => add(&mut y[y0..y1], &x[x0..x1]),
            _ => bail!("{op}: both operands must be f32 or both f64"),
        }
        Ok(())
    }
}

fn add<T: WithDType>(y: &mut [T], x: &[T]) {
    y.par_chunks_mut(PIECE).zip(x.par_chunks(PIECE)).for_each(|(y, x)| {
        for (v, &r) in y.iter_mut().zip(x) {
            *v += r;
        }
    });
}
