//! 2-D convolution (cross-correlation, like candle's and PyTorch's) as a candle custom op with
//! its own backward pass.
//!
//! CPU kernels for f32 on CPUs with AVX-512 (the private `direct` module): direct
//! convolutions register-tiled over 16·V output channels, for the forward pass and the input
//! gradient when the channel counts they put in vector lanes are multiples of 16, and for the
//! gradient of 3×3 weights (per-layer times against PyTorch's in docs/BENCHMARKS.md).
//!
//! Everything else (f64, other CPUs, other channel counts, the input gradient of strided
//! convolutions): im2col + GEMM (the `gemm` crate, the one candle's matmul uses).
//! For one sample with `cols = im2col(x_b)` of shape `(C·kh·kw, Ho·Wo)`:
//! - forward: `y_b = W · cols + bias_b` with `W` viewed as `(O, C·kh·kw)`, the GEMM accumulating
//!   onto rows pre-filled with the bias;
//! - gradient w.r.t. the input: `dx_b = col2im(Wᵀ · dy_b)`;
//! - gradient w.r.t. the weight: `dW = Σ_b dy_b · cols_bᵀ` (computed as its transpose);
//! - gradient w.r.t. the bias: the sums of `dy_b` over the pixels (and over `b` for a shared bias).
//!
//! The backward pass computes only the gradients candle will use (none for the network's input
//! or for frozen weights); when both the input's and the weight's are needed, one op
//! ([`Conv2dBackward`]) computes them sample by sample, reading each `dy_b` once for both.
//!
//! The bias is per output channel `(O)` or per sample and channel `(B, O)`: a ResNet block
//! passes its convolution bias plus the projected time embedding as one `(B, O)` bias, so
//! neither addition is a separate pass over the feature map (and neither gradient a reduction
//! over it by candle's generic strided `sum`, which took 15% of an emoji16 training step).
//!
//! A 1×1 convolution with stride 1 and no padding is one GEMM per sample, also for f32 (`cols =
//! x_b`, no im2col/col2im); a stride-1 "same" convolution on a map of 32×32 pixels or more is
//! a sum of shifted GEMMs instead of im2col (the private `shifted` module, chosen by
//! `Geom::shifted`).
//! Work is spread over candle's thread count ([`candle_core::utils::get_num_threads`]): over the
//! samples of the batch when there are at least as many samples as threads (each kernel
//! single-threaded; the direct kernels take groups of samples, see `direct_group`), otherwise
//! inside each sample (GEMMs on all threads, the direct kernels split the output channels).
//! `STIPPLE_CONV_PARALLEL=batch|gemm` forces one.
//!
//! Only f32 and f64 have CPU kernels; [`conv2d`] hands other dtypes and non-CPU devices to
//! candle's own `Tensor::conv2d`.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Tensor, WithDType};
use candle_nn::VarBuilder;
use gemm::Parallelism;
use rayon::prelude::*;

use super::{dispatch, unpack};
use super::matmul::{self, Mat};

#[cfg(target_arch = "x86_64")]
mod direct;
mod shifted;

/// Stand-in for the AVX-512 kernels on other architectures: never available.
#[cfg(not(target_arch = "x86_64"))]
mod direct {
    use super::Geom;
    pub(super) struct Packed;
    impl Packed {
        pub(super) fn forward(_: &Geom, _: &[f32]) -> Self {
            unreachable!("direct kernels are x86-64 only")
        }
        pub(super) fn input_gradient(_: &Geom, _: &[f32]) -> Self {
            unreachable!("direct kernels are x86-64 only")
        }
    }
    pub(super) struct Bias<'a> {
        pub values: &'a [f32],
        pub stride: usize,
    }
    pub(super) fn available() -> bool {
        false
    }
    pub(super) fn input_gradient_geom(_: &Geom) -> Geom {
        unreachable!("direct kernels are x86-64 only")
    }
    pub(super) fn forward(_: &Geom, _: &[f32], _: &Packed, _: Option<Bias>, _: &mut [std::mem::MaybeUninit<f32>], _: &mut Vec<f32>, _: bool) {
        unreachable!("direct kernels are x86-64 only")
    }
    pub(super) fn weight_gradient(_: &Geom, _: &[f32], _: &[f32], _: &mut [f32], _: bool, _: &mut Vec<f32>, _: bool) {
        unreachable!("direct kernels are x86-64 only")
    }
}

/// Whether f32 convolutions on this CPU use the direct AVX-512 kernels (where their channel
/// counts allow; see the module documentation) rather than im2col or shifted GEMMs.
pub fn direct_kernels_available() -> bool {
    direct::available()
}

/// `conv2d(x, w) + bias` with square stride and zero padding, dilation 1, one group.
///
/// # Shapes
/// - `x`: `(B, C, H, W)`
/// - `w`: `(O, C, kh, kw)`
/// - `bias`: `(O)` (per channel) or `(B, O)` (per sample and channel), or none
/// - returns `(B, O, (H + 2p − kh)/s + 1, (W + 2p − kw)/s + 1)`
///
/// On CPU with f32/f64 this is the im2col + GEMM op of this module (differentiable through
/// [`Conv2dOp`]'s backward); anywhere else it is `x.conv2d(w, padding, stride, 1, 1)` plus a
/// broadcast addition of the bias.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Result<Tensor> {
    let (b, o) = (x.dim(0)?, w.dim(0)?);
    let bias_ok = |t: &Tensor| t.dims() == [o] || t.dims() == [b, o];
    if let Some(t) = bias.filter(|t| !bias_ok(t)) {
        bail!("conv2d: bias has shape {:?}, expected ({o}) or ({b}, {o})", t.dims())
    }
    let supported = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64);
    if !supported {
        let y = x.conv2d(w, padding, stride, 1, 1)?;
        return match bias {
            None => Ok(y),
            Some(t) if t.rank() == 1 => y.broadcast_add(&t.reshape((1, o, 1, 1))?),
            Some(t) => y.broadcast_add(&t.reshape((b, o, 1, 1))?),
        };
    }
    if stride == 0 {
        bail!("conv2d: stride must be positive")
    }
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let bias = match bias {
        Some(t) => t.contiguous()?,
        None => Tensor::zeros(o, x.dtype(), x.device())?,
    };
    x.apply_op3(&w, &bias, Conv2dOp { stride, padding })
}

/// A 2-D convolution layer with bias, parameter-compatible with `candle_nn::conv2d`: `weight`
/// `(O, C, k, k)` with the Kaiming-normal hint and `bias` `(O)` uniform in `±1/√C`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// Takes `weight` and `bias` from `vb` with `candle_nn::conv2d`'s shapes and init hints.
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (out_channels, in_channels, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bound = 1. / (in_channels as f64).sqrt();
        let bias = vb.get_with_hints(out_channels, "bias", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self::from_parts(weight, Some(bias), stride, padding))
    }

    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        Self { weight, bias, stride, padding }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The layer's output plus `shift`, a `(B, O)` addition per sample and channel (the time
    /// embedding of a ResNet block), fused into the convolution as its bias.
    pub fn forward_shifted(&self, x: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let bias = match &self.bias {
            Some(b) => shift.broadcast_add(b)?,
            None => shift.clone(),
        };
        conv2d(x, &self.weight, Some(&bias), self.stride, self.padding)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d(x, &self.weight, self.bias.as_ref(), self.stride, self.padding)
    }
}

// ---------------------------------------------------------------------------------------------
// The custom ops.

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
        let out = dispatch(operands, op, |[a, b, c]| forward(&g, a, b, c), |[a, b, c]| forward(&g, a, b, c))?;
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


// ---------------------------------------------------------------------------------------------
// Kernels.

trait Elem: Copy + Send + Sync + 'static + std::ops::AddAssign {
    const ZERO: Self;
    const ONE: Self;
    /// `Self` is f32 (the [`direct`] kernels' type).
    const IS_F32: bool;
    /// This thread's scratch buffer (taken out, so a nested call simply gets a fresh one).
    fn take_scratch() -> Vec<Self>;
    fn return_scratch(v: Vec<Self>);
}

macro_rules! elem {
    ($t:ty, $slot:ident, $is_f32:literal) => {
        thread_local! {
            static $slot: std::cell::Cell<Vec<$t>> = const { std::cell::Cell::new(Vec::new()) };
        }
        impl Elem for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const IS_F32: bool = $is_f32;
            fn take_scratch() -> Vec<Self> {
                $slot.take()
            }
            fn return_scratch(v: Vec<Self>) {
                $slot.set(v)
            }
        }
    };
}
// Kept per thread between calls: fresh multi-megabyte buffers come from mmap, and their page
// faults cost as much as the arithmetic on some virtual machines.
elem!(f32, SCRATCH_F32, true);
elem!(f64, SCRATCH_F64, false);

/// Runs `f` with this thread's scratch buffer.
fn with_scratch<T: Elem, R>(f: impl FnOnce(&mut Vec<T>) -> R) -> R {
    let mut v = T::take_scratch();
    let r = f(&mut v);
    T::return_scratch(v);
    r
}

/// The smallest map (pixels per channel) on which [`shifted`] replaces im2col + GEMM. Measured
/// per sample on one thread (AVX-512 EPYC, `gemm` 0.19), 3×3 kernels, time of shifted ÷ im2col:
/// at 32×32, forward 0.77–1.03 (C→O = 128→64 … 128→128), input gradient 0.86–0.96, weight
/// gradient ≈ 1 once im2col's copy is counted; at 64×64 (192→64) 0.69, 0.70 and 0.95; at 16×16
/// the forward was 8% slower (input gradient 8% faster), at 8×8 all three slower.
const SHIFTED_MIN_PIXELS: usize = 32 * 32;

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    s: usize,
    p: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    #[allow(clippy::too_many_arguments)]
    fn new(b: usize, c: usize, h: usize, w: usize, o: usize, kh: usize, kw: usize, s: usize, p: usize) -> Result<Self> {
        if s == 0 {
            bail!("conv2d: stride must be positive")
        }
        if kh == 0 || kw == 0 || h + 2 * p < kh || w + 2 * p < kw {
            bail!("conv2d: kernel {kh}×{kw} does not fit input {h}×{w} with padding {p}")
        }
        let (ho, wo) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
        Ok(Self { b, c, h, w, o, kh, kw, s, p, ho, wo })
    }

    /// The geometry of input `x (B, C, H, W)` and weight `w (O, C, kh, kw)`.
    fn of(x: &Layout, w: &Layout, stride: usize, padding: usize) -> Result<Self> {
        let (b, c, h, wd) = x.shape().dims4()?;
        let (o, c2, kh, kw) = w.shape().dims4()?;
        if c != c2 {
            bail!("conv2d: input has {c} channels, weight {:?} expects {c2}", w.shape().dims())
        }
        Self::new(b, c, h, wd, o, kh, kw, stride, padding)
    }

    /// GEMM depth: rows of the im2col matrix.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per sample: columns of the im2col matrix.
    fn n(&self) -> usize {
        self.ho * self.wo
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.s == 1 && self.p == 0
    }

    /// Whether [`shifted`] computes this convolution (forward and both gradients): a
    /// [`Geom::same_stride1`] kernel larger than 1×1 on a map of at least
    /// [`SHIFTED_MIN_PIXELS`].
    fn shifted(&self) -> bool {
        self.same_stride1() && !self.pointwise() && self.h * self.w >= SHIFTED_MIN_PIXELS
    }

    /// Whether the direct kernels compute the forward pass (for f32): output channels in
    /// vectors of 16, and a kernel larger than 1×1 (a 1×1 convolution is one GEMM per sample).
    fn direct_forward(&self) -> bool {
        direct::available() && self.o.is_multiple_of(16) && !self.pointwise()
    }

    /// Whether the direct kernels compute the gradient w.r.t. the input: a stride-1 "same"
    /// convolution (so that it is a forward convolution of `dy`) with input channels in
    /// vectors of 16.
    fn direct_input_gradient(&self) -> bool {
        direct::available() && self.c.is_multiple_of(16) && self.same_stride1() && !self.pointwise()
    }

    /// Whether the direct kernels compute the gradient w.r.t. the weight: a 3×3 kernel with
    /// output channels in vectors of 16.
    fn direct_weight_gradient(&self) -> bool {
        direct::available() && self.o.is_multiple_of(16) && self.kh == 3 && self.kw == 3
    }

    /// Stride 1 and "same" padding (output size = input size, e.g. 3×3 with padding 1): then
    /// the im2col row of kernel tap `(i, j)` is the channel plane shifted by [`Geom::shift`],
    /// except where the shift wraps across a row border ([`Tap`]).
    fn same_stride1(&self) -> bool {
        self.s == 1 && self.ho == self.h && self.wo == self.w
    }

    /// For a [`Geom::same_stride1`] geometry and kernel tap `(i, j)`: the output pixels
    /// `lo..hi` read the input pixel at offset `n + shift` inside the image plane; those
    /// among them in the columns `wrap` read across a row border and are zero.
    fn tap(&self, i: usize, j: usize) -> Tap {
        let (w, hw, p) = (self.w as isize, (self.h * self.w) as isize, self.p as isize);
        let shift = (i as isize - p) * w + (j as isize - p);
        // Output rows whose input row `oh + i − p` is inside the image.
        let oh0 = (p - i as isize).clamp(0, self.h as isize);
        let oh1 = (self.h as isize + p - i as isize).clamp(oh0, self.h as isize);
        // Within those rows, the pixels whose flat source index lies in the plane; the ones
        // clipped here are all in `wrap` columns.
        let lo = (oh0 * w).max(-shift).min(oh1 * w);
        let hi = (oh1 * w).min(hw - shift).max(lo);
        let dj = j as isize - p;
        let wrap = if dj < 0 { 0..(-dj).min(w) } else { (w - dj).max(0)..w };
        Tap {
            rows: oh0 as usize..oh1 as usize,
            lo: lo as usize,
            hi: hi as usize,
            shift,
            wrap: wrap.start as usize..wrap.end as usize,
        }
    }

    /// For kernel column `j`: the output columns `ow0..ow1` that read inside the image.
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        let (s, p) = (self.s, self.p);
        let ow0 = if p > j { (p - j).div_ceil(s) } else { 0 }.min(self.wo);
        let ow1 = if self.w + p > j { (self.w + p - j).div_ceil(s) } else { 0 }.min(self.wo);
        (ow0, ow1.max(ow0))
    }

    /// For kernel row `i` and output row `oh`: the input row read, if inside the image.
    fn input_row(&self, i: usize, oh: usize) -> Option<usize> {
        let r = oh * self.s + i;
        (r >= self.p && r - self.p < self.h).then(|| r - self.p)
    }
}

/// See [`Geom::tap`].
struct Tap {
    /// Output rows that read inside the image (the others are zero).
    rows: std::ops::Range<usize>,
    /// Flat output pixels `lo..hi` read input pixel `n + shift`.
    lo: usize,
    hi: usize,
    shift: isize,
    /// Output columns that read across a row border, in every row of `rows`.
    wrap: std::ops::Range<usize>,
}

impl Tap {
    /// Zeroes the pixels of an im2col row (`N = H·W` values) that read outside the image.
    fn zero_outside<T: Elem>(&self, g: &Geom, row: &mut [T]) {
        let w = g.w;
        row[..self.rows.start * w].fill(T::ZERO);
        row[self.rows.end * w..].fill(T::ZERO);
        // Column by column (usually one): a fill per image row would be a `memset` call
        // for a single value.
        for col in self.wrap.clone() {
            for v in row[self.rows.start * w..self.rows.end * w].iter_mut().skip(col).step_by(w) {
                *v = T::ZERO;
            }
        }
    }
}

/// `cols (K, N)` from one sample `x (C, H, W)`.
fn im2col<T: Elem>(g: &Geom, x: &[T], cols: &mut [T]) {
    if g.same_stride1() {
        return im2col_same_stride1(g, x, cols);
    }
    let (n, wo, s) = (g.n(), g.wo, g.s);
    for c in 0..g.c {
        let xc = &x[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (ow0, ow1) = g.valid_cols(j);
                for oh in 0..g.ho {
                    let dst = &mut row[oh * wo..][..wo];
                    let Some(ih) = g.input_row(i, oh) else {
                        dst.fill(T::ZERO);
                        continue;
                    };
                    let xrow = &xc[ih * g.w..][..g.w];
                    dst[..ow0].fill(T::ZERO);
                    dst[ow1..].fill(T::ZERO);
                    if s == 1 {
                        let iw0 = ow0 + j - g.p;
                        dst[ow0..ow1].copy_from_slice(&xrow[iw0..iw0 + (ow1 - ow0)]);
                    } else {
                        for (ow, d) in dst.iter_mut().enumerate().take(ow1).skip(ow0) {
                            *d = xrow[ow * s + j - g.p];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for a [`Geom::same_stride1`] geometry: one contiguous copy per tap and channel,
/// then zeros where the tap reads outside the image.
fn im2col_same_stride1<T: Elem>(g: &Geom, x: &[T], cols: &mut [T]) {
    let hw = g.h * g.w;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = g.tap(i, j);
            for c in 0..g.c {
                let xc = &x[c * hw..][..hw];
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                if tap.hi > tap.lo {
                    let src = (tap.lo as isize + tap.shift) as usize;
                    row[tap.lo..tap.hi].copy_from_slice(&xc[src..][..tap.hi - tap.lo]);
                }
                row[tap.rows.start * g.w..tap.lo].fill(T::ZERO);
                row[tap.hi..tap.rows.end * g.w].fill(T::ZERO);
                tap.zero_outside(g, row);
            }
        }
    }
}

/// `dx (C, H, W) += col2im(cols (K, N))` for one sample (`dx` arrives zeroed; `cols` is scratch
/// and may be modified).
fn col2im<T: Elem>(g: &Geom, cols: &mut [T], dx: &mut [T]) {
    if g.same_stride1() {
        return col2im_same_stride1(g, cols, dx);
    }
    let (n, wo, s) = (g.n(), g.wo, g.s);
    for c in 0..g.c {
        let dxc = &mut dx[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (ow0, ow1) = g.valid_cols(j);
                for oh in 0..g.ho {
                    let Some(ih) = g.input_row(i, oh) else { continue };
                    let src = &row[oh * wo..][..wo];
                    let dxrow = &mut dxc[ih * g.w..][..g.w];
                    if s == 1 {
                        let iw0 = ow0 + j - g.p;
                        for (d, v) in dxrow[iw0..iw0 + (ow1 - ow0)].iter_mut().zip(&src[ow0..ow1]) {
                            *d += *v;
                        }
                    } else {
                        for (ow, v) in src.iter().enumerate().take(ow1).skip(ow0) {
                            dxrow[ow * s + j - g.p] += *v;
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im`] for a [`Geom::same_stride1`] geometry: the entries that read outside the image
/// are zeroed in `cols`, then each tap's row is added to the channel plane in one pass.
fn col2im_same_stride1<T: Elem>(g: &Geom, cols: &mut [T], dx: &mut [T]) {
    let hw = g.h * g.w;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = g.tap(i, j);
            for c in 0..g.c {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                tap.zero_outside(g, row);
                if tap.hi == tap.lo {
                    continue;
                }
                let dst = (tap.lo as isize + tap.shift) as usize;
                for (d, v) in dx[c * hw + dst..][..tap.hi - tap.lo].iter_mut().zip(&row[tap.lo..tap.hi]) {
                    *d += *v;
                }
            }
        }
    }
}

/// `dst (m, n) [+]= lhs (m, k) · rhs (k, n)`, `dst` row-major and contiguous.
///
/// # Safety
/// As [`matmul::matmul`]; `dst` must hold `m×n` elements.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Elem>(m: usize, n: usize, k: usize, dst: &mut [T], accumulate: bool, lhs: Mat<T>, rhs: Mat<T>, par: Parallelism) {
    debug_assert!(dst.len() >= m * n);
    matmul::matmul(m, n, k, dst.as_mut_ptr(), n, accumulate, lhs, rhs, T::ONE, T::ONE, par)
}

/// How to spread the work over the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Samples in parallel, each GEMM on one thread.
    Batch(usize),
    /// Samples one after another, each GEMM on `n` threads (`Parallelism::None` when 1).
    Gemm(usize),
}

fn plan(batch: usize) -> Plan {
    static FORCED: OnceLock<Option<String>> = OnceLock::new();
    // Counted once: without RAYON_NUM_THREADS candle parses /proc/cpuinfo on every call.
    static THREADS: OnceLock<usize> = OnceLock::new();
    let forced = FORCED.get_or_init(|| std::env::var("STIPPLE_CONV_PARALLEL").ok());
    let threads = *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1));
    match forced.as_deref() {
        Some("gemm") => Plan::Gemm(threads),
        Some("batch") if threads > 1 => Plan::Batch(threads),
        _ if threads > 1 && batch >= threads => Plan::Batch(threads),
        _ => Plan::Gemm(threads),
    }
}

/// Whether a kernel given `par` spreads its work over the threads itself.
fn threaded(par: Parallelism) -> bool {
    !matches!(par, Parallelism::None)
}

/// The values as f32 when `T` is f32 (for the [`direct`] kernels).
fn f32s<T: Elem>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: `T` is f32.
    T::IS_F32.then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

/// [`f32s`] for a mutable slice.
fn f32s_mut<T: Elem>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: `T` is f32.
    T::IS_F32.then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
}

/// [`f32s`] for an uninitialised output.
fn f32s_uninit<T: Elem>(s: &mut [MaybeUninit<T>]) -> Option<&mut [MaybeUninit<f32>]> {
    // SAFETY: `T` is f32.
    T::IS_F32.then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut MaybeUninit<f32>, s.len()) })
}

/// [`f32s`] for a scratch vector.
fn f32_vec<T: Elem>(v: &mut Vec<T>) -> Option<&mut Vec<f32>> {
    // SAFETY: `T` is f32, so `Vec<T>` is `Vec<f32>`.
    T::IS_F32.then(|| unsafe { &mut *(v as *mut Vec<T> as *mut Vec<f32>) })
}

fn gemm_par(threads: usize) -> Parallelism {
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A vector of `b·len` values: the chunk of every group of `group` consecutive samples (fewer
/// at the end) is passed uninitialised to `f(samples, chunk, scratch, parallelism)` by the
/// thread that works on that group, which must initialise all of it (the direct kernels write
/// every value; the others start from [`zeroed`]). (A `vec![0; b·len]` would zero all of it
/// serially on the calling thread first.)
fn per_group<T: Elem>(g: &Geom, len: usize, group: usize, f: impl Fn(Range<usize>, &mut [MaybeUninit<T>], &mut Vec<T>, Parallelism) + Sync) -> Vec<T> {
    let total = g.b * len;
    if total == 0 {
        return vec![T::ZERO; total];
    }
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(total);
    // SAFETY: `MaybeUninit` values need no initialisation.
    unsafe { out.set_len(total) };
    let run = |i: usize, chunk: &mut [MaybeUninit<T>], scratch: &mut Vec<T>, par: Parallelism| {
        let samples = i * group..i * group + chunk.len() / len;
        f(samples, chunk, scratch, par)
    };
    match plan(g.b) {
        Plan::Batch(_) => out
            .par_chunks_mut(group * len)
            .enumerate()
            .for_each(|(i, o)| with_scratch(|scratch| run(i, o, scratch, Parallelism::None))),
        Plan::Gemm(t) => with_scratch(|scratch| {
            for (i, o) in out.chunks_mut(group * len).enumerate() {
                run(i, o, scratch, gemm_par(t));
            }
        }),
    }
    // SAFETY: the chunks cover all `total` values and `f` initialised each.
    unsafe { assume_init(out) }
}

/// Samples per call of the [`direct`] kernels: on maps narrower than 8 pixels a register tile
/// of 8 samples, otherwise enough samples for 256 output pixels (the weight gradient's
/// accumulators are stored once per call), at most 8 and at most one thread's share of the
/// batch; 1 when the kernels split single samples over the threads.
fn direct_group(g: &Geom) -> usize {
    match plan(g.b) {
        Plan::Batch(t) => {
            let want = if g.wo < 8 { 8 } else { (256 / g.n().max(1)).clamp(1, 8) };
            want.min(g.b.div_ceil(t)).max(1)
        }
        Plan::Gemm(_) => 1,
    }
}

/// The bias of the samples `samples` for [`direct::forward`]: `O` shared values or `B·O`.
fn direct_bias<'a>(bias: &'a [f32], o: usize, samples: &Range<usize>) -> direct::Bias<'a> {
    match bias.len() == o {
        true => direct::Bias { values: bias, stride: 0 },
        false => direct::Bias { values: &bias[samples.start * o..], stride: o },
    }
}

/// The im2col matrix `(K, N)` of one sample `x_b`, built in `scratch` (a 1×1 convolution's is
/// `x_b` itself).
fn columns<'a, T: Elem>(g: &Geom, x_b: &'a [T], scratch: &'a mut Vec<T>) -> &'a [T] {
    if g.pointwise() {
        return x_b;
    }
    scratch.resize(g.k() * g.n(), T::ZERO);
    im2col(g, x_b, scratch);
    scratch
}

/// `bias` holds `O` values (shared) or `B·O` (per sample).
fn forward<T: Elem>(g: &Geom, x: &[T], w: &[T], bias: &[T]) -> Vec<T> {
    let (k, n, xlen) = (g.k(), g.n(), g.c * g.h * g.w);
    let packed = f32s(w).filter(|_| g.direct_forward()).map(|w| direct::Packed::forward(g, w));
    let group = if packed.is_some() { direct_group(g) } else { 1 };
    per_group(g, g.o * n, group, |samples, y, scratch, par| {
        let xs = &x[samples.start * xlen..samples.end * xlen];
        if let (Some(packed), Some(xs), Some(y), Some(bias), Some(scratch)) = (&packed, f32s(xs), f32s_uninit(y), f32s(bias), f32_vec(scratch)) {
            let bias = direct_bias(bias, g.o, &samples);
            return direct::forward(g, xs, packed, Some(bias), y, scratch, threaded(par));
        }
        let y = zeroed(y);
        for ((bi, x_b), y_b) in samples.zip(xs.chunks_exact(xlen)).zip(y.chunks_exact_mut(g.o * n)) {
            let bias_b = if bias.len() == g.o { bias } else { &bias[bi * g.o..][..g.o] };
            if g.shifted() {
                shifted::forward(g, x_b, w, bias_b, y_b, scratch, par);
                continue;
            }
            for (row, &v) in y_b.chunks_exact_mut(n).zip(bias_b) {
                row.fill(v);
            }
            let cols = columns(g, x_b, scratch);
            // SAFETY: w is (O, K), cols is (K, N), both in bounds.
            unsafe { matmul(g.o, n, k, y_b, true, Mat::rows(w, k), Mat::rows(cols, n), par) }
        }
    })
}

fn backward_input<T: Elem>(g: &Geom, dy: &[T], w: &[T]) -> Vec<T> {
    let packed = packed_input_gradient(g, w);
    let group = if packed.is_some() { direct_group(g) } else { 1 };
    let ylen = g.o * g.n();
    per_group(g, g.c * g.h * g.w, group, |samples, dx, scratch, par| {
        input_gradient(g, &dy[samples.start * ylen..samples.end * ylen], w, packed.as_ref(), dx, scratch, par)
    })
}

/// The weight packed for [`direct`]'s input gradient, when that computes it.
fn packed_input_gradient<T: Elem>(g: &Geom, w: &[T]) -> Option<direct::Packed> {
    f32s(w).filter(|_| g.direct_input_gradient()).map(|w| direct::Packed::input_gradient(g, w))
}

/// The gradients `dx (S, C, H, W)` of consecutive samples from their `dy (S, O, N)`, by
/// [`direct`] when `packed` (from [`packed_input_gradient`]) is given; every value of `dx` is
/// written.
#[allow(clippy::too_many_arguments)]
fn input_gradient<T: Elem>(g: &Geom, dy: &[T], w: &[T], packed: Option<&direct::Packed>, dx: &mut [MaybeUninit<T>], scratch: &mut Vec<T>, par: Parallelism) {
    let (k, n) = (g.k(), g.n());
    if let (Some(packed), Some(dy), Some(dx), Some(scratch)) = (packed, f32s(dy), f32s_uninit(dx), f32_vec(scratch)) {
        return direct::forward(&direct::input_gradient_geom(g), dy, packed, None, dx, scratch, threaded(par));
    }
    let dx = zeroed(dx);
    for (dy_b, dx_b) in dy.chunks_exact(g.o * n).zip(dx.chunks_exact_mut(g.c * g.h * g.w)) {
        // SAFETY: wᵀ is (K, O), dy_b is (O, N).
        if g.shifted() {
            shifted::backward_input(g, dy_b, w, dx_b, scratch, par)
        } else if g.pointwise() {
            unsafe { matmul(k, n, g.o, dx_b, false, Mat::transposed(w, k), Mat::rows(dy_b, n), par) }
        } else {
            scratch.resize(k * n, T::ZERO);
            unsafe { matmul(k, n, g.o, scratch, false, Mat::transposed(w, k), Mat::rows(dy_b, n), par) }
            col2im(g, scratch, dx_b);
        }
    }
}

/// `db (B, O)`: the sums of `dy (B, O, N)` over the pixels, one sample per task, in f64.
fn bias_grad<T: Elem + WithDType>(b: usize, o: usize, dy: &[T]) -> Vec<T> {
    let mut db = vec![T::ZERO; b * o];
    let n = dy.len().checked_div(b * o).unwrap_or(0);
    db.par_chunks_mut(o.max(1)).enumerate().for_each(|(bi, row)| {
        for (oi, d) in row.iter_mut().enumerate() {
            let pixels = &dy[(bi * o + oi) * n..][..n];
            *d = T::from_f64(pixels.iter().map(|v| v.to_f64()).sum());
        }
    });
    db
}

/// `dW (O, C, kh, kw)`, or with `w` given `[dx; dW]`: both gradients from one pass over the
/// samples, each sample's `dy` read once while it is in cache (and, for [`shifted`], padded
/// once) for both.
fn backward_weight<T: Elem>(g: &Geom, x: &[T], dy: &[T], w: Option<&[T]>) -> Vec<T> {
    let (k, n) = (g.k(), g.n());
    let xlen = g.c * g.h * g.w;
    // dWᵀ (K, O) += cols_b (K, N) · dy_bᵀ (N, O) over the samples in `range`: with the im2col
    // matrix as the row-major left operand the gemm crate runs these shapes 10–40% faster than
    // dW = dy_b · cols_bᵀ (which it computes as that same transposed product when the
    // destination is column-major, so the transposed partial sums are kept explicitly).
    // `dx` holds the input gradients of the samples in `range` (when wanted).
    let packed = w.and_then(|w| packed_input_gradient(g, w));
    let direct_dw = T::IS_F32 && g.direct_weight_gradient();
    // The samples of a range go to the kernels in groups (one sample each but for [`direct`]).
    let group = if direct_dw || packed.is_some() { direct_group(g) } else { 1 };
    let accumulate = |range: Range<usize>, mut dx: Option<&mut [MaybeUninit<T>]>, dwt: &mut [T], scratch: &mut Vec<T>, par: Parallelism| {
        for first in range.clone().step_by(group) {
            let samples = first..(first + group).min(range.end);
            let xs = &x[samples.start * xlen..samples.end * xlen];
            let dys = &dy[samples.start * g.o * n..samples.end * g.o * n];
            let acc = first > range.start;
            if let (Some(w), Some(dx)) = (w, dx.as_deref_mut()) {
                let dxs = &mut dx[(first - range.start) * xlen..][..samples.len() * xlen];
                if g.shifted() && packed.is_none() && !direct_dw {
                    shifted::backward(g, xs, dys, w, zeroed(dxs), dwt, acc, scratch, par);
                    continue;
                }
                input_gradient(g, dys, w, packed.as_ref(), dxs, scratch, par);
            }
            if let (true, Some(xs), Some(dys), Some(dwt), Some(scratch)) = (direct_dw, f32s(xs), f32s(dys), f32s_mut(dwt), f32_vec(scratch)) {
                direct::weight_gradient(g, xs, dys, dwt, acc, scratch, threaded(par));
                continue;
            }
            for (i, (x_b, dy_b)) in xs.chunks_exact(xlen).zip(dys.chunks_exact(g.o * n)).enumerate() {
                let acc = acc || i > 0;
                if g.shifted() {
                    shifted::backward_weight(g, x_b, dy_b, dwt, acc, scratch, par);
                    continue;
                }
                let cols = columns(g, x_b, scratch);
                // SAFETY: cols is (K, N), dy_bᵀ is (N, O).
                unsafe { matmul(k, g.o, n, dwt, acc, Mat::rows(cols, n), Mat::transposed(dy_b, n), par) }
            }
        }
    };
    let dxlen = if w.is_some() { g.b * xlen } else { 0 };
    let total = dxlen + g.o * k;
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(total);
    // SAFETY: `MaybeUninit` values need no initialisation.
    unsafe { out.set_len(total) };
    let (dx, dw) = out.split_at_mut(dxlen);
    let want_dx = w.is_some();
    let partials: Vec<Vec<T>> = match plan(g.b) {
        _ if g.b == 0 => Vec::new(),
        Plan::Gemm(t) => {
            let mut dwt = vec![T::ZERO; k * g.o];
            with_scratch(|scratch| accumulate(0..g.b, want_dx.then_some(dx), &mut dwt, scratch, gemm_par(t)));
            vec![dwt]
        }
        Plan::Batch(t) => {
            let groups = t.min(g.b);
            let per = g.b.div_ceil(groups);
            let mut dx_parts: Vec<Option<&mut [MaybeUninit<T>]>> = match want_dx {
                true if xlen > 0 => dx.chunks_mut(per * xlen).map(Some).collect(),
                _ => Vec::new(),
            };
            dx_parts.resize_with(groups, || want_dx.then_some(&mut []));
            dx_parts
                .into_par_iter()
                .enumerate()
                .map(|(gi, dx_g)| {
                    let mut part = vec![T::ZERO; k * g.o];
                    let range = gi * per..((gi + 1) * per).min(g.b);
                    if !range.is_empty() {
                        with_scratch(|scratch| accumulate(range, dx_g, &mut part, scratch, Parallelism::None));
                    }
                    part
                })
                .collect()
        }
    };
    // dW (O, K) = Σ of the transposed partial sums, in a fixed order, one row per task.
    dw.par_chunks_mut(k.max(1)).enumerate().for_each(|(o, row)| {
        for (kk, d) in row.iter_mut().enumerate() {
            let mut v = T::ZERO;
            for part in &partials {
                v += part[kk * g.o + o];
            }
            *d = MaybeUninit::new(v);
        }
    });
    // SAFETY: every value of `dx` (each sample's chunk, zeroed or written by `input_gradient`)
    // and of `dw` was written above.
    unsafe { assume_init(out) }
}

/// `chunk` zeroed, as initialised values.
fn zeroed<T: Elem>(chunk: &mut [MaybeUninit<T>]) -> &mut [T] {
    chunk.fill(MaybeUninit::new(T::ZERO));
    // SAFETY: every value of `chunk` was just written, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(chunk as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The vector as `T` values.
///
/// # Safety
/// Every value must have been initialised.
unsafe fn assume_init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the pointer, length and capacity come from a `Vec` of a type with `T`'s layout.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}
