//! The 1-D convolution and its gradients as candle custom ops: the forward op's backward pass
//! asks only for the gradients candle will use.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::geometry::Geom;
use super::kernels::{backward_input, backward_weight, forward};
use crate::ops::conv2d::Conv2dBiasGrad;
use crate::ops::dispatch;

/// Forward op: `(x, w, bias) -> y`, `bias` of shape `(O)` or `(B, O)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dOp {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
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
        let out = dispatch(operands, self.name(), |[x, w, c]| forward(&g, x, w, c), |[x, w, c]| forward(&g, x, w, c))?;
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
        let (stride, padding, dilation) = (self.stride, self.padding, self.dilation);
        // Only the gradients candle's backward pass will use: an operand that tracks no
        // operation (the network's input, a constant zero bias) needs none.
        let dx = match x.track_op() {
            true => Some(dy.apply_op2_no_bwd(w, &Conv1dBackwardInput { stride, padding, dilation, l: x.dim(2)? })?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(x.apply_op2_no_bwd(&dy, &Conv1dBackwardWeight { stride, padding, dilation, k: w.dim(2)? })?),
            false => None,
        };
        let db = match bias.track_op() {
            true => {
                // The per-sample sums over positions of the 2-D op, on `dy` as `(B, O, Lo, 1)`.
                let (b, o, lo) = dy.dims3()?;
                let db = dy.reshape((b, o, lo, 1))?.apply_op1_no_bwd(&Conv2dBiasGrad)?;
                Some(if bias.rank() == 1 { db.sum(0)? } else { db })
            }
            false => None,
        };
        Ok((dx, dw, db))
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
