//! Concatenation of two tensors along the channel dimension (a U-Net decoder joins each
//! feature map with its skip connection this way), as a custom op whose copies are spread
//! over rayon's threads: candle's `Tensor::cat` copies on the calling thread while the others
//! wait. The backward pass, as candle's, hands each input its part of the gradient.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::{cpu_kernel_applies, dispatch};

/// Values copied per rayon task (a piece of the output).
const PIECE: usize = 32 * 1024;

/// `[a, b]` along dim 1: `a (B, Ca, …)` and `b (B, Cb, …)` with the same other dims give
/// `(B, Ca + Cb, …)`, as `Tensor::cat(&[a, b], 1)`.
///
/// On CPU in f32/f64 [`ConcatChannels`]; elsewhere candle's `Tensor::cat`.
pub fn concat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (da, db) = (a.dims(), b.dims());
    if da.len() < 2 || da.len() != db.len() || da[0] != db[0] || da[2..] != db[2..] {
        bail!("concat_channels: {da:?} and {db:?} must agree in every dim but the channels (dim 1)")
    }
    if !cpu_kernel_applies(&[a, b]) {
        return Tensor::cat(&[a, b], 1);
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, ConcatChannels)
}

/// Forward op of [`concat_channels`].
#[derive(Debug, Clone, Copy)]
pub struct ConcatChannels;

impl CustomOp2 for ConcatChannels {
    fn name(&self) -> &'static str {
        "stipple-concat-channels"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (da, db) = (l1.shape().dims(), l2.shape().dims());
        if da.len() < 2 || da.len() != db.len() || da[0] != db[0] || da[2..] != db[2..] {
            bail!("{}: {da:?} and {db:?} must agree in every dim but dim 1", self.name())
        }
        let batch = da[0];
        let mut dims = da.to_vec();
        dims[1] += db[1];
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[a, b]| concat(a, b, batch), |[a, b]| concat(a, b, batch))?;
        Ok((out, Shape::from(dims)))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (ca, cb) = (a.dim(1)?, b.dim(1)?);
        let dy = dy.contiguous()?;
        let part = |start, len| dy.apply_op1_no_bwd(&ChannelRange { start, len });
        Ok((Some(part(0, ca)?), Some(part(ca, cb)?)))
    }
}

/// Backward op of [`ConcatChannels`]: channels `start..start + len` of `dy (B, C, …)`,
/// contiguous, copied in parallel (a candle `narrow` would be copied to a contiguous tensor
/// on one thread by the op that reads it next).
#[derive(Debug, Clone, Copy)]
struct ChannelRange {
    start: usize,
    len: usize,
}

impl CustomOp1 for ChannelRange {
    fn name(&self) -> &'static str {
        "stipple-channel-range"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        if dims.len() < 2 || self.start + self.len > dims[1] {
            bail!("{}: channels {}..{} of {dims:?}", self.name(), self.start, self.start + self.len)
        }
        let inner: usize = dims[2..].iter().product();
        let (from, len, stride) = (self.start * inner, self.len * inner, dims[1] * inner);
        let out = dispatch([(s, l)], self.name(), |[y]| range(y, from, len, stride), |[y]| range(y, from, len, stride))?;
        let mut dims = dims.to_vec();
        dims[1] = self.len;
        Ok((out, Shape::from(dims)))
    }
}

/// Values `from..from + len` of every `stride` values of `y`, one after another.
fn range<T: WithDType>(y: &[T], from: usize, len: usize, stride: usize) -> Vec<T> {
    let samples = y.len().checked_div(stride).unwrap_or(0);
    gather(samples * len, |pos| {
        let (s, o) = (pos / len, pos % len);
        &y[s * stride + from + o..s * stride + from + len]
    })
}

/// Sample `s` of the output is `a`'s sample `s` followed by `b`'s.
fn concat<T: WithDType>(a: &[T], b: &[T], batch: usize) -> Vec<T> {
    let (la, lb) = (a.len().checked_div(batch).unwrap_or(0), b.len().checked_div(batch).unwrap_or(0));
    let sample = la + lb;
    gather(a.len() + b.len(), |pos| {
        let (s, o) = (pos / sample, pos % sample);
        if o < la {
            &a[s * la + o..(s + 1) * la]
        } else {
            &b[s * lb + o - la..(s + 1) * lb]
        }
    })
}

/// A vector of `n` values copied in pieces of [`PIECE`], in parallel, from the runs of
/// consecutive values `run(pos)` gives: the values from output position `pos` to the end of
/// the run it lies in (never empty). Written in full piece by piece, so never zeroed first.
fn gather<'a, T: WithDType>(n: usize, run: impl Fn(usize) -> &'a [T] + Sync) -> Vec<T> {
    let mut out = uninit(n);
    out.par_chunks_mut(PIECE).enumerate().for_each(|(i, piece)| {
        let mut pos = i * PIECE;
        let mut rest = piece;
        while !rest.is_empty() {
            let src = run(pos);
            let k = src.len().min(rest.len());
            let (head, tail) = rest.split_at_mut(k);
            for (d, &v) in head.iter_mut().zip(src) {
                d.write(v);
            }
            rest = tail;
            pos += k;
        }
    });
    // SAFETY: the pieces cover the output and each was written in full.
    unsafe { assume_init(out) }
}
