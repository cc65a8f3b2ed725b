//! Stride-1 "same" convolutions (a `(2p+1)×(2p+1)` kernel with padding `p`) as a sum of
//! shifted GEMMs, without an im2col matrix.
//!
//! With the input zero-padded to `(C, H + 2p, W + 2p)` and row stride `Wp = W + 2p`, the output
//! pixel `(h, w)` sits at `n = h·Wp + w` of a grid `Wp` wide, and kernel tap `(i, j)` reads the
//! padded input at `n + i·Wp + j`: for every tap the input is one strided `(C, N')` matrix
//! (rows a padded plane apart), so
//! - forward: `y = Σ_taps W_tap (O, C) · X_tap (C, N')`;
//! - gradient w.r.t. the input: the same sum on the padded gradient `dy` with the
//!   spatially flipped, transposed kernel `W'[c, o, i, j] = W[o, c, kh−1−i, kw−1−j]`;
//! - gradient w.r.t. the weight: `dW_tapᵀ (C, O) = X_tap (C, N') · dyᵀ (N', O)` with `dy` on the
//!   same grid (read from the padded `dy`, whose padding puts zeros in the `2p` extra columns).
//!
//! The grid's extra `2p` columns per row are computed and dropped. The GEMMs have depth `C`
//! (or `O`) instead of `9C`, but nothing is copied ninefold: on 32×32 maps and larger this beats
//! im2col + GEMM, whose `(9C, H·W)` matrix no longer fits the caches (see
//! [`super::Geom::shifted`]). This is the "kn2row"-style decomposition of Vasudevan, Anderson
//! and Gregg, *Parallel Multi Channel Convolution using General Matrix Multiplication* (ASAP
//! 2017), on a padded grid so that every shifted operand is a plain strided matrix.

use gemm::Parallelism;

use super::super::matmul::{self, Mat};
use super::elem::Elem;
use super::geometry::Geom;

/// Sizes of the padded planes and the output grid.
struct Grid {
    /// Padded row length `W + 2p`.
    wp: usize,
    /// Padded plane `(H + 2p)·Wp`.
    plane: usize,
    /// Grid columns computed: `(H − 1)·Wp + W` (the last row's extra columns are left out, so
    /// every tap reads inside the padded plane).
    n: usize,
    /// Grid row length of a full output plane, `H·Wp`.
    out_plane: usize,
}

impl Grid {
    fn new(g: &Geom) -> Self {
        let wp = g.w + 2 * g.p;
        Self { wp, plane: (g.h + 2 * g.p) * wp, n: (g.h - 1) * wp + g.w, out_plane: g.h * wp }
    }

    /// Offset of kernel tap `t = i·kw + j` in a padded plane.
    fn offset(&self, g: &Geom, t: usize) -> usize {
        (t / g.kw) * self.wp + t % g.kw
    }
}

/// `dst (R, H+2p, W+2p)` := `src (R, H, W)` zero-padded by `p` on every side.
fn pad<T: Elem>(g: &Geom, grid: &Grid, src: &[T], dst: &mut [T]) {
    let (h, w, p, wp) = (g.h, g.w, g.p, grid.wp);
    for (s, d) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(grid.plane)) {
        d[..p * wp + p].fill(T::ZERO);
        for r in 0..h {
            let row = &mut d[(r + p) * wp + p..][..wp];
            row[..w].copy_from_slice(&s[r * w..][..w]);
            // The right padding of this row and the left padding of the next.
            row[w..].fill(T::ZERO);
        }
        d[(h + p) * wp + p..].fill(T::ZERO);
    }
}

/// `dst (R, H, W)` := the first `W` columns of each row of the grid `src (R, H·Wp)`.
fn compact<T: Elem>(g: &Geom, grid: &Grid, src: &[T], dst: &mut [T]) {
    let (h, w) = (g.h, g.w);
    for (s, d) in src.chunks_exact(grid.out_plane).zip(dst.chunks_exact_mut(h * w)) {
        for r in 0..h {
            d[r * w..][..w].copy_from_slice(&s[r * grid.wp..][..w]);
        }
    }
}

/// `dst (m, N') [+]= Σ_t lhs(t) (m, depth) · X_t (depth, N')`, `X_t` the padded planes `xp`
/// shifted by tap `t`; `dst` rows `grid.out_plane` apart. The first tap overwrites `dst`
/// unless `accumulate`.
///
/// # Safety
/// `lhs(t)` must address an `m×depth` matrix; `xp` must hold `depth` padded planes and `dst`
/// `m` grid planes.
#[allow(clippy::too_many_arguments)]
unsafe fn shifted_sum<T: Elem>(
    g: &Geom,
    grid: &Grid,
    m: usize,
    depth: usize,
    lhs: impl Fn(usize) -> Mat<T>,
    xp: &[T],
    dst: &mut [T],
    accumulate: bool,
    par: Parallelism,
) {
    debug_assert!(xp.len() >= depth * grid.plane && dst.len() >= m * grid.out_plane);
    for t in 0..g.kh * g.kw {
        let rhs = Mat { ptr: xp[grid.offset(g, t)..].as_ptr(), rs: grid.plane, cs: 1 };
        matmul::matmul(m, grid.n, depth, dst.as_mut_ptr(), grid.out_plane, accumulate || t > 0, lhs(t), rhs, T::ONE, T::ONE, par);
    }
}

/// One sample's forward: `y_b (O, H, W) = conv(x_b) + bias_b`.
pub(super) fn forward<T: Elem>(g: &Geom, x_b: &[T], w: &[T], bias_b: &[T], y_b: &mut [T], scratch: &mut Vec<T>, par: Parallelism) {
    let grid = Grid::new(g);
    let kk = g.kh * g.kw;
    scratch.resize(g.c * grid.plane + g.o * grid.out_plane, T::ZERO);
    let (xp, yq) = scratch.split_at_mut(g.c * grid.plane);
    pad(g, &grid, x_b, xp);
    for (row, &v) in yq.chunks_exact_mut(grid.out_plane).zip(bias_b) {
        row.fill(v);
    }
    // W_t (O, C): w[o, c, t], rows C·kk apart, columns kk apart.
    let lhs = |t: usize| Mat { ptr: w[t..].as_ptr(), rs: g.c * kk, cs: kk };
    // SAFETY: W_t is (O, C) inside w; xp holds C padded planes, yq O grid planes.
    unsafe { shifted_sum(g, &grid, g.o, g.c, lhs, xp, yq, true, par) }
    compact(g, &grid, yq, y_b);
}

/// `dx_b (C, H, W)` from the padded gradient planes `dyp (O, P)`; `dxq` is scratch of `C` grid
/// planes.
fn input_gradient<T: Elem>(g: &Geom, grid: &Grid, dyp: &[T], w: &[T], dxq: &mut [T], dx_b: &mut [T], par: Parallelism) {
    let kk = g.kh * g.kw;
    // W'_t (C, O) = W[o, c, kk − 1 − t]: rows kk apart, columns C·kk apart.
    let lhs = |t: usize| Mat { ptr: w[kk - 1 - t..].as_ptr(), rs: kk, cs: g.c * kk };
    // SAFETY: W'_t is (C, O) inside w; dyp holds O padded planes, dxq C grid planes.
    unsafe { shifted_sum(g, grid, g.c, g.o, lhs, dyp, dxq, false, par) }
    compact(g, grid, dxq, dx_b);
}

/// `dwt (C·kk, O) := [dwt +] Σ_t X_t · dyᵀ` from the padded planes `xp (C, P)` and
/// `dyp (O, P)`: `dy` on the output grid is `dyp` from offset `p·Wp + p` (each row followed by
/// `2p` zeros of the padding, so the grid's extra columns add nothing).
fn weight_gradient<T: Elem>(g: &Geom, grid: &Grid, xp: &[T], dyp: &[T], dwt: &mut [T], accumulate: bool, par: Parallelism) {
    let kk = g.kh * g.kw;
    let rhs = Mat { ptr: dyp[g.p * grid.wp + g.p..].as_ptr(), rs: 1, cs: grid.plane };
    for t in 0..kk {
        let lhs = Mat { ptr: xp[grid.offset(g, t)..].as_ptr(), rs: grid.plane, cs: 1 };
        // SAFETY: X_t is (C, N') inside xp, dyᵀ is (N', O) inside dyp; rows c·kk + t of dwt
        // are O·kk apart.
        unsafe { matmul::matmul(g.c, g.o, grid.n, dwt[t * g.o..].as_mut_ptr(), kk * g.o, accumulate, lhs, rhs, T::ONE, T::ONE, par) }
    }
}

/// One sample's gradient w.r.t. the input: `dx_b (C, H, W)` from `dy_b (O, H, W)`.
pub(super) fn backward_input<T: Elem>(g: &Geom, dy_b: &[T], w: &[T], dx_b: &mut [T], scratch: &mut Vec<T>, par: Parallelism) {
    let grid = Grid::new(g);
    scratch.resize(g.o * grid.plane + g.c * grid.out_plane, T::ZERO);
    let (dyp, dxq) = scratch.split_at_mut(g.o * grid.plane);
    pad(g, &grid, dy_b, dyp);
    input_gradient(g, &grid, dyp, w, dxq, dx_b, par);
}

/// One sample's contribution to the weight gradient, `dwt (C·kk, O)` laid out like the
/// im2col path's transposed gradient (row `c·kk + t`): `dwt := [dwt +] Σ_t X_t · dyᵀ`.
pub(super) fn backward_weight<T: Elem>(
    g: &Geom,
    x_b: &[T],
    dy_b: &[T],
    dwt: &mut [T],
    accumulate: bool,
    scratch: &mut Vec<T>,
    par: Parallelism,
) {
    let grid = Grid::new(g);
    scratch.resize((g.c + g.o) * grid.plane, T::ZERO);
    let (xp, dyp) = scratch.split_at_mut(g.c * grid.plane);
    pad(g, &grid, x_b, xp);
    pad(g, &grid, dy_b, dyp);
    weight_gradient(g, &grid, xp, dyp, dwt, accumulate, par);
}

/// Both of one sample's gradients ([`backward_input`] and [`backward_weight`]) with `dy_b`
/// padded once.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Elem>(
    g: &Geom,
    x_b: &[T],
    dy_b: &[T],
    w: &[T],
    dx_b: &mut [T],
    dwt: &mut [T],
    accumulate: bool,
    scratch: &mut Vec<T>,
    par: Parallelism,
) {
    let grid = Grid::new(g);
    scratch.resize((g.c + g.o) * grid.plane + g.c * grid.out_plane, T::ZERO);
    let (xp, rest) = scratch.split_at_mut(g.c * grid.plane);
    let (dyp, dxq) = rest.split_at_mut(g.o * grid.plane);
    pad(g, &grid, dy_b, dyp);
    input_gradient(g, &grid, dyp, w, dxq, dx_b, par);
    pad(g, &grid, x_b, xp);
    weight_gradient(g, &grid, xp, dyp, dwt, accumulate, par);
}
