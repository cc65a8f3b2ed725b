//! Dense symmetric linear algebra in f64 for the Fréchet distance's matrix square root:
//! eigenvalues of a symmetric matrix, and a factor `L` with `Σ = L·Lᵀ` of a positive
//! semi-definite one.
//!
//! The eigenvalues come from EISPACK's `tred2` (Householder reduction to tridiagonal form,
//! here without accumulating the transformations) followed by `tql2` (implicit QL iterations,
//! here without eigenvectors), as transcribed in JAMA's `EigenvalueDecomposition` (public
//! domain, Hicklin, Moler, Webb et al.). The factor is the pivoted (rank-revealing) Cholesky
//! factorisation of LAPACK's `dpstrf`, with its default tolerance `n·ε·max Σᵢᵢ`: exact for
//! matrices of any rank, which covariance estimates from fewer samples than dimensions are.

use candle_core::{Device, Tensor};

use crate::EvalError;

/// The eigenvalues, ascending, of the symmetric `n × n` row-major matrix `a` (its upper
/// triangle is read).
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(&mut a.to_vec(), &mut d, &mut e, n);
    tql2(&mut d, &mut e, n);
    d.sort_by(f64::total_cmp);
    d
}

/// Householder reduction of the symmetric `v` to a tridiagonal matrix with diagonal `d` and
/// sub-diagonal `e[1..]` (JAMA `tred2` without the accumulation of the transformations).
///
/// JAMA walks the lower triangle column by column; this walks the same entries of the
/// transposed (equal, since symmetric) matrix row by row, so the O(n³) loops read memory
/// contiguously: JAMA's `V[k][j]` is `v[j·n + k]` here.
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for j in 0..n {
        d[j] = v[j * n + n - 1];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[j * n + i - 1];
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
                let row = &v[j * n..j * n + i];
                let mut g = e[j] + row[j] * f;
                for k in j + 1..i {
                    g += row[k] * d[k];
                    e[k] += row[k] * f;
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
                let row = &mut v[j * n..j * n + i];
                for k in j..i {
                    row[k] -= f * e[k] + g * d[k];
                }
                d[j] = v[j * n + i - 1];
            }
        }
        d[i] = h;
    }
    // The reduction leaves the tridiagonal's diagonal on v's (JAMA moves it to d while
    // accumulating).
    for (i, di) in d.iter_mut().enumerate() {
        *di = v[i * n + i];
    }
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal `(d, e)`, leaving the eigenvalues in `d`
/// (JAMA `tql2` without the eigenvectors).
fn tql2(d: &mut [f64], e: &mut [f64], n: usize) {
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

/// A factor `L` (`n × r`, row-major, `r` = the numerical rank) with `a = L·Lᵀ`, of the
/// symmetric positive semi-definite `n × n` matrix `a`, by Cholesky factorisation with
/// complete (diagonal) pivoting, stopped when the largest remaining pivot is at most
/// `n·ε·max aᵢᵢ` (LAPACK `dpstrf`'s default tolerance). Returns `(L, r)`.
pub fn pivoted_cholesky(a: &[f64], n: usize) -> (Vec<f64>, usize) {
    let mut s = a.to_vec();
    let mut l = vec![0.0; n * n];
    let mut perm: Vec<usize> = (0..n).collect();
    let max_diag = (0..n).map(|i| a[i * n + i]).fold(0.0, f64::max);
    let tol = n as f64 * f64::EPSILON * max_diag;
    let mut rank = 0;
    let mut col = vec![0.0; n];
    for j in 0..n {
        let p = (j..n).max_by(|&x, &y| s[x * n + x].total_cmp(&s[y * n + y])).expect("j < n");
        if s[p * n + p] <= tol {
            break;
        }
        if p != j {
            for k in 0..n {
                s.swap(j * n + k, p * n + k);
            }
            for k in 0..n {
                s.swap(k * n + j, k * n + p);
            }
            for k in 0..j {
                l.swap(j * n + k, p * n + k);
            }
            perm.swap(j, p);
        }
        let pivot = s[j * n + j].sqrt();
        l[j * n + j] = pivot;
        for i in j + 1..n {
            col[i] = s[i * n + j] / pivot;
            l[i * n + j] = col[i];
        }
        // Schur complement of the pivot.
        for i in j + 1..n {
            let ci = col[i];
            let row = &mut s[i * n + j + 1..i * n + n];
            for (x, c) in row.iter_mut().zip(&col[j + 1..n]) {
                *x -= ci * c;
            }
        }
        rank = j + 1;
    }
    let mut out = vec![0.0; n * rank];
    for (i, &orig) in perm.iter().enumerate() {
        out[orig * rank..(orig + 1) * rank].copy_from_slice(&l[i * n..i * n + rank]);
    }
    (out, rank)
}

/// `a · b` for row-major `a` (`m × k`) and `b` (`k × n`), on candle's CPU GEMM.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>, EvalError> {
    let ta = Tensor::from_slice(a, (m, k), &Device::Cpu)?;
    let tb = Tensor::from_slice(b, (k, n), &Device::Cpu)?;
    Ok(ta.matmul(&tb)?.flatten_all()?.to_vec1()?)
}

/// The transpose of the row-major `rows × cols` matrix `a`.
pub fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
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
        let got = symmetric_eigenvalues(&with_eigenvalues(&values), values.len());
        for (g, w) in got.iter().zip(values) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }

    #[test]
    fn pivoted_cholesky_reveals_the_rank_and_reconstructs_the_matrix() {
        let values = [0.0, 0.0, 1e-3, 2.0, 9.0, 0.0];
        let a = with_eigenvalues(&values);
        let (l, r) = pivoted_cholesky(&a, 6);
        assert_eq!(r, 3);
        let back = matmul(&l, &transpose(&l, 6, r), 6, r, 6).unwrap();
        for (x, y) in back.iter().zip(&a) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}
