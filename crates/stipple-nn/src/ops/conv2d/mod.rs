//! 2-D convolution (cross-correlation, like candle's and PyTorch's) as a candle custom op with
//! its own backward pass.
//!
//! CPU kernels for f32 on CPUs with AVX-512 or AVX2 + FMA (the private `direct` module): direct
//! convolutions register-tiled over 16·V output channels, for the forward pass and the input
//! gradient when the channel counts they put in vector lanes are multiples of 16, and (with
//! AVX-512) for the gradient of 3×3 weights except on large maps with many input channels,
//! where the shifted GEMMs are faster (`Geom::direct_weight_gradient`; per-layer times against PyTorch's in
//! docs/BENCHMARKS.md). The forward kernel (and so the input gradient) copies its input channels-last by blocks of 32
//! input channels and is cache-blocked over those blocks and over bands of output rows, as a
//! GEMM is (see `direct`).
//!
//! Stride-1 "same" 3×3 convolutions in f32 on large maps with many channels (`Geom::winograd`)
//! take Winograd's minimal filtering instead, forward and input gradient, on any CPU (the
//! private `winograd` module): F(4×4, 3×3) on maps of 64×64 pixels or more with at least 128
//! input and output channels (36 GEMMs over transformed 6×6 tiles, 4 times fewer
//! multiplications), F(2×2, 3×3) on maps of 32×32 pixels or more with at least 128 and 256
//! channels (the fewer and the more of input and output; 16 GEMMs, 2.25 times fewer); and,
//! for the forward pass only, F(2×2, 3×3) on 16×16 maps with at least 640 and 1280 channels
//! (`Geom::winograd_forward`).
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
//! Work is spread over the threads of the current rayon pool: over the samples of the batch
//! when there are at least as many samples as threads (each kernel single-threaded; the direct
//! kernels take groups of samples, see `direct_group`), otherwise inside each sample (GEMMs on
//! all threads, the direct kernels split the output channels).
//! `STIPPLE_CONV_PARALLEL=batch|gemm` forces one (the `plan` module). The weight gradient sums
//! over samples in groups fixed by the shapes (`weight_partials`), so every result's bits are
//! the same on any number of threads.
//!
//! Only f32 and f64 have CPU kernels; [`conv2d`] hands other dtypes and non-CPU devices to
//! candle's own `Tensor::conv2d`.
//!
//! The module by purpose: `op` (the custom ops and their backward pass), `geometry` (sizes,
//! output extents and the taps of "same" kernels), `im2col` (the column matrix and its
//! inverse), `plan` (how the work is spread over threads and sample groups), `kernels` (the
//! forward pass and the gradients, choosing per sample group between `winograd`, `direct`,
//! `shifted` and im2col + GEMM), `elem` (the element types, their scratch buffers and their
//! safe view as f32 for the direct kernels), and the kernels themselves (`direct`, `shifted`,
//! `winograd`).

use candle_core::{bail, DType, Layout, Module, Result, Tensor};

use geometry::Geom;
use candle_nn::VarBuilder;

use super::cpu_kernel_applies;
use super::group_norm::GroupNorm;

mod block_transpose;
#[cfg(target_arch = "x86_64")]
mod direct;
pub(crate) mod elem;
mod geometry;
mod im2col;
mod kernels;
mod norm;
mod op;
mod plan;
mod shifted;
#[cfg(target_arch = "x86_64")]
mod vector;
mod winograd;

pub use op::{Conv2dBackward, Conv2dBackwardInput, Conv2dBackwardWeight, Conv2dBiasGrad, Conv2dOp};

/// Stand-in for the direct kernels on other architectures: never available.
#[cfg(not(target_arch = "x86_64"))]
mod direct {
    use super::geometry::Geom;
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
    pub(super) fn weight_gradient_available() -> bool {
        false
    }
    pub(super) fn input_gradient_geom(_: &Geom) -> Geom {
        unreachable!("direct kernels are x86-64 only")
    }
    use super::norm::Norm;
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward(_: &Geom, _: &[f32], _: &Packed, _: Option<Bias>, _: Option<Norm>, _: &mut [std::mem::MaybeUninit<f32>], _: &mut Vec<f32>, _: bool) {
        unreachable!("direct kernels are x86-64 only")
    }
    pub(super) fn weight_gradient(_: &Geom, _: &[f32], _: &[f32], _: &mut [f32], _: bool, _: &mut Vec<f32>, _: bool) {
        unreachable!("direct kernels are x86-64 only")
    }
}

/// Whether f32 convolutions on this CPU use the direct kernels (AVX-512F, or AVX2 + FMA; where
/// their channel counts allow, see the module documentation) rather than im2col or shifted GEMMs.
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
    if !cpu_kernel_applies(&[x, w]) {
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

/// `conv2d(norm(x), w) + bias` with `norm(x) = GroupNorm(x)·γ + β` (Wu & He 2018), followed by
/// SiLU when `silu`, applied to each input value as the kernel reads it: the direct kernel as
/// it copies the input for its tiles, Winograd's as it transforms each channel (one band of
/// rows at a time, normalised into a buffer that stays in cache). The normalised tensor is
/// never written out and read back. The same bits as `conv2d(&group_norm(x, γ, β,
/// num_groups, eps, silu)?, w, bias, …)`.
///
/// Inference only: `None` (the caller then normalises and convolves separately) when any
/// operand tracks gradients, or where neither kernel computes the layer (not f32, 1×1, or
/// without Winograd: neither AVX-512 nor AVX2, output channels not a multiple of 16, or a
/// layer im2col + GEMM takes). Shapes as [`conv2d`]; `gamma` and `beta` `(C)`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_normalized(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    num_groups: usize,
    eps: f64,
    silu: bool,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Option<Tensor>> {
    let operands = [x, gamma, beta, w].into_iter().chain(bias);
    if operands.clone().any(|t| t.track_op() || t.dtype() != DType::F32 || !t.device().is_cpu()) || stride == 0 {
        return Ok(None);
    }
    let (xl, wl) = (Layout::contiguous(x.shape()), Layout::contiguous(w.shape()));
    if !Geom::of(&xl, &wl, stride, padding).is_ok_and(|g| g.normalized_forward()) {
        return Ok(None);
    }
    let coefficients = super::group_norm::coefficients(x, gamma, beta, num_groups, eps)?;
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let bias = match bias {
        Some(t) => t.contiguous()?,
        None => Tensor::zeros(w.dim(0)?, DType::F32, x.device())?,
    };
    x.apply_op3_no_bwd(&w, &bias, &op::Conv2dNormalizedOp { stride, padding, coefficients, silu }).map(Some)
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
        conv2d(x, &self.weight, self.bias_plus(Some(shift))?.as_ref(), self.stride, self.padding)
    }

    /// The layer applied to `SiLU(norm(x))`, plus `shift` (as [`Conv2d::forward_shifted`]) when
    /// given: at inference through [`conv2d_normalized`] where it applies (the normalised
    /// input is never written out), otherwise `norm.forward_silu(x)` and the layer; the same
    /// bits either way.
    pub fn forward_after_norm(&self, norm: &GroupNorm, x: &Tensor, shift: Option<&Tensor>) -> Result<Tensor> {
        let bias = self.bias_plus(shift)?;
        let (w, s, p) = (&self.weight, self.stride, self.padding);
        match conv2d_normalized(x, norm.weight(), norm.bias(), norm.num_groups(), norm.eps(), true, w, bias.as_ref(), s, p)? {
            Some(y) => Ok(y),
            None => conv2d(&norm.forward_silu(x)?, w, bias.as_ref(), s, p),
        }
    }

    /// The layer's bias plus `shift` `(B, O)`, when given.
    fn bias_plus(&self, shift: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(match (shift, &self.bias) {
            (Some(shift), Some(b)) => Some(shift.broadcast_add(b)?),
            (Some(shift), None) => Some(shift.clone()),
            (None, b) => b.clone(),
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d(x, &self.weight, self.bias.as_ref(), self.stride, self.padding)
    }
}
