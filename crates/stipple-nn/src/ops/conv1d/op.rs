//! The 1-D convolution and its gradients as candle custom ops: the forward op's backward pass
//! asks only for the gradients candle will use.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::geometry::Geom;
use super::kernels::{backward_input, backward_weight, forward};
use crate::ops::conv2d::elem::Elem;
use crate::ops::conv2d::Conv2dBiasGrad;
use crate::ops::dispatch;

/// Forward op: `(x, w, bias) -> y`, `bias` of shape `(O)` or `(B, O)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dOp {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

/// A convolution added onto a tensor: `(x, [w; bias], addend) -> conv1d(x, w) + bias +
/// addend`, with the weight `(O, C, K)` and the bias `(O)` flattened into one operand (a
/// custom op has at most three), `addend` of the output's shape `(B, O, Lo)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dAddOp {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    /// The weight's shape `(O, C, K)`.
    pub weight: (usize, usize, usize),
}

/// Gradient w.r.t. the input: `(dy, w) -> dx`, `dx` of length `l`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dBackwardInput {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub l: usize,
}

/// Gradient w.r.t. the weight: `(x, dy) -> dw`, `dw` of kernel size `k`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dBackwardWeight {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub k: usize,
}

impl CustomOp3 for Conv1dOp {
    fn name(&self) -> &'static str {
        "stipple-conv1d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::of(l1, l2, self.stride, self.padding, self.dilation)?;
        let (b, o) = (g.b, g.o);
        if l3.shape().dims() != [o] && l3.shape().dims() != [b, o] {
            bail!("conv1d: bias has shape {:?}, expected ({o}) or ({b}, {o})", l3.shape().dims())
        }
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, self.name(), |[x, w, c]| forward(&g, x, w, c, None), |[x, w, c]| forward(&g, x, w, c, None))?;
        Ok((out, Shape::from((b, o, g.lo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (dx, dw) = gradients(x, w, &dy, w.track_op(), self.stride, self.padding, self.dilation)?;
        let db = match bias.track_op() {
            true => Some(bias_gradient(&dy, bias.rank() == 2)?),
            false => None,
        };
        Ok((dx, dw, db))
    }
}

/// The gradients w.r.t. the input (when `x` tracks an operation) and the weight (when
/// `want_w`): only those candle's backward pass will use.
fn gradients(x: &Tensor, w: &Tensor, dy: &Tensor, want_w: bool, stride: usize, padding: usize, dilation: usize) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let dx = match x.track_op() {
        true => Some(dy.apply_op2_no_bwd(w, &Conv1dBackwardInput { stride, padding, dilation, l: x.dim(2)? })?),
        false => None,
    };
    let dw = match want_w {
        true => Some(x.apply_op2_no_bwd(dy, &Conv1dBackwardWeight { stride, padding, dilation, k: w.dim(2)? })?),
        false => None,
    };
    Ok((dx, dw))
}

/// The bias gradient `(B, O)` when `per_sample`, else `(O)`: the per-sample sums over
/// positions of the 2-D op, on `dy` as `(B, O, Lo, 1)`.
fn bias_gradient(dy: &Tensor, per_sample: bool) -> Result<Tensor> {
    let (b, o, lo) = dy.dims3()?;
    let db = dy.reshape((b, o, lo, 1))?.apply_op1_no_bwd(&Conv2dBiasGrad)?;
    if per_sample {
        Ok(db)
    } else {
        db.sum(0)
    }
}

/// [`forward`] with the weight and the bias packed in `wb` (the weight's `n` values first).
fn forward_add<T: Elem>(g: &Geom, n: usize, x: &[T], wb: &[T], addend: &[T]) -> Vec<T> {
    let (w, bias) = wb.split_at(n);
    forward(g, x, w, bias, Some(addend))
}

impl CustomOp3 for Conv1dAddOp {
    fn name(&self) -> &'static str {
        "stipple-conv1d-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (o, c, k) = self.weight;
        if l2.shape().dims() != [o * c * k + o] {
            bail!("conv1d_add: packed weight and bias {:?}, expected ({})", l2.shape().dims(), o * c * k + o)
        }
        let w = Layout::contiguous((o, c, k));
        let g = Geom::of(l1, &w, self.stride, self.padding, self.dilation)?;
        if l3.shape().dims() != [g.b, o, g.lo] {
            bail!("conv1d_add: addend {:?}, expected the output's shape ({}, {o}, {})", l3.shape().dims(), g.b, g.lo)
        }
        let n = o * c * k;
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, self.name(), |[x, wb, a]| forward_add(&g, n, x, wb, a), |[x, wb, a]| forward_add(&g, n, x, wb, a))?;
        Ok((out, Shape::from((g.b, o, g.lo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        wb: &Tensor,
        addend: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (o, c, k) = self.weight;
        let w = wb.narrow(0, 0, o * c * k)?.reshape((o, c, k))?;
        let (dx, dw) = gradients(x, &w, &dy, wb.track_op(), self.stride, self.padding, self.dilation)?;
        let dwb = match dw {
            Some(dw) => Some(Tensor::cat(&[dw.flatten_all()?, bias_gradient(&dy, false)?], 0)?),
            None => None,
        };
        Ok((dx, dwb, addend.track_op().then_some(dy)))
    }
}

impl CustomOp2 for Conv1dBackwardInput {
    fn name(&self) -> &'static str {
        "stipple-conv1d-backward-input"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, o, lo) = l1.shape().dims3()?;
        let (o2, c, k) = l2.shape().dims3()?;
        let g = Geom::new(b, c, self.l, o, k, self.stride, self.padding, self.dilation)?;
        if o != o2 || lo != g.lo {
            bail!("conv1d backward: gradient {:?} does not fit weight {:?}", l1.shape().dims(), l2.shape().dims())
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[dy, w]| backward_input(&g, dy, w), |[dy, w]| {
            backward_input(&g, dy, w)
        })?;
        Ok((out, Shape::from((b, c, self.l))))
    }
}

impl CustomOp2 for Conv1dBackwardWeight {
    fn name(&self) -> &'static str {
        "stipple-conv1d-backward-weight"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, l) = l1.shape().dims3()?;
        let (b2, o, lo) = l2.shape().dims3()?;
        let g = Geom::new(b, c, l, o, self.k, self.stride, self.padding, self.dilation)?;
        if b != b2 || lo != g.lo {
            bail!("conv1d backward: gradient {:?} does not fit input {:?}", l2.shape().dims(), l1.shape().dims())
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[x, dy]| backward_weight(&g, x, dy), |[x, dy]| {
            backward_weight(&g, x, dy)
        })?;
        Ok((out, Shape::from((o, c, self.k))))
    }
}
