//! The forward kernel of [`super::AttentionOp`]: `O = softmax(s·Q Kᵀ) V` per sample and head
//! (Vaswani et al. 2017, Eq. 1), over blocks of query rows.
//!
//! One rayon task per (sample, head, run of query blocks). A task first copies its head's keys
//! transposed, `Kᵀ (d, M)`, and its values, `V (M, d̄)` with `d̄` the head width rounded up to
//! whole vectors of 16 (zero columns), into contiguous buffers: the `gemm` crate then reads
//! both in place for every query block — column-major, in whole vectors, without packing —
//! where strided `(M, C)` rows were gathered again for every block and head. For each block of
//! `r` query rows:
//! - `S = s·Q_r Kᵀ (r, M)`, then per row `e = exp(S − max S)` and `ℓ = Σ e` (the softmax's
//!   numerator and denominator);
//! - `Ō = e V (r, d̄)`, and `O = Ō / ℓ` into the head's `d` columns of the output rows: dividing
//!   the `d` outputs instead of the `M` probabilities (as flash attention rescales its output,
//!   Dao et al. 2022, Algorithm 1).
//!
//! The keys are not blocked: a row of `M` scores is one block (memory-efficient attention's
//! query blocking, Rabe & Staats 2021, §2). Every output is computed by one task in a fixed
//! order, so the result does not depend on the number of threads.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::Geom;
use crate::ops::conv2d::elem::{assume_init, uninit};
use crate::ops::matmul::{matmul, Mat};
use crate::ops::scratch;
use crate::ops::simd::{self, Float};

/// Query rows per block: a multiple of the `gemm` crate's 6 columns (the queries are the
/// columns of its products here), the block's scores about 3·2¹⁸ values (3 MiB in f32), at most
/// 480 rows. Measured on one thread (Xeon, 64×64 latents, 4096 keys), GFLOP/s at 12 / 30 / 48 /
/// 96 / 192 / 384 rows: head width 40, 100 / 105 / 116 / 110 / 113 / 113; width 64, 115 / 123 /
/// 139 / 136 / 141 / 141; one head of width 512 (a VAE's), 76 / 90 / 98 / 143 / 156 / 149: the
/// keys and values are read once per block, so wide heads want many rows.
pub(crate) fn query_block(n: usize, m: usize) -> usize {
    let rows = ((3 << 18) / m.max(1)).clamp(6, 480) / 6 * 6;
    rows.min(n.max(1))
}

/// Raw pointer to the output, shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct Out<T>(*mut MaybeUninit<T>);
// SAFETY: tasks write disjoint (row, column) ranges of the output (see `forward`).
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// `len` outputs from `offset`.
    ///
    /// # Safety
    /// Inside the output, and written by no other task.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, offset: usize, len: usize) -> &mut [MaybeUninit<T>] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

pub(super) fn forward<T: Float + 'static>(g: &Geom, q: &[T], k: &[T], v: &[T]) -> Vec<T> {
    let (d, c) = (g.d(), g.c);
    if g.b * g.n * c == 0 || g.m == 0 {
        return vec![T::zero(); g.b * g.n * c];
    }
    // Written in full (every row of every head) by the tasks, so never zeroed first.
    let mut out = uninit(g.b * g.n * c);
    let rows = query_block(g.n, g.m);
    let blocks = g.n.div_ceil(rows);
    // Enough tasks for every thread (a single sample and head, as in a VAE's attention, still
    // splits its query blocks), each copying its head's keys and values once.
    let wanted = 4 * rayon::current_num_threads();
    let runs = wanted.div_ceil(g.b * g.heads).clamp(1, blocks);
    let per_run = blocks.div_ceil(runs);
    let out_ptr = Out(out.as_mut_ptr());
    (0..g.b * g.heads * runs).into_par_iter().for_each(|task| {
        let (bh, run) = (task / runs, task % runs);
        let (bi, h) = (bh / g.heads, bh % g.heads);
        let first = run * per_run * rows;
        let last = ((run + 1) * per_run * rows).min(g.n);
        if first >= last {
            return;
        }
        // The head's copies of K and V, and the working rows, in one scratch buffer.
        let dp = d.next_multiple_of(16);
        scratch::with(d * g.m + g.m * dp + rows * (g.m + dp + 1), |buf: &mut [T]| {
            let (kt, buf) = buf.split_at_mut(d * g.m);
            let (vp, buf) = buf.split_at_mut(g.m * dp);
            let (e, buf) = buf.split_at_mut(rows * g.m);
            let (o, sums) = buf.split_at_mut(rows * dp);
            let head = Head::new(g, h, &k[bi * g.m * c..][..g.m * c], &v[bi * g.m * c..][..g.m * c], kt, vp);
            let q_b = &q[bi * g.n * c..][..g.n * c];
            for r0 in (first..last).step_by(rows) {
                let r = rows.min(last - r0);
                head.block(g, &q_b[r0 * c + h * d..], r, &mut e[..r * g.m], &mut o[..r * dp], &mut sums[..r]);
                for (i, (o_row, &l)) in o.chunks_exact(dp).zip(&*sums).take(r).enumerate() {
                    let inv = T::one() / l;
                    // SAFETY: row r0 + i of sample bi, the d columns of head h: written by this
                    // task alone (tasks split (sample, head, rows)), inside `out`.
                    let dst = unsafe { out_ptr.slice((bi * g.n + r0 + i) * c + h * d, d) };
                    for (y, &x) in dst.iter_mut().zip(o_row) {
                        y.write(x * inv);
                    }
                }
            }
        });
    });
    // SAFETY: the tasks cover every (sample, row, head) and wrote its d values.
    unsafe { assume_init(out) }
}

/// One head's keys and values, copied contiguous: `kt = Kᵀ (d, M)`, `vp = V (M, dp)`.
struct Head<'a, T> {
    kt: &'a [T],
    vp: &'a [T],
    dp: usize,
}

impl<'a, T: Float + 'static> Head<'a, T> {
    /// The copies of sample `b`'s keys `k_b` and values `v_b` for head `h`, into `kt` (`d·M`
    /// values) and `vp` (`M·dp`, the columns past `d` zero).
    fn new(g: &Geom, h: usize, k_b: &[T], v_b: &[T], kt: &'a mut [T], vp: &'a mut [T]) -> Self {
        let (d, c, m) = (g.d(), g.c, g.m);
        let dp = vp.len() / m.max(1);
        // Blocks of 16 keys: each row of kt written a cache line at a time, not one value per
        // line (rows M values apart).
        for j0 in (0..m).step_by(16) {
            let keys = &k_b[j0 * c..(j0 + 16).min(m) * c];
            for e in 0..d {
                for (dst, row) in kt[e * m + j0..].iter_mut().zip(keys.chunks_exact(c)) {
                    *dst = row[h * d + e];
                }
            }
        }
        for (dst, row) in vp.chunks_exact_mut(dp).zip(v_b.chunks_exact(c)) {
            let (values, padding) = dst.split_at_mut(d);
            values.copy_from_slice(&row[h * d..][..d]);
            padding.fill(T::zero());
        }
        Self { kt, vp, dp }
    }

    /// For the `r` query rows at `q_rows` (row stride C, the head's columns first): the
    /// exponentials `e (r, M)`, their row sums and `o = e V (r, dp)`.
    fn block(&self, g: &Geom, q_rows: &[T], r: usize, e: &mut [T], o: &mut [T], sums: &mut [T]) {
        let (d, m) = (g.d(), g.m);
        // SAFETY: Q_r is (r, d) at row stride C inside q_rows; kt (d, M) and vp (M, dp) are
        // contiguous; e holds r·M values and o r·dp, neither overlapping the operands.
        unsafe {
            matmul(r, m, d, e.as_mut_ptr(), m, false, Mat { ptr: q_rows.as_ptr(), rs: g.c, cs: 1 }, Mat::rows(self.kt, m), T::one(), T::from_f64(g.scale()), Parallelism::None);
        }
        simd::dispatch(Exponentials { scores: e, m, sums });
        unsafe {
            matmul(r, self.dp, m, o.as_mut_ptr(), self.dp, false, Mat::rows(e, m), Mat::rows(self.vp, self.dp), T::one(), T::one(), Parallelism::None);
        }
    }
}

/// Rows of `m` scores, each replaced by `exp(x − max)` (shifted by its maximum: no overflow),
/// with the row's sum written to `sums`.
struct Exponentials<'a, T> {
    scores: &'a mut [T],
    m: usize,
    sums: &'a mut [T],
}

impl<T: Float> pulp::WithSimd for Exponentials<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (row, sum) in self.scores.chunks_exact_mut(self.m).zip(self.sums.iter_mut()) {
            let max = simd::max(row);
            // The exponentials and their sum in one pass, the sum in 16 partial sums (one
            // vector) so that the exponential still runs a vector at a time.
            let mut acc = [T::zero(); 16];
            let mut chunks = row.chunks_exact_mut(16);
            for chunk in &mut chunks {
                for (a, x) in acc.iter_mut().zip(chunk.iter_mut()) {
                    *x = (*x - max).exp();
                    *a += *x;
                }
            }
            let mut total = acc.into_iter().fold(T::zero(), |s, a| s + a);
            for x in chunks.into_remainder() {
                *x = (*x - max).exp();
                total += *x;
            }
            *sum = total;
        }
    }
}
