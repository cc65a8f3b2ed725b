//! The forward pass and the two gradients of a 1-D convolution as sums of GEMMs over strided
//! views, one per kernel tap, with no im2col matrix.
//!
//! With `W_j = w[:, :, j]` (an `(O, C)` view, rows `C·K` apart) and `X_j` the `(C, n)` view of
//! `x_b` that tap `j` reads (rows `L` apart, columns `s` apart, starting at `t₀·s + j·d − p`):
//! - forward: `y_b = bias [+ addend_b]`, then `y_b[:, T_j] += W_j · X_j` for each tap, `T_j`
//!   the outputs whose tap `j` reads inside the input (the others read the zero padding);
//! - gradient w.r.t. the input: `dx_b[:, t·s + j·d − p] += W_jᵀ · dy_b[:, T_j]`;
//! - gradient w.r.t. the weight: `dW_jᵀ (C, O) = Σ_b X_j · dy_b[:, T_j]ᵀ`.
//!
//! This is the "kn2row" decomposition of Vasudevan, Anderson and Gregg, *Parallel Multi
//! Channel Convolution using General Matrix Multiplication* (ASAP 2017); in one dimension
//! every shifted, strided or dilated operand is a plain strided matrix, so nothing is copied.
//! The work is cut into tasks of one sample and a chunk of positions (see
//! `Geom::chunk`): a task owns its part of the output (outputs for the forward pass, inputs
//! for the input gradient), so tasks run in parallel, each GEMM on one thread. The weight
//! gradient sums per-thread partial sums in a fixed order, so its result does not depend on
//! the scheduling.

use std::mem::MaybeUninit;
use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::geometry::{intersect, tasks, Geom};
use crate::ops::conv2d::elem::{assume_init, uninit, Elem};
use crate::ops::matmul::{self, Mat};

/// An output that parallel tasks write in disjoint parts.
struct Shared<T>(*mut MaybeUninit<T>);

// SAFETY: the tasks write disjoint positions (see the callers).
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Row `row` (of `len` values) at positions `at`, as a slice only this task writes.
    ///
    /// # Safety
    /// The positions must lie inside the output and belong to the calling task alone.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, row: usize, len: usize, at: &Range<usize>) -> &mut [MaybeUninit<T>] {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(row * len + at.start), at.len()) }
    }

    /// The start of row `row` (of `len` values), for the GEMMs.
    fn row(&self, row: usize, len: usize) -> *mut T {
        self.0.wrapping_add(row * len) as *mut T
    }
}

/// An uninitialised output of `n` values, and the handle tasks write it through.
fn output<T>(n: usize) -> (Vec<MaybeUninit<T>>, Shared<T>) {
    let mut v = uninit(n);
    let shared = Shared(v.as_mut_ptr());
    (v, shared)
}

/// `W_j (O, C)`: tap `j` of the weight `(O, C, K)`.
fn tap<T>(g: &Geom, w: &[T], j: usize) -> Mat<T> {
    Mat { ptr: w[j..].as_ptr(), rs: g.c * g.k, cs: g.k }
}

/// `X_j (C, n)`: the input positions that outputs `t₀…` read through tap `j`.
fn taps_input<T>(g: &Geom, x_b: &[T], j: usize, t0: usize) -> Mat<T> {
    Mat { ptr: x_b[g.input_of(j, t0)..].as_ptr(), rs: g.l, cs: g.s }
}

/// `y (B, O, Lo)`, plus `addend (B, O, Lo)` when given; `bias` holds `O` values (shared) or
/// `B·O` (per sample).
pub(super) fn forward<T: Elem>(g: &Geom, x: &[T], w: &[T], bias: &[T], addend: Option<&[T]>) -> Vec<T> {
    let (y, out) = output::<T>(g.b * g.o * g.lo);
    tasks(g.b, g.lo, Geom::chunk(g.o)).into_par_iter().for_each(|(bi, outs)| {
        let bias_b = if bias.len() == g.o { bias } else { &bias[bi * g.o..][..g.o] };
        for (oi, &v) in bias_b.iter().enumerate() {
            let row = bi * g.o + oi;
            // SAFETY: this task alone writes positions `outs` of sample `bi`.
            let dst = unsafe { out.part(row, g.lo, &outs) };
            match addend {
                Some(a) => dst.iter_mut().zip(&a[row * g.lo..][outs.clone()]).for_each(|(d, &a)| {
                    let mut sum = a;
                    sum += v;
                    *d = MaybeUninit::new(sum);
                }),
                None => dst.fill(MaybeUninit::new(v)),
            }
        }
        if g.c == 0 || g.o == 0 {
            return;
        }
        let x_b = &x[bi * g.c * g.l..][..g.c * g.l];
        for j in 0..g.k {
            let t = intersect(g.outputs_reading(j, 0..g.l), &outs);
            if t.is_empty() {
                continue;
            }
            let dst = out.row(bi * g.o, g.lo).wrapping_add(t.start);
            // SAFETY: W_j is (O, C) and X_j (C, n) inside `w` and `x_b`; the destination is the
            // task's own (O, n) block of the output, rows Lo apart, initialised above.
            unsafe {
                matmul::matmul(g.o, t.len(), g.c, dst, g.lo, true, tap(g, w, j), taps_input(g, x_b, j, t.start), T::ONE, T::ONE, Parallelism::None)
            }
        }
    });
    // SAFETY: the tasks cover every output position of every sample and channel.
    unsafe { assume_init(y) }
}

/// `dx (B, C, L)` from `dy (B, O, Lo)`.
pub(super) fn backward_input<T: Elem>(g: &Geom, dy: &[T], w: &[T]) -> Vec<T> {
    let (dx, out) = output::<T>(g.b * g.c * g.l);
    tasks(g.b, g.l, Geom::chunk(g.c)).into_par_iter().for_each(|(bi, inputs)| {
        for ci in 0..g.c {
            // SAFETY: this task alone writes positions `inputs` of sample `bi`.
            unsafe { out.part(bi * g.c + ci, g.l, &inputs) }.fill(MaybeUninit::new(T::ZERO));
        }
        if g.c == 0 || g.o == 0 {
            return;
        }
        let dy_b = &dy[bi * g.o * g.lo..][..g.o * g.lo];
        let dx_b = out.row(bi * g.c, g.l);
        let mut scratch = Vec::new();
        for j in 0..g.k {
            let t = g.outputs_reading(j, inputs.clone());
            if t.is_empty() {
                continue;
            }
            let (n, i0) = (t.len(), g.input_of(j, t.start));
            // W_jᵀ (C, O) and dy_b[:, t] (O, n).
            let (lhs, rhs) = (Mat { ptr: w[j..].as_ptr(), rs: g.k, cs: g.c * g.k }, Mat::rows(&dy_b[t.start..], g.lo));
            if g.s == 1 {
                // SAFETY: the destination is the task's own (C, n) block of dx, rows L apart,
                // zeroed above; the operands lie inside `w` and `dy_b`.
                unsafe { matmul::matmul(g.c, n, g.o, dx_b.wrapping_add(i0), g.l, true, lhs, rhs, T::ONE, T::ONE, Parallelism::None) }
                continue;
            }
            // Stride s: the inputs are s apart, so the product goes through `scratch`.
            scratch.resize(g.c * n, T::ZERO);
            // SAFETY: `scratch` holds (C, n); the operands lie inside `w` and `dy_b`.
            unsafe { matmul::matmul(g.c, n, g.o, scratch.as_mut_ptr(), n, false, lhs, rhs, T::ONE, T::ONE, Parallelism::None) }
            for (ci, row) in scratch.chunks_exact(n).enumerate() {
                // SAFETY: positions i0 + m·s (m < n) lie in `inputs`, the task's own part.
                let dst = unsafe { out.part(bi * g.c + ci, g.l, &inputs) };
                for (m, &v) in row.iter().enumerate() {
                    // SAFETY: initialised (zeroed) above.
                    unsafe { *dst[i0 + m * g.s - inputs.start].assume_init_mut() += v };
                }
            }
        }
    });
    // SAFETY: the tasks cover every input position of every sample and channel.
    unsafe { assume_init(dx) }
}

/// Groups of positions, each with its own partial sum, in [`backward_weight`]: enough for 16
/// threads, and fixed so that the sums do not depend on the thread count.
const WEIGHT_PARTIALS: usize = 16;

/// `dw (O, C, K)` from `x (B, C, L)` and `dy (B, O, Lo)`.
pub(super) fn backward_weight<T: Elem>(g: &Geom, x: &[T], dy: &[T]) -> Vec<T> {
    let (c, o, k) = (g.c, g.o, g.k);
    // Long chunks of positions (the GEMMs sum over them), cut into a fixed number of groups
    // with a partial sum each, however many threads there are: the order of the additions,
    // hence the result's bits, does not depend on the thread count.
    let chunk = g.lo.div_ceil(WEIGHT_PARTIALS.div_ceil(g.b.max(1))).max(1);
    let all = tasks(g.b, g.lo, chunk);
    let per = all.len().div_ceil(WEIGHT_PARTIALS).max(1);
    // Per group of tasks, the partial sums dW_jᵀ, laid out (K, C, O).
    let partials: Vec<Vec<T>> = all
        .par_chunks(per)
        .map(|group| {
            let mut part = vec![T::ZERO; k * c * o];
            if c == 0 || o == 0 {
                return part;
            }
            for (bi, outs) in group {
                let x_b = &x[bi * c * g.l..][..c * g.l];
                let dy_b = &dy[bi * o * g.lo..][..o * g.lo];
                for j in 0..k {
                    let t = intersect(g.outputs_reading(j, 0..g.l), outs);
                    if t.is_empty() {
                        continue;
                    }
                    // dy_b[:, t]ᵀ (n, O).
                    let dyt = Mat { ptr: dy_b[t.start..].as_ptr(), rs: 1, cs: g.lo };
                    // SAFETY: X_j is (C, n) inside `x_b`, dyᵀ (n, O) inside `dy_b`; the
                    // destination is the (C, O) block j of `part`.
                    unsafe {
                        matmul::matmul(c, o, t.len(), part[j * c * o..].as_mut_ptr(), o, true, taps_input(g, x_b, j, t.start), dyt, T::ONE, T::ONE, Parallelism::None)
                    }
                }
            }
            part
        })
        .collect();
    let mut dw = vec![T::ZERO; o * c * k];
    dw.par_chunks_mut((c * k).max(1)).enumerate().for_each(|(oi, row)| {
        for ci in 0..c {
            for j in 0..k {
                let mut v = T::ZERO;
                for part in &partials {
                    v += part[(j * c + ci) * o + oi];
                }
                row[ci * k + j] = v;
            }
        }
    });
    dw
}
