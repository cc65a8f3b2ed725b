//! Dense symmetric linear algebra in f64: the eigendecomposition that the Fréchet distance's
//! matrix square root needs.
//!
//! The algorithm is EISPACK's `tred2` (Householder reduction to tridiagonal form) followed by
//! `tql2` (implicit QL iterations), as transcribed in JAMA's `EigenvalueDecomposition`
//! (public domain, Hicklin, Moler, Webb et al.): stable, and exact for positive
//! semi-definite matrices of any rank, which covariance estimates from fewer samples than
//! dimensions are.

use candle_core::{Device, Tensor};

use crate::EvalError;

/// Eigenvalues (ascending) and eigenvectors of a symmetric matrix.
pub struct SymmetricEigen {
    /// The eigenvalues, ascending.
    pub values: Vec<f64>,
    /// Row `i` is the unit eigenvector of `values[i]`, `n × n` row-major.
    pub vectors: Vec<f64>,
}

/// Eigendecomposition of the symmetric `n × n` row-major matrix `a` (only symmetry up to
/// rounding is assumed; the lower triangle is read).
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    let mut v = a.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    if n == 0 {
        return SymmetricEigen { values: d, vectors: v };
    }
    tred2(&mut v, &mut d, &mut e, n);
    // tql2 rotates columns of v; on the transpose those are contiguous rows.
    let mut vt = transpose(&v, n);
    tql2(&mut vt, &mut d, &mut e, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i]).collect();
    let vectors = order.iter().flat_map(|&i| vt[i * n..(i + 1) * n].iter().copied()).collect();
    SymmetricEigen { values, vectors }
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

/// Householder reduction of `v` (in: the matrix; out: the accumulated transformation) to a
/// tridiagonal matrix with diagonal `d` and sub-diagonal `e[1..]` (JAMA `tred2`).
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    let at = |i: usize, j: usize| i * n + j;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in d[..i].iter_mut() {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].iter_mut().for_each(|x| *x = 0.0);
            for j in 0..i {
                let f = d[j];
                v[at(j, i)] = f;
                let mut g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal `(d, e)`; `vt` holds the transformation of
/// `tred2` transposed (row `i` = column `i`) and receives the eigenvectors as rows (JAMA
/// `tql2`).
fn tql2(vt: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            loop {
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for di in d[l + 2..].iter_mut() {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = vt.split_at_mut((i + 1) * n);
                    let (row_i, row_i1) = (&mut lo[i * n..], &mut hi[..n]);
                    for (a, b) in row_i.iter_mut().zip(row_i1.iter_mut()) {
                        let h = *b;
                        *b = s * *a + c * h;
                        *a = c * *a - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// `a · b` for row-major `a` (`m × k`) and `b` (`k × n`), on candle's CPU GEMM.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>, EvalError> {
    let ta = Tensor::from_slice(a, (m, k), &Device::Cpu)?;
    let tb = Tensor::from_slice(b, (k, n), &Device::Cpu)?;
    Ok(ta.matmul(&tb)?.flatten_all()?.to_vec1()?)
}

/// The positive semi-definite square root `V·diag(√λ)·Vᵀ` of a symmetric positive
/// semi-definite matrix; eigenvalues that rounding made slightly negative count as 0.
pub fn psd_sqrt(a: &[f64], n: usize) -> Result<Vec<f64>, EvalError> {
    let eig = symmetric_eigen(a, n);
    // Rows of `scaled` are λᵢ^{1/4}·vᵢ, so scaledᵀ·scaled = Σ √λᵢ vᵢvᵢᵀ.
    let mut scaled = eig.vectors;
    for (i, &l) in eig.values.iter().enumerate() {
        let w = l.max(0.0).sqrt().sqrt();
        scaled[i * n..(i + 1) * n].iter_mut().for_each(|x| *x *= w);
    }
    let t = transpose(&scaled, n);
    matmul(&t, &scaled, n, n, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric matrix with known eigenvalues: `Q diag(λ) Qᵀ` with `Q` a product of
    /// Givens rotations.
    fn with_eigenvalues(values: &[f64]) -> Vec<f64> {
        let n = values.len();
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            q[i * n + i] = 1.0;
        }
        for (k, (i, j)) in (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).enumerate() {
            let t = 0.3 + 0.7 * k as f64;
            let (c, s) = (t.cos(), t.sin());
            for r in 0..n {
                let (a, b) = (q[r * n + i], q[r * n + j]);
                q[r * n + i] = c * a - s * b;
                q[r * n + j] = s * a + c * b;
            }
        }
        let mut out = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..n {
                out[r * n + c] = (0..n).map(|k| q[r * n + k] * values[k] * q[c * n + k]).sum();
            }
        }
        out
    }

    #[test]
    fn eigenvalues_of_a_rotated_diagonal_are_recovered() {
        let values = [-2.0, 0.0, 0.0, 1e-9, 0.5, 3.0, 7.25];
        let a = with_eigenvalues(&values);
        let eig = symmetric_eigen(&a, values.len());
        for (got, want) in eig.values.iter().zip(values) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn eigenvectors_reconstruct_the_matrix() {
        let n = 9;
        let a: Vec<f64> = (0..n * n).map(|k| { let (i, j) = (k / n, k % n); ((i * j) as f64 * 0.37).sin() + ((i + j) as f64).cos() }).collect();
        let eig = symmetric_eigen(&a, n);
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n).map(|k| eig.vectors[k * n + i] * eig.values[k] * eig.vectors[k * n + j]).sum();
                assert!((r - a[i * n + j]).abs() < 1e-12, "({i},{j}): {r} vs {}", a[i * n + j]);
            }
        }
    }

    #[test]
    fn psd_sqrt_squares_back_including_singular_matrices() {
        let values = [0.0, 0.0, 1e-3, 2.0, 9.0];
        let a = with_eigenvalues(&values);
        let s = psd_sqrt(&a, 5).unwrap();
        let back = matmul(&s, &s, 5, 5, 5).unwrap();
        for (x, y) in back.iter().zip(&a) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}
