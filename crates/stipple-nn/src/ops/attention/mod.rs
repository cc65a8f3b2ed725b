//! Multi-head scaled dot-product attention (Vaswani et al. 2017, Eq. 1 and §3.2.2) as one candle
//! custom op with its own backward pass.
//!
//! For each sample `b` and head `h`, with `Q, K, V` the head's `d = C/heads` columns of
//! `q_b (N, C)`, `k_b (M, C)`, `v_b (M, C)` and `s = 1/√d`:
//! - forward: `P = softmax(s·Q Kᵀ)` (rows), `O = P V` written to the head's columns of the
//!   output `(N, C)`;
//! - backward, from `dO`: `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`
//!   (the softmax Jacobian), `dQ = s·dS K`, `dK = s·dS^T Q`; `P` is recomputed, not saved.
//!
//! The composition of candle ops it replaces (split heads, two copies, `matmul`, a five-op
//! softmax, `matmul`, merge heads) runs every op on the calling thread and each GEMM of a
//! batched matmul one after another; this op reads the heads in place through GEMM strides, and
//! spreads the samples over rayon's threads. The forward pass ([`forward`]) goes through the
//! queries in blocks: its memory is one cache-sized block of probabilities per thread instead
//! of an `N × M` matrix per sample. Only f32 and f64 have CPU kernels;
//! [`attention`] hands other dtypes and devices, and attention with a mask, to candle ops.

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{cpu_kernel_applies, dispatch, unpack};
use super::matmul::{matmul, Mat};
use super::simd::{self, Float};

mod forward;
use forward::forward;

/// `softmax(q kᵀ/√d + mask) v` over `heads` heads, heads merged back.
///
/// # Shapes
/// - `q`: `(B, N, C)`; `k`, `v`: `(B, M, C)`; `mask`: additive, broadcastable to `(B, heads, N, M)`
/// - returns `(B, N, C)`
///
/// Without a mask, on CPU with f32/f64, this is [`AttentionOp`]; otherwise the same formula
/// written with candle ops.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, _, c) = q.dims3()?;
    let (bk, _, ck) = k.dims3()?;
    if heads == 0 || c % heads != 0 {
        bail!("attention: {heads} heads do not divide {c} channels")
    }
    if (bk, ck) != (b, c) || v.dims() != k.dims() {
        bail!("attention: q {:?}, k {:?} and v {:?} do not fit (B, N, C), (B, M, C), (B, M, C)", q.dims(), k.dims(), v.dims())
    }
    if mask.is_some() || !cpu_kernel_applies(&[q, k, v]) {
        return attention_candle(q, k, v, heads, mask);
    }
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, AttentionOp { heads })
}

/// `(B, len, C)` → `(B, heads, len, C / heads)`.
fn split_heads(t: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, len, c) = t.dims3()?;
    t.reshape((b, len, heads, c / heads))?.transpose(1, 2)?.contiguous()
}

/// The attention probabilities `softmax(q kᵀ / √d + mask)` (Vaswani et al. 2017, Eq. 1) of
/// every head: the weights the values are averaged with.
///
/// # Shapes
/// - `q`: `(B, N, C)`; `k`: `(B, M, C)`; `mask` as in [`attention`]
/// - returns `(B, heads, N, M)`, each row summing to 1
pub fn attention_probabilities(q: &Tensor, k: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
    let c = q.dim(2)?;
    if heads == 0 || c % heads != 0 {
        bail!("attention: {heads} heads do not divide {c} channels")
    }
    let d = c / heads;
    let (q, k) = (split_heads(q, heads)?, split_heads(k, heads)?);
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (d as f64).sqrt()))?; // (B, heads, N, M)
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    // `softmax`, not `softmax_last_dim`: the fused op has no backward in candle.
    candle_nn::ops::softmax(&scores, D::Minus1)
}

/// The reference composition of candle ops.
fn attention_candle(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, n, c) = q.dims3()?;
    let probs = attention_probabilities(q, k, heads, mask)?;
    probs.matmul(&split_heads(v, heads)?)?.transpose(1, 2)?.reshape((b, n, c)) // (B, N, C)
}

/// Forward op: `(q, k, v) -> out`.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOp {
    pub heads: usize,
}

/// Backward op: `([q; dO], k, v) -> [dq; dk; dv]`, `q` and `dO` stacked on the batch axis and
/// the three gradients flattened into one vector (split by [`AttentionOp`]'s `bwd`).
#[derive(Debug, Clone, Copy)]
pub struct AttentionBackward {
    pub heads: usize,
}

/// Sizes of one attention.
#[derive(Debug, Clone, Copy)]
struct Geom {
    b: usize,
    n: usize,
    m: usize,
    c: usize,
    heads: usize,
}

impl Geom {
    fn new(q: &Shape, k: &Shape, v: &Shape, heads: usize, op: &str) -> Result<Self> {
        let (b, n, c) = q.dims3()?;
        let (bk, m, ck) = k.dims3()?;
        if (bk, ck) != (b, c) || v.dims() != k.dims() || heads == 0 || c % heads != 0 {
            bail!("{op}: q {:?}, k {:?}, v {:?} and {heads} heads do not fit", q.dims(), k.dims(), v.dims())
        }
        Ok(Self { b, n, m, c, heads })
    }

    fn d(&self) -> usize {
        self.c / self.heads
    }

    fn scale(&self) -> f64 {
        1.0 / (self.d() as f64).sqrt()
    }
}


impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "stipple-attention"
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
        let op = self.name();
        let g = Geom::new(l1.shape(), l2.shape(), l3.shape(), self.heads, op)?;
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, op, |[a, b, c]| forward(&g, a, b, c), |[a, b, c]| forward(&g, a, b, c))?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        d_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let q_and_dout = Tensor::cat(&[q, &d_out.contiguous()?], 0)?;
        let packed = q_and_dout.apply_op3_no_bwd(k, v, &AttentionBackward { heads: self.heads })?;
        let [dq, dk, dv] = unpack(&packed, [q, k, v])?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

impl CustomOp3 for AttentionBackward {
    fn name(&self) -> &'static str {
        "stipple-attention-backward"
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
        let op = self.name();
        let (b2, n, c) = l1.shape().dims3()?;
        if b2 % 2 != 0 {
            bail!("{op}: [q; dO] {:?} must stack two batches", l1.shape().dims())
        }
        let g = Geom::new(&Shape::from((b2 / 2, n, c)), l2.shape(), l3.shape(), self.heads, op)?;
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let out = dispatch(operands, op, |[a, b, c]| backward(&g, a, b, c), |[a, b, c]| backward(&g, a, b, c))?;
        Ok((out, Shape::from(g.b * (g.n + 2 * g.m) * g.c)))
    }
}

// ---------------------------------------------------------------------------------------------
// The backward kernel: one rayon task per sample, the heads one after another inside it, each
// GEMM single-threaded (the forward kernel is in `forward`).

/// `P = softmax(s·Q_h K_hᵀ)` of head `h` for the `rows` query rows `q_rows` (row stride C) into
/// `p (rows, M)`, from one sample's `(M, C)` keys `k_b`.
fn probabilities<T: Float + 'static>(g: &Geom, h: usize, q_rows: &[T], rows: usize, k_b: &[T], p: &mut [T]) {
    let (d, c) = (g.d(), g.c);
    // SAFETY: Q_h is (rows, d) at row stride C inside q_rows; K_hᵀ (d, M) is K_h read
    // column-wise; p holds rows·M values.
    unsafe {
        matmul(
            rows,
            g.m,
            d,
            p.as_mut_ptr(),
            g.m,
            false,
            Mat { ptr: q_rows[h * d..].as_ptr(), rs: c, cs: 1 },
            Mat { ptr: k_b[h * d..].as_ptr(), rs: 1, cs: c },
            T::one(),
            T::from_f64(g.scale()),
            Parallelism::None,
        )
    }
    simd::dispatch(SoftmaxRows { scores: &mut p[..rows * g.m], m: g.m });
}

/// Rows of `m` scores, each replaced by its softmax (shifted by its maximum: no overflow).
struct SoftmaxRows<'a, T> {
    scores: &'a mut [T],
    m: usize,
}

impl<T: Float> pulp::WithSimd for SoftmaxRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for row in self.scores.chunks_exact_mut(self.m) {
            softmax_row(row)
        }
    }
}

/// The maximum, the exponentials and their sum in separate loops, the reductions in partial
/// sums: a loop that also carried one running sum would run the exponential one value at a time.
#[inline(always)]
fn softmax_row<T: Float>(row: &mut [T]) {
    let max = simd::max(row);
    for v in row.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum = simd::sum(row, |v| v);
    let inv = T::one() / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `[dq; dk; dv]` from `q_and_dout = [q; dO]`, `k`, `v`.
fn backward<T: Float + 'static>(g: &Geom, q_and_dout: &[T], k: &[T], v: &[T]) -> Vec<T> {
    let (d, c) = (g.d(), g.c);
    let (nq, nk) = (g.b * g.n * c, g.b * g.m * c);
    let (q, d_out) = q_and_dout.split_at(nq);
    let mut grads = vec![T::zero(); nq + 2 * nk];
    if nq == 0 || g.m == 0 {
        return grads;
    }
    let (dq, rest) = grads.split_at_mut(nq);
    let (dk, dv) = rest.split_at_mut(nk);
    let scale = T::from_f64(g.scale());
    dq.par_chunks_mut(g.n * c)
        .zip(dk.par_chunks_mut(g.m * c))
        .zip(dv.par_chunks_mut(g.m * c))
        .enumerate()
        .for_each(|(bi, ((dq_b, dk_b), dv_b))| {
            let q_b = &q[bi * g.n * c..][..g.n * c];
            let do_b = &d_out[bi * g.n * c..][..g.n * c];
            let k_b = &k[bi * g.m * c..][..g.m * c];
            let v_b = &v[bi * g.m * c..][..g.m * c];
            let mut p = vec![T::zero(); g.n * g.m];
            let mut ds = vec![T::zero(); g.n * g.m];
            for h in 0..g.heads {
                let col = |x: &[T]| Mat { ptr: x[h * d..].as_ptr(), rs: c, cs: 1 };
                probabilities(g, h, q_b, g.n, k_b, &mut p);
                // SAFETY (all four products): the head's columns of (·, C) rows are read and
                // written at row stride C; p and ds hold N·M values.
                unsafe {
                    // dV_h = Pᵀ (M, N) · dO_h (N, d).
                    let dv_h = dv_b[h * d..].as_mut_ptr();
                    matmul(g.m, d, g.n, dv_h, c, false, Mat::transposed(&p, g.m), col(do_b), T::one(), T::one(), Parallelism::None);
                    // dP = dO_h (N, d) · V_hᵀ (d, M).
                    let v_t = Mat { ptr: v_b[h * d..].as_ptr(), rs: 1, cs: c };
                    matmul(g.n, g.m, d, ds.as_mut_ptr(), g.m, false, col(do_b), v_t, T::one(), T::one(), Parallelism::None);
                }
                // dS = P ⊙ (dP − rowsum(P ⊙ dP)).
                for (ds_row, p_row) in ds.chunks_exact_mut(g.m).zip(p.chunks_exact(g.m)) {
                    let dot = ds_row.iter().zip(p_row).fold(T::zero(), |a, (&x, &y)| a + x * y);
                    for (x, &y) in ds_row.iter_mut().zip(p_row) {
                        *x = y * (*x - dot);
                    }
                }
                unsafe {
                    // dQ_h = s · dS (N, M) · K_h (M, d).
                    let dq_h = dq_b[h * d..].as_mut_ptr();
                    matmul(g.n, d, g.m, dq_h, c, false, Mat::rows(&ds, g.m), col(k_b), T::one(), scale, Parallelism::None);
                    // dK_h = s · dSᵀ (M, N) · Q_h (N, d).
                    let dk_h = dk_b[h * d..].as_mut_ptr();
                    matmul(g.m, d, g.n, dk_h, c, false, Mat::transposed(&ds, g.m), col(q_b), T::one(), scale, Parallelism::None);
                }
            }
        });
    grads
}

#[cfg(test)]
mod tests {
    use super::forward::query_block;

    #[test]
    fn query_blocks_hold_a_few_mebibytes_of_scores() {
        // 64×64 latents: 192 query rows × 4096 keys (a multiple of 6 rows).
        assert_eq!(query_block(4096, 4096), 192);
        // tests/attention_op.rs relies on several blocks for 400 queries over 4099 keys.
        assert_eq!(query_block(400, 4099), 186);
        // Cross-attention over 77 tokens: 480 rows; never more rows than queries, never 0.
        assert_eq!(query_block(4096, 77), 480);
        assert_eq!(query_block(5, 77), 5);
        assert_eq!(query_block(0, 0), 1);
        // Very many keys: at least 6 rows.
        assert_eq!(query_block(1000, 1 << 20), 6);
    }
}
