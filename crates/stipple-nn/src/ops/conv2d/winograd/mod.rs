//! Winograd's minimal filtering algorithms F(m×m, 3×3) for stride-1 "same" 3×3 convolutions in
//! f32 (Lavin and Gray, *Fast Algorithms for Convolutional Neural Networks*, CVPR 2016): each
//! `m×m` block of outputs ("tile") of a channel is `Aᵀ [Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B)] A` with
//! `d_c` the `n×n` input patch around the tile (`n = m + 2`) and `g_oc` the 3×3 kernel: `n²`
//! multiplications per tile and channel pair instead of `9·m²` (16 instead of 36 for
//! [`F2x2`], 36 instead of 144 for [`F4x4`]). The sum over the input channels is, for each of
//! the `n²` positions `ξ` of the transformed tile, one GEMM `M_ξ (O, tiles) = U_ξ (O, C) · V_ξ
//! (C, tiles)` (the `gemm` crate through [`matmul`]), over chunks of about [`CHUNK`] tiles. The
//! matrices `Bᵀ`, `G` and `Aᵀ` of each
//! algorithm are in its module.

mod f2x2;
mod f4x4;
mod lanes;
mod transform;

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::{Add, Neg, Sub};

use gemm::Parallelism;
use rayon::prelude::*;

use super::block_transpose::transpose;
use super::elem::{return_weight_buffer, weight_buffer};
use super::geometry::Geom;
use super::norm::Norm;
use crate::ops::group_norm::normalise_plane;
use crate::ops::scratch;
use crate::ops::matmul::{self, Mat};
use crate::ops::simd;

use f2x2::F2x2;
use f4x4::F4x4;
use lanes::{Lanes, LANES};
use transform::Band;

/// Tiles per chunk (rounded to whole rows of tiles). Chunks of 64 to 1024 tiles timed within 5%
/// of each other for F(4×4, 3×3) (320→320 at 64×64, 512→512 at 128×128, 256→256 at 256×256,
/// 128→128 at 512×512; one thread), 256 the fastest or equal: fewer tiles pack `U` more often
/// for the same products, more spill the transformed tiles further out of cache.
const CHUNK: usize = 256;

/// One algorithm F(m×m, 3×3) with `n = m + 2`: its three transforms, each applied to the rows
/// and then to the columns of a tile.
trait Tiling<const N: usize, const M: usize> {
    /// The type `G g Gᵀ` is computed in before it is rounded to f32: f32 where `G` holds only
    /// halves (every product exact), f64 where it holds fractions inexact in binary.
    type Weight: WeightFloat;
    /// `G g` for a column `g` of 3 kernel taps (of several input channels).
    fn kernel(g: [Lanes<Self::Weight>; 3]) -> [Lanes<Self::Weight>; N];
    /// `Bᵀ d` for a column `d` of `n` inputs (of several tiles).
    fn input(d: [Lanes; N]) -> [Lanes; N];
    /// `Aᵀ m` for a column `m` of `n` transformed products (of several tiles).
    fn output(m: [Lanes; N]) -> [Lanes; M];
}

/// Which Winograd algorithm computes a layer ([`super::geometry::Geom::winograd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    F2x2,
    F4x4,
}

/// The transformed weight `U[o][ξ][c] = (G g_oc Gᵀ)[ξ]`, `(out, n², in)`: `U_ξ` is the `(out,
/// in)` matrix of rows `n²·in` apart from offset `ξ·in`.
pub(super) struct Transformed {
    u: Vec<f32>,
    variant: Variant,
}

impl Drop for Transformed {
    fn drop(&mut self) {
        return_weight_buffer(std::mem::take(&mut self.u));
    }
}

impl Transformed {
    /// `w` holds the 9 taps of output channel `o` and input channel `c` at `o·out_stride +
    /// c·in_stride` (in reverse order when `flip`).
    fn new(variant: Variant, out: usize, inp: usize, w: &[f32], strides: (usize, usize), flip: bool) -> Self {
        let u = match variant {
            Variant::F2x2 => transform_weight::<4, 2, F2x2>(out, inp, w, strides, flip),
            Variant::F4x4 => transform_weight::<6, 4, F4x4>(out, inp, w, strides, flip),
        };
        Self { u, variant }
    }

    /// `W (O, C, 3, 3)` for the forward pass.
    pub(super) fn forward(variant: Variant, g: &Geom, w: &[f32]) -> Self {
        Self::new(variant, g.o, g.c, w, (g.c * 9, 9), false)
    }

    /// `W'[c, o, t] = W[o, c, 8 − t]` for the gradient w.r.t. the input (a forward convolution
    /// of `dy` from `O` channels to `C`).
    pub(super) fn input_gradient(variant: Variant, g: &Geom, w: &[f32]) -> Self {
        Self::new(variant, g.c, g.o, w, (9, g.c * 9), true)
    }
}

/// `U` of [`Transformed`] for the algorithm `F`, [`WEIGHT_ROWS`] output channels per task.
fn transform_weight<const N: usize, const M: usize, F: Tiling<N, M>>(
    out: usize,
    inp: usize,
    w: &[f32],
    strides: (usize, usize),
    flip: bool,
) -> Vec<f32> {
    assert!(out == 0 || inp == 0 || (out - 1) * strides.0 + (inp - 1) * strides.1 + 9 <= w.len());
    let mut u = weight_buffer(N * N * out * inp);
    u.par_chunks_mut((WEIGHT_ROWS * N * N * inp).max(1)).enumerate().for_each(|(block, u)| {
        let taps = &w[block * WEIGHT_ROWS * strides.0..];
        simd::dispatch(WeightRows::<N, M, F> { taps, strides, inp, flip, u, tiling: PhantomData })
    });
    u
}

/// Output channels per task of [`transform_weight`].
const WEIGHT_ROWS: usize = 16;

/// `U[o]` of up to [`WEIGHT_ROWS`] consecutive output channels `o`: the taps of all input
/// channels of `o` transposed to 9 rows (one 16 × 16 block transpose at a time), then
/// [`LANES`] input channels at a time (so that the arithmetic is vector code and each of the
/// `n²` rows of `U[o]` is written in runs).
struct WeightRows<'a, const N: usize, const M: usize, F> {
    /// The taps of output channel `o` (of the block) and input channel `c` at `o·strides.0 +
    /// c·strides.1`.
    taps: &'a [f32],
    strides: (usize, usize),
    inp: usize,
    flip: bool,
    u: &'a mut [f32],
    tiling: PhantomData<F>,
}

impl<const N: usize, const M: usize, F: Tiling<N, M>> WeightRows<'_, N, M, F> {
    /// `U[o][ξ][c0..c0 + LANES]` (fewer past the last input channel) from `rows`, the taps of
    /// `U[o]`'s input channels transposed to 9 rows of `inp` values. A method, not a closure: a
    /// closure would be a function of its own, compiled without the vector instructions that
    /// [`simd::dispatch`] enables. `FULL`: `LANES` channels remain, a constant count that
    /// makes every copy of lanes one vector load or store.
    #[inline(always)]
    fn lanes<const FULL: bool>(&mut self, rows: &[f32], o: usize, c0: usize) {
        let inp = self.inp;
        let count = if FULL { LANES } else { LANES.min(inp - c0) };
        // g[r][q]: tap (r, q) of the channels (zero past the last one).
        let mut g = [[Lanes::<F::Weight>::zero(); 3]; 3];
        for t in 0..9 {
            let tap = if self.flip { 8 - t } else { t };
            for (g, &v) in g[tap / 3][tap % 3].0.iter_mut().zip(&rows[t * inp + c0..][..count]) {
                *g = F::Weight::from(v);
            }
        }
        // G g (n×3) column by column, then (G g) Gᵀ (n×n) row by row.
        // gg[a][q] = (G g)[a][q].
        let mut gg = [[Lanes::<F::Weight>::zero(); 3]; N];
        for q in 0..3 {
            for (a, v) in F::kernel([g[0][q], g[1][q], g[2][q]]).into_iter().enumerate() {
                gg[a][q] = v;
            }
        }
        for (a, &gg) in gg.iter().enumerate() {
            for (b, x) in F::kernel(gg).iter().enumerate() {
                for (u, &x) in self.u[(o * N * N + a * N + b) * inp + c0..][..count].iter_mut().zip(&x.0) {
                    *u = x.to_f32();
                }
            }
        }
    }
}

impl<const N: usize, const M: usize, F: Tiling<N, M>> pulp::WithSimd for WeightRows<'_, N, M, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, _: S) {
        let (inp, (out_stride, in_stride)) = (self.inp, self.strides);
        let mut rows = vec![0.0f32; 9 * inp];
        for o in 0..self.u.len() / (N * N * inp).max(1) {
            transpose(&self.taps[o * out_stride..], in_stride, inp, 9, &mut rows, inp);
            let full = inp / LANES * LANES;
            for c0 in (0..full).step_by(LANES) {
                self.lanes::<true>(&rows, o, c0);
            }
            if full < inp {
                self.lanes::<false>(&rows, o, full);
            }
        }
    }
}

/// The arithmetic of [`Tiling::kernel`]: f32 or f64.
trait WeightFloat: Copy + Default + From<f32> + Add<Output = Self> + Sub<Output = Self> + Neg<Output = Self> {
    /// The value rounded to f32.
    fn to_f32(self) -> f32;
}

impl WeightFloat for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl WeightFloat for f64 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// One sample: `y (O, H, W) := conv(norm(x) (C, H, W)) [+ bias (O)]` for a stride-1 3×3
/// convolution with padding 1 from `C = x.len() / (H·W)` channels to `O = y.len() / (H·W)`,
/// with `u` from [`Transformed`] for these channel counts and `norm` (the sample's
/// coefficients) the identity when `None`; `par` spreads the GEMMs and the transforms over the
/// threads. Every output is summed in the same order whatever the threads, and every value of
/// `y` is written.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(g: &Geom, x: &[f32], u: &Transformed, bias: Option<&[f32]>, norm: Option<Norm>, y: &mut [MaybeUninit<f32>], scratch: &mut Vec<f32>, par: Parallelism) {
    match u.variant {
        Variant::F2x2 => tiles::<4, 2, F2x2>(g, x, &u.u, bias, norm, y, scratch, par),
        Variant::F4x4 => tiles::<6, 4, F4x4>(g, x, &u.u, bias, norm, y, scratch, par),
    }
}

/// [`forward`] with the algorithm `F`.
#[allow(clippy::too_many_arguments)]
fn tiles<const N: usize, const M: usize, F: Tiling<N, M>>(
    g: &Geom,
    x: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    norm: Option<Norm>,
    y: &mut [MaybeUninit<f32>],
    scratch: &mut Vec<f32>,
    par: Parallelism,
) {
    let (h, w, hw, nn) = (g.h, g.w, g.h * g.w, N * N);
    let (c, o) = (x.len() / hw.max(1), y.len() / hw.max(1));
    assert!(x.len() == c * hw && y.len() == o * hw && u.len() == nn * o * c);
    assert!(bias.is_none_or(|b| b.len() == o));
    let (th, tw) = (h.div_ceil(M), w.div_ceil(M));
    let rows = CHUNK.div_ceil(tw).clamp(1, th.max(1));
    let threaded = !matches!(par, Parallelism::None);
    for ty0 in (0..th).step_by(rows) {
        let ty1 = (ty0 + rows).min(th);
        let nt = (ty1 - ty0) * tw;
        scratch.resize(nn * nt * (c + o), 0.0);
        let (v, m) = scratch.split_at_mut(nn * nt * c);
        let band = Band { rows: ty0..ty1, tw, nt, h, w };
        // V[c][ξ][t] = (Bᵀ d B)[ξ] for the n×n patch d of rows m·ty − 1.., columns m·tx − 1..
        // (zero outside the image).
        // With `norm`, the input rows the band's tiles read (m·ty0 − 1 to m·ty1, inside the
        // image) normalised into a plane-sized scratch buffer first (its other rows are not
        // read).
        let (r0, r1) = ((M * ty0).saturating_sub(1), (M * ty1 + 1).min(h));
        let input = |(ci, vc): (usize, &mut [f32])| {
            let plane = &x[ci * hw..][..hw];
            let Some(norm) = norm else {
                return transform::input::<N, M, F>(&band, plane, vc);
            };
            scratch::with(hw, |rows: &mut [f32]| {
                normalise_plane(&mut rows[r0 * w..r1 * w], &plane[r0 * w..r1 * w], norm.coefficients[ci], norm.silu);
                transform::input::<N, M, F>(&band, rows, vc);
            });
        };
        if threaded {
            v.par_chunks_mut(nn * nt).enumerate().for_each(input);
        } else {
            v.chunks_mut(nn * nt).enumerate().for_each(input);
        }
        // M[o][ξ][t] = Σ_c U[ξ][o][c] · V[c][ξ][t].
        for xi in 0..nn {
            // SAFETY: U_ξ is (O, C) at row stride n²·C from offset ξ·C, V_ξ (C, nt) at row stride n²·nt from offset ξ·nt,
            // M_ξ likewise (O, nt); all inside their buffers, M apart from U and V.
            unsafe {
                let lhs = Mat::rows(&u[xi * c..], nn * c);
                let rhs = Mat::rows(&v[xi * nt..], nn * nt);
                matmul::matmul(o, nt, c, m.as_mut_ptr().add(xi * nt), nn * nt, false, lhs, rhs, 1.0, 1.0, par);
            }
        }
        let m: &[f32] = m;
        // y[o][m·ty + a][m·tx + b] = (Aᵀ M A)[a][b] + bias[o], inside the image.
        let output = |(oi, yo): (usize, &mut [MaybeUninit<f32>])| {
            transform::output::<N, M, F>(&band, &m[oi * nn * nt..][..nn * nt], bias.map_or(0.0, |b| b[oi]), yo)
        };
        if threaded {
            y.par_chunks_mut(hw).enumerate().for_each(output);
        } else {
            y.chunks_mut(hw).enumerate().for_each(output);
        }
    }
}
