//! The convolution and its gradients as candle custom ops: the forward op's backward pass
//! asks only for the gradients candle will use.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::geometry::Geom;
use super::kernels::{backward_input, backward_weight, bias_grad, forward};
use super::norm::Norm;
use crate::ops::{data, dispatch, unpack};

/// Forward op: `(x, w, bias) -> y`, `bias` of shape `(O)` or `(B, O)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dOp {
    pub stride: usize,
    pub padding: usize,
}

/// Gradient w.r.t. the input: `(dy, w) -> dx`, `dx` of spatial size `(h, w)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dBackwardInput {
    pub stride: usize,
    pub padding: usize,
    pub h: usize,
    pub w: usize,
}

/// Both gradients in one pass over the samples: `(x, w, dy) -> [dx; dw]`, flattened into one
/// vector (split by [`Conv2dOp`]'s backward).
#[derive(Debug, Clone, Copy)]
pub struct Conv2dBackward {
    pub stride: usize,
    pub padding: usize,
}

/// Gradient w.r.t. the bias, per sample: `dy (B, O, Ho, Wo) -> db (B, O)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dBiasGrad;

/// Gradient w.r.t. the weight: `(x, dy) -> dw`, `dw` of kernel size `(kh, kw)`.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dBackwardWeight {
    pub stride: usize,
    pub padding: usize,
    pub kh: usize,
    pub kw: usize,
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "stipple-conv2d"
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
        let g = Geom::of(l1, l2, self.stride, self.padding)?;
        let (b, o) = (g.b, g.o);
        if l3.shape().dims() != [o] && l3.shape().dims() != [b, o] {
            bail!("conv2d: bias has shape {:?}, expected ({o}) or ({b}, {o})", l3.shape().dims())
        }
        let op = self.name();
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, op, |[a, b, c]| forward(&g, a, b, c, None), |[a, b, c]| forward(&g, a, b, c, None))?;
        Ok((out, Shape::from((b, o, g.ho, g.wo))))
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
        let (_, _, h, wd) = x.dims4()?;
        let (_, _, kh, kw) = w.dims4()?;
        let (stride, padding) = (self.stride, self.padding);
        // Only the gradients candle's backward pass will use: an operand that tracks no
        // operation (the network's input, a constant zero bias) needs none.
        let (dx, dw) = match (x.track_op(), w.track_op()) {
            (true, true) => {
                let packed = x.apply_op3_no_bwd(w, &dy, &Conv2dBackward { stride, padding })?;
                let [dx, dw] = unpack(&packed, [x, w])?;
                (Some(dx), Some(dw))
            }
            (true, false) => (Some(dy.apply_op2_no_bwd(w, &Conv2dBackwardInput { stride, padding, h, w: wd })?), None),
            (false, true) => (None, Some(x.apply_op2_no_bwd(&dy, &Conv2dBackwardWeight { stride, padding, kh, kw })?)),
            (false, false) => (None, None),
        };
        let db = match bias.track_op() {
            true => {
                let db = dy.apply_op1_no_bwd(&Conv2dBiasGrad)?;
                Some(if bias.rank() == 1 { db.sum(0)? } else { db })
            }
            false => None,
        };
        Ok((dx, dw, db))
    }
}

/// The forward pass of [`super::conv2d_normalized`]: `conv2d(norm(x), w) + bias` in f32 with
/// `norm` applied by the direct or the Winograd kernel as it reads `x`. Inference only (no backward pass).
#[derive(Debug, Clone)]
pub(super) struct Conv2dNormalizedOp {
    pub stride: usize,
    pub padding: usize,
    /// `[a, m, b]` per (sample, channel) of `x` (`ops::group_norm::coefficients`).
    pub coefficients: Vec<[f32; 3]>,
    pub silu: bool,
}

impl CustomOp3 for Conv2dNormalizedOp {
    fn name(&self) -> &'static str {
        "stipple-conv2d-normalized"
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
        let g = Geom::of(l1, l2, self.stride, self.padding)?;
        let (b, o, op) = (g.b, g.o, self.name());
        if l3.shape().dims() != [o] && l3.shape().dims() != [b, o] {
            bail!("{op}: bias has shape {:?}, expected ({o}) or ({b}, {o})", l3.shape().dims())
        }
        if self.coefficients.len() != g.b * g.c {
            bail!("{op}: {} normalisation coefficients for an input of {} samples and {} channels", self.coefficients.len(), g.b, g.c)
        }
        if !g.normalized_forward() {
            bail!("{op}: the layer {:?} ∗ {:?} is computed by no kernel that normalises its input", l1.shape().dims(), l2.shape().dims())
        }
        let (x, w, bias) = (data::<f32>(s1, l1, op)?, data::<f32>(s2, l2, op)?, data::<f32>(s3, l3, op)?);
        let norm = Norm { coefficients: &self.coefficients, silu: self.silu };
        Ok((CpuStorage::F32(forward(&g, x, w, bias, Some(norm))), Shape::from((b, o, g.ho, g.wo))))
    }
}

impl CustomOp3 for Conv2dBackward {
    fn name(&self) -> &'static str {
        "stipple-conv2d-backward"
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
        let g = Geom::of(l1, l2, self.stride, self.padding)?;
        if l3.shape().dims() != [g.b, g.o, g.ho, g.wo] {
            bail!("conv2d backward: gradient {:?} does not fit input {:?} and weight {:?}", l3.shape().dims(), l1.shape().dims(), l2.shape().dims())
        }
        let op = self.name();
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, op, |[x, w, dy]| backward_weight(&g, x, dy, Some(w)), |[x, w, dy]| {
            backward_weight(&g, x, dy, Some(w))
        })?;
        Ok((out, Shape::from(l1.shape().elem_count() + l2.shape().elem_count())))
    }
}

impl CustomOp2 for Conv2dBackwardInput {
    fn name(&self) -> &'static str {
        "stipple-conv2d-backward-input"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, o, ho, wo) = l1.shape().dims4()?;
        let (o2, c, kh, kw) = l2.shape().dims4()?;
        let g = Geom::new(b, c, self.h, self.w, o, kh, kw, self.stride, self.padding)?;
        if o != o2 || (ho, wo) != (g.ho, g.wo) {
            bail!("conv2d backward: gradient {:?} does not fit weight {:?}", l1.shape().dims(), l2.shape().dims())
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[dy, w]| backward_input(&g, dy, w), |[dy, w]| {
            backward_input(&g, dy, w)
        })?;
        Ok((out, Shape::from((b, c, self.h, self.w))))
    }
}

impl CustomOp1 for Conv2dBiasGrad {
    fn name(&self) -> &'static str {
        "stipple-conv2d-bias-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, o, _, _) = l.shape().dims4()?;
        let op = self.name();
        let out = dispatch([(s, l)], op, |[dy]| bias_grad(b, o, dy), |[dy]| bias_grad(b, o, dy))?;
        Ok((out, Shape::from((b, o))))
    }
}

impl CustomOp2 for Conv2dBackwardWeight {
    fn name(&self) -> &'static str {
        "stipple-conv2d-backward-weight"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l1.shape().dims4()?;
        let (b2, o, ho, wo) = l2.shape().dims4()?;
        let g = Geom::new(b, c, h, w, o, self.kh, self.kw, self.stride, self.padding)?;
        if b != b2 || (ho, wo) != (g.ho, g.wo) {
            bail!("conv2d backward: gradient {:?} does not fit input {:?}", l2.shape().dims(), l1.shape().dims())
        }
        let out = dispatch([(s1, l1), (s2, l2)], self.name(), |[x, dy]| backward_weight(&g, x, dy, None), |[x, dy]| {
            backward_weight(&g, x, dy, None)
        })?;
        Ok((out, Shape::from((o, c, self.kh, self.kw))))
    }
}
