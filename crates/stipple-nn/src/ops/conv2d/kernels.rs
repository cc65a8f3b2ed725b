//! The forward pass and the two gradients of a convolution over a batch: for each group of
//! samples Winograd's F(4×4, 3×3) or F(2×2, 3×3) (f32, large 3×3 "same" layers: forward and
//! input gradient), the direct kernels (f32, AVX-512, where the channel counts allow), the
//! shifted GEMMs (large "same" maps) or im2col + GEMM.

use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::WithDType;
use gemm::Parallelism;
use rayon::prelude::*;

use super::elem::{assume_init, zeroed, Elem};
use crate::ops::scratch;
use super::geometry::Geom;
use super::im2col::{col2im, columns};
use super::plan::{direct_group, gemm_par, per_group, plan, threaded, weight_group, weight_partials, Plan};
use super::norm::Norm;
use super::{direct, shifted, winograd};
use crate::ops::matmul::{self, Mat};

/// `dst (m, n) [+]= lhs (m, k) · rhs (k, n)`, `dst` row-major and contiguous.
///
/// # Safety
/// As [`matmul::matmul`]; `dst` must hold `m×n` elements.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Elem>(m: usize, n: usize, k: usize, dst: &mut [T], accumulate: bool, lhs: Mat<T>, rhs: Mat<T>, par: Parallelism) {
    debug_assert!(dst.len() >= m * n);
    matmul::matmul(m, n, k, dst.as_mut_ptr(), n, accumulate, lhs, rhs, T::ONE, T::ONE, par)
}

/// The bias of the samples `samples` for [`direct::forward`]: `O` shared values or `B·O`.
fn direct_bias<'a>(bias: &'a [f32], o: usize, samples: &Range<usize>) -> direct::Bias<'a> {
    match bias.len() == o {
        true => direct::Bias { values: bias, stride: 0 },
        false => direct::Bias { values: &bias[samples.start * o..], stride: o },
    }
}

/// `bias` holds `O` values (shared) or `B·O` (per sample). `norm` normalises the input as the
/// [`winograd`] or [`direct`] kernel reads it, one of which must then compute the layer
/// (`Geom::normalized_forward`).
pub(super) fn forward<T: Elem>(g: &Geom, x: &[T], w: &[T], bias: &[T], norm: Option<Norm>) -> Vec<T> {
    let (k, n, xlen) = (g.k(), g.n(), g.c * g.h * g.w);
    let wino = T::f32s(w).zip(g.winograd_forward()).map(|(w, variant)| winograd::Transformed::forward(variant, g, w));
    let packed = T::f32s(w).filter(|_| wino.is_none() && g.direct_forward()).map(|w| direct::Packed::forward(g, w));
    assert!(norm.is_none() || packed.is_some() || wino.is_some(), "a normalised input needs the Winograd or the direct kernel");
    let group = if packed.is_some() { direct_group(g) } else { 1 };
    per_group(g, g.o * n, group, |samples, y, scratch, par| {
        let xs = &x[samples.start * xlen..samples.end * xlen];
        if let (Some(u), Some(xs), Some(y), Some(bias), Some(scratch)) = (&wino, T::f32s(xs), T::f32s_uninit(y), T::f32s(bias), T::f32_vec(scratch)) {
            for ((bi, x_b), y_b) in samples.zip(xs.chunks_exact(xlen)).zip(y.chunks_exact_mut(g.o * n)) {
                let bias_b = if bias.len() == g.o { bias } else { &bias[bi * g.o..][..g.o] };
                winograd::forward(g, x_b, u, Some(bias_b), norm.map(|n| n.samples(g.c, bi, 1)), y_b, scratch, par);
            }
            return;
        }
        if let (Some(packed), Some(xs), Some(y), Some(bias), Some(scratch)) = (&packed, T::f32s(xs), T::f32s_uninit(y), T::f32s(bias), T::f32_vec(scratch)) {
            let bias = direct_bias(bias, g.o, &samples);
            let norm = norm.map(|n| n.samples(g.c, samples.start, samples.len()));
            return direct::forward(g, xs, packed, Some(bias), norm, y, scratch, threaded(par));
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

pub(super) fn backward_input<T: Elem>(g: &Geom, dy: &[T], w: &[T]) -> Vec<T> {
    let packed = packed_input_gradient(g, w);
    let group = if matches!(packed, Some(Prepared::Direct(_))) { direct_group(g) } else { 1 };
    let ylen = g.o * g.n();
    per_group(g, g.c * g.h * g.w, group, |samples, dx, scratch, par| {
        input_gradient(g, &dy[samples.start * ylen..samples.end * ylen], w, packed.as_ref(), dx, scratch, par)
    })
}

/// A weight prepared for the f32 kernels of the gradient w.r.t. the input.
enum Prepared {
    Winograd(winograd::Transformed),
    Direct(direct::Packed),
}

/// The weight prepared for [`winograd`]'s or [`direct`]'s input gradient, when one computes it.
fn packed_input_gradient<T: Elem>(g: &Geom, w: &[T]) -> Option<Prepared> {
    let w = T::f32s(w)?;
    if let Some(variant) = g.winograd() {
        return Some(Prepared::Winograd(winograd::Transformed::input_gradient(variant, g, w)));
    }
    g.direct_input_gradient().then(|| Prepared::Direct(direct::Packed::input_gradient(g, w)))
}

/// The gradients `dx (S, C, H, W)` of consecutive samples from their `dy (S, O, N)`, by
/// [`winograd`] or [`direct`] when `packed` (from [`packed_input_gradient`]) is given; every
/// value of `dx` is written.
#[allow(clippy::too_many_arguments)]
fn input_gradient<T: Elem>(g: &Geom, dy: &[T], w: &[T], packed: Option<&Prepared>, dx: &mut [MaybeUninit<T>], scratch: &mut Vec<T>, par: Parallelism) {
    let (k, n) = (g.k(), g.n());
    if let (Some(packed), Some(dy), Some(dx), Some(scratch)) = (packed, T::f32s(dy), T::f32s_uninit(dx), T::f32_vec(scratch)) {
        return match packed {
            Prepared::Direct(packed) => {
                // The kernel splits one sample over the threads, or takes several on one.
                let samples = if threaded(par) { 1 } else { dy.len() / (g.o * n).max(1) };
                let (dy_len, dx_len) = (samples * g.o * n, samples * g.c * g.h * g.w);
                for (dy_s, dx_s) in dy.chunks(dy_len.max(1)).zip(dx.chunks_mut(dx_len.max(1))) {
                    direct::forward(&direct::input_gradient_geom(g), dy_s, packed, None, None, dx_s, scratch, threaded(par));
                }
            }
            Prepared::Winograd(u) => {
                for (dy_b, dx_b) in dy.chunks_exact(g.o * n).zip(dx.chunks_exact_mut(g.c * g.h * g.w)) {
                    winograd::forward(g, dy_b, u, None, None, dx_b, scratch, par);
                }
            }
        };
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
pub(super) fn bias_grad<T: Elem + WithDType>(b: usize, o: usize, dy: &[T]) -> Vec<T> {
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

/// Rows of `dW` per task of [`backward_weight`]'s sum of the transposed partial sums: 16, a
/// 64-byte cache line of f32 values in each partial sum. Measured (AMD EPYC Zen 3,
/// `conv_layers` backward, batch 16, the variants alternating in one process, 40 runs each,
/// one and two threads): against one row per task and a scalar sum, tasks of 16 rows made the
/// fastest runs 3–7% faster on 256→128 and 512→512 at 8×8 (level on 128→128 at 8×8 and 16×16
/// and 64→64 at 32×32), and the vector sum then another 3–6% on 128→128 and 256→128 at 8×8.
/// Each value's partial sums are added in the same order as before, so the bits are unchanged.
const TRANSPOSE_ROWS: usize = 16;

/// `dW (O, C, kh, kw)`, or with `w` given `[dx; dW]`: both gradients from one pass over the
/// samples, each sample's `dy` read once while it is in cache (and, for [`shifted`], padded
/// once) for both.
pub(super) fn backward_weight<T: Elem>(g: &Geom, x: &[T], dy: &[T], w: Option<&[T]>) -> Vec<T> {
    let (k, n) = (g.k(), g.n());
    let xlen = g.c * g.h * g.w;
    // dWᵀ (K, O) += cols_b (K, N) · dy_bᵀ (N, O) over the samples in `range`: with the im2col
    // matrix as the row-major left operand the gemm crate runs these shapes 10–40% faster than
    // dW = dy_b · cols_bᵀ (which it computes as that same transposed product when the
    // destination is column-major, so the transposed partial sums are kept explicitly).
    // `dx` holds the input gradients of the samples in `range` (when wanted).
    let packed = w.and_then(|w| packed_input_gradient(g, w));
    let direct_dw = T::f32s(dy).is_some() && g.direct_weight_gradient();
    let direct = direct_dw || matches!(packed, Some(Prepared::Direct(_)));
    let accumulate = |range: Range<usize>, mut dx: Option<&mut [MaybeUninit<T>]>, dwt: &mut [T], scratch: &mut Vec<T>, par: Parallelism| {
        // The samples of a range go to the kernels in groups (one sample each but for [`direct`]).
        let group = weight_group(g, direct, range.len());
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
            if let (true, Some(xs), Some(dys), Some(dwt), Some(scratch)) = (direct_dw, T::f32s(xs), T::f32s(dys), T::f32s_mut(dwt), T::f32_vec(scratch)) {
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
    let (mut dx, dw) = out.split_at_mut(dxlen);
    // Each group of samples (fixed by the shapes) sums into its own partial sum, whichever
    // thread runs it, and writes the input gradients of its samples.
    let ranges = weight_partials(g, direct, std::mem::size_of::<T>());
    type Task<'a, T> = (Range<usize>, Option<&'a mut [MaybeUninit<T>]>);
    let tasks: Vec<Task<T>> = ranges
        .into_iter()
        .map(|range| {
            let dx_g = w.is_some().then(|| {
                let (head, rest) = std::mem::take(&mut dx).split_at_mut(range.len() * xlen);
                dx = rest;
                head
            });
            (range, dx_g)
        })
        .collect();
    let partial = |(range, dx_g): Task<T>, par: Parallelism| {
        let mut part = vec![T::ZERO; k * g.o];
        scratch::with_vec(|scratch| accumulate(range, dx_g, &mut part, scratch, par));
        part
    };
    // The groups run in parallel, each with its share of the threads when there are more
    // threads than groups; a single group gets them all.
    let groups = tasks.len();
    let partials: Vec<Vec<T>> = match plan(groups) {
        Plan::Batch(_) => tasks.into_par_iter().map(|task| partial(task, Parallelism::None)).collect(),
        Plan::Gemm(t) if groups > 1 => tasks.into_par_iter().map(|task| partial(task, gemm_par(t / groups))).collect(),
        Plan::Gemm(t) => tasks.into_iter().map(|task| partial(task, gemm_par(t))).collect(),
    };
    // dW (O, K) = Σ of the transposed partial sums, in a fixed order, in tasks of
    // `TRANSPOSE_ROWS` rows: the rows' values at one `kk` are adjacent in every partial sum, so
    // each cache line read serves the task's rows (one row per task read a line per value), and
    // they are summed as vectors.
    dw.par_chunks_mut(TRANSPOSE_ROWS * k.max(1)).enumerate().for_each(|(bi, rows)| {
        let o0 = bi * TRANSPOSE_ROWS;
        let n = rows.len() / k.max(1);
        for kk in 0..k {
            // The rows' sums at `kk`, one partial sum after another (vector adds).
            let mut v = [T::ZERO; TRANSPOSE_ROWS];
            for part in &partials {
                for (v, &p) in v.iter_mut().zip(&part[kk * g.o + o0..][..n]) {
                    *v += p;
                }
            }
            for (i, &v) in v[..n].iter().enumerate() {
                rows[i * k + kk] = MaybeUninit::new(v);
            }
        }
    });
    // SAFETY: every value of `dx` (each sample's chunk, zeroed or written by `input_gradient`)
    // and of `dw` was written above.
    unsafe { assume_init(out) }
}
