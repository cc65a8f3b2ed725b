//! Custom candle operations with hand-written CPU kernels and backward passes.
//!
//! candle's CPU `conv2d` is a direct loop and its gradient goes through `conv_transpose2d` and a
//! convolution with image-sized kernels (both direct loops): in a training step of the U-Net
//! that backward pass dominated the profile. [`conv2d`] is a custom op with its own backward
//! ops, so model code stays ordinary candle code: for f32 on CPUs with AVX-512, register-tiled
//! direct kernels (no im2col matrix, no GEMM packing); otherwise im2col + GEMM (on maps of
//! 32×32 and up, for "same" kernels, a sum of shifted GEMMs).
//!
//! `candle_nn::GroupNorm` is a chain of some ten elementwise/reduction ops (each allocating, each
//! with its own backward), followed in the U-Net by a SiLU: [`group_norm`] is one pass per
//! `(sample, group)` with the SiLU (and in a ResNet block the dropout) fused in, and one pass
//! back.
//!
//! candle's CPU element-wise ops on fewer than 64 Ki values (larger ones use candle's own
//! pool, `crate::process`), its batched matmul, its strided copies and its reductions over a
//! leading axis run on the calling thread while the other cores wait: [`attention`] (the whole
//! `softmax(q kᵀ/√d) v`), [`add_bias`] (a linear layer's bias, whose gradient is a column
//! sum), [`upsample_nearest`] and [`transpose_last`] / [`transpose_last_add`] (a feature map
//! into a transformer's tokens and back, with the residual) replace such chains in the U-Net with one parallel pass each
//! way. The element-wise loops of these kernels run vectorised for the CPU's instruction set
//! (`simd`).
//!
//! [`conv1d`] does for 1-D convolutions (with dilation, as DiffWave's) what [`conv2d`] does
//! for 2-D ones, as sums of strided GEMMs; [`gated_tanh`] (WaveNet's gated unit) and
//! [`add_shift`] (a per-channel shift along a sequence) are one pass each way.
//!
//! [`adamw`] holds the optimizer's kernels: the AdamW update in place, and the sum of squares
//! behind the gradient norm.

pub mod adamw;
pub mod attention;
pub mod bias;
pub mod concat;
pub mod conv1d;
pub mod conv2d;
pub mod gated_tanh;
pub mod geglu;
pub mod group_norm;
pub mod layer_norm;
pub mod linear;
pub mod residual;
mod matmul;
pub mod shift;
pub mod transpose;
mod scratch;
mod simd;
pub mod upsample;

pub use attention::{attention, attention_probabilities};
pub use bias::{add_bias, add_bias_to_fresh};
pub use concat::concat_channels;
pub use conv1d::conv1d;
pub use conv2d::{conv2d, conv2d_normalized, Conv2d};
pub use gated_tanh::gated_tanh;
pub use geglu::geglu;
pub use group_norm::{group_norm, GroupNorm};
pub use layer_norm::layer_norm;
pub use linear::linear_inference;
pub use residual::add_to_fresh;
pub use shift::add_shift;
pub use transpose::{transpose_last, transpose_last_add};
pub use upsample::upsample_nearest;

/// Whether Stipple's CPU kernels take these operands: all on the CPU, all of one dtype, and
/// that f32 or f64. The public ops hand anything else to candle's own operations (their
/// results are the same; the kernels are faster).
pub(crate) fn cpu_kernel_applies(operands: &[&candle_core::Tensor]) -> bool {
    use candle_core::DType;
    let Some(first) = operands.first() else { return false };
    matches!(first.dtype(), DType::F32 | DType::F64)
        && operands.iter().all(|t| t.device().is_cpu() && t.dtype() == first.dtype())
}

/// Cuts the flat output of a backward op that packs several gradients one after another
/// into tensors shaped like `like` (the op's inputs, in order).
fn unpack<const N: usize>(packed: &candle_core::Tensor, like: [&candle_core::Tensor; N]) -> candle_core::Result<[candle_core::Tensor; N]> {
    let mut start = 0;
    let mut out = Vec::with_capacity(N);
    for t in like {
        out.push(packed.narrow(0, start, t.elem_count())?.reshape(t.shape())?);
        start += t.elem_count();
    }
    Ok(out.try_into().expect("one tensor per input"))
}

/// Runs a CPU kernel on the operands of the custom op `op`: `f32_kernel` when they are all f32,
/// `f64_kernel` when all f64 (the same generic kernel, instantiated twice), an error naming the
/// op otherwise.
fn dispatch<const N: usize>(
    operands: [(&candle_core::CpuStorage, &candle_core::Layout); N],
    op: &str,
    f32_kernel: impl FnOnce([&[f32]; N]) -> Vec<f32>,
    f64_kernel: impl FnOnce([&[f64]; N]) -> Vec<f64>,
) -> candle_core::Result<candle_core::CpuStorage> {
    use candle_core::{backend::BackendStorage, CpuStorage, DType};
    fn slices<'a, T: candle_core::WithDType, const N: usize>(
        operands: [(&'a CpuStorage, &candle_core::Layout); N],
        op: &str,
    ) -> candle_core::Result<[&'a [T]; N]> {
        let mut out: [&[T]; N] = [&[]; N];
        for (o, (s, l)) in out.iter_mut().zip(operands) {
            *o = data(s, l, op)?;
        }
        Ok(out)
    }
    let dtypes: Vec<DType> = operands.iter().map(|(s, _)| s.dtype()).collect();
    match dtypes.as_slice() {
        [DType::F32, ..] if dtypes.iter().all(|&d| d == DType::F32) => Ok(CpuStorage::F32(f32_kernel(slices(operands, op)?))),
        [DType::F64, ..] if dtypes.iter().all(|&d| d == DType::F64) => Ok(CpuStorage::F64(f64_kernel(slices(operands, op)?))),
        _ => candle_core::bail!("{op}: the CPU kernel supports f32 and f64 only (got {dtypes:?})"),
    }
}

/// The contiguous values of one operand of a custom op named `op` (an error naming the op when
/// the operand is strided: the ops call `.contiguous()` on their inputs first).
pub(crate) fn data<'a, T: candle_core::WithDType>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("{op}: operands must be contiguous (call .contiguous() first)"),
    }
}
