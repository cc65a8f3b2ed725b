//! Winograd's minimal filtering F(2×2, 3×3) for stride-1 "same" 3×3 convolutions in f32 (Lavin
//! and Gray, *Fast Algorithms for Convolutional Neural Networks*, CVPR 2016): each 2×2 block of
//! outputs ("tile") of a channel is `Aᵀ [Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B)] A` with `d_c` the 4×4
//! input patch around the tile and `g_oc` the 3×3 kernel, 16 multiplications per tile and
//! channel pair instead of 36. The sum over the input channels is, for each of the 16 positions
//! `ξ` of the 4×4 transformed tile, one GEMM `M_ξ (O, tiles) = U_ξ (O, C) · V_ξ (C, tiles)` (the
//! `gemm` crate through [`matmul`]), over chunks of about [`CHUNK`] tiles so that the
//! transformed tiles stay in cache.
//!
//! - `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`,
//! - `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`,
//! - `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.

use gemm::Parallelism;
use rayon::prelude::*;

use super::elem::{return_weight_buffer, weight_buffer};
use super::geometry::Geom;
use crate::ops::matmul::{self, Mat};

/// Tiles per chunk (rounded to whole rows of tiles).
const CHUNK: usize = 256;

/// `G (g0, g1, g2)`.
fn gt([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// The transformed weight `U[o][ξ][c] = (G g_oc Gᵀ)[ξ]`, `(out, 16, in)`: `U_ξ` is the `(out,
/// in)` matrix of rows `16·in` apart from offset `ξ·in`.
pub(super) struct Transformed(Vec<f32>);

impl Drop for Transformed {
    fn drop(&mut self) {
        return_weight_buffer(std::mem::take(&mut self.0));
    }
}

impl Transformed {
    /// `w` holds the 9 taps of output channel `o` and input channel `c` at `o·out_stride +
    /// c·in_stride` (in reverse order when `flip`).
    fn new(out: usize, inp: usize, w: &[f32], (out_stride, in_stride): (usize, usize), flip: bool) -> Self {
        assert!(out == 0 || inp == 0 || (out - 1) * out_stride + (inp - 1) * in_stride + 9 <= w.len());
        let mut u = weight_buffer(16 * out * inp);
        u.par_chunks_mut((16 * inp).max(1)).enumerate().for_each(|(o, u)| {
            for c in 0..inp {
                let taps: &[f32; 9] = w[o * out_stride + c * in_stride..][..9].try_into().expect("9 taps");
                let tap = |r: usize, q: usize| taps[if flip { 8 - 3 * r - q } else { 3 * r + q }];
                // G g (4×3) column by column, then (G g) Gᵀ (4×4) row by row.
                let cols = [0, 1, 2].map(|q| gt([tap(0, q), tap(1, q), tap(2, q)]));
                for a in 0..4 {
                    for (b, v) in gt([cols[0][a], cols[1][a], cols[2][a]]).into_iter().enumerate() {
                        u[(4 * a + b) * inp + c] = v;
                    }
                }
            }
        });
        Self(u)
    }

    /// `W (O, C, 3, 3)` for the forward pass.
    pub(super) fn forward(g: &Geom, w: &[f32]) -> Self {
        Self::new(g.o, g.c, w, (g.c * 9, 9), false)
    }

    /// `W'[c, o, t] = W[o, c, 8 − t]` for the gradient w.r.t. the input (a forward convolution
    /// of `dy` from `O` channels to `C`).
    pub(super) fn input_gradient(g: &Geom, w: &[f32]) -> Self {
        Self::new(g.c, g.o, w, (9, g.c * 9), true)
    }
}

/// `Bᵀ (d0, d1, d2, d3)`.
fn bt([d0, d1, d2, d3]: [f32; 4]) -> [f32; 4] {
    [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
}

/// `Aᵀ (m0, m1, m2, m3)`.
fn at([m0, m1, m2, m3]: [f32; 4]) -> [f32; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// One sample: `y (O, H, W) := conv(x (C, H, W)) [+ bias (O)]` for a stride-1 3×3 convolution
/// with padding 1 from `C = x.len() / (H·W)` channels to `O = y.len() / (H·W)`, with `u` from
/// [`Transformed`] for these channel counts; `par` spreads the GEMMs and the transforms over the
/// threads. Every output is summed in the same order whatever the threads.
pub(super) fn forward(g: &Geom, x: &[f32], u: &Transformed, bias: Option<&[f32]>, y: &mut [f32], scratch: &mut Vec<f32>, par: Parallelism) {
    let (h, w, hw) = (g.h, g.w, g.h * g.w);
    let (c, o) = (x.len() / hw.max(1), y.len() / hw.max(1));
    assert!(x.len() == c * hw && y.len() == o * hw && u.0.len() == 16 * o * c);
    assert!(bias.is_none_or(|b| b.len() == o));
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let rows = CHUNK.div_ceil(tw).clamp(1, th.max(1));
    let threaded = !matches!(par, Parallelism::None);
    for ty0 in (0..th).step_by(rows) {
        let ty1 = (ty0 + rows).min(th);
        let nt = (ty1 - ty0) * tw;
        scratch.resize(16 * nt * (c + o), 0.0);
        let (v, m) = scratch.split_at_mut(16 * nt * c);
        // V[c][ξ][t] = (Bᵀ d B)[ξ] for the 4×4 patch d of rows 2ty − 1.., columns 2tx − 1.. (zero
        // outside the image).
        let input = |(ci, vc): (usize, &mut [f32])| {
            let plane = &x[ci * hw..][..hw];
            for ty in ty0..ty1 {
                for tx in 0..tw {
                    let t = (ty - ty0) * tw + tx;
                    let mut d = [[0.0f32; 4]; 4];
                    for (r, row) in d.iter_mut().enumerate() {
                        let Some(ih) = (2 * ty + r).checked_sub(1).filter(|&ih| ih < h) else { continue };
                        for (s, v) in row.iter_mut().enumerate() {
                            if let Some(iw) = (2 * tx + s).checked_sub(1).filter(|&iw| iw < w) {
                                *v = plane[ih * w + iw];
                            }
                        }
                    }
                    let e = d.map(bt);
                    for s in 0..4 {
                        let col = bt([e[0][s], e[1][s], e[2][s], e[3][s]]);
                        for (a, &val) in col.iter().enumerate() {
                            vc[(4 * a + s) * nt + t] = val;
                        }
                    }
                }
            }
        };
        if threaded {
            v.par_chunks_mut(16 * nt).enumerate().for_each(input);
        } else {
            v.chunks_mut(16 * nt).enumerate().for_each(input);
        }
        // M[o][ξ][t] = Σ_c U[ξ][o][c] · V[c][ξ][t].
        for xi in 0..16 {
            // SAFETY: U_ξ is (O, C) at row stride 16·C from offset ξ·C, V_ξ (C, nt) at row stride 16·nt from offset ξ·nt,
            // M_ξ likewise (O, nt); all inside their buffers, M apart from U and V.
            unsafe {
                let lhs = Mat::rows(&u.0[xi * c..], 16 * c);
                let rhs = Mat::rows(&v[xi * nt..], 16 * nt);
                matmul::matmul(o, nt, c, m.as_mut_ptr().add(xi * nt), 16 * nt, false, lhs, rhs, 1.0, 1.0, par);
            }
        }
        let m: &[f32] = m;
        // y[o][2ty + a][2tx + b] = (Aᵀ M A)[a][b] + bias[o], inside the image.
        let output = |(oi, yo): (usize, &mut [f32])| {
            let mo = &m[oi * 16 * nt..][..16 * nt];
            let add = bias.map_or(0.0, |b| b[oi]);
            for ty in ty0..ty1 {
                for tx in 0..tw {
                    let t = (ty - ty0) * tw + tx;
                    let col = |s: usize| at([mo[s * nt + t], mo[(4 + s) * nt + t], mo[(8 + s) * nt + t], mo[(12 + s) * nt + t]]);
                    let cols = [col(0), col(1), col(2), col(3)];
                    for (a, oh) in (2 * ty..(2 * ty + 2).min(h)).enumerate() {
                        let row = at(cols.map(|c| c[a]));
                        for (b, &val) in row.iter().enumerate() {
                            if 2 * tx + b < w {
                                yo[oh * w + 2 * tx + b] = val + add;
                            }
                        }
                    }
                }
            }
        };
        if threaded {
            y.par_chunks_mut(hw).enumerate().for_each(output);
        } else {
            y.chunks_mut(hw).enumerate().for_each(output);
        }
    }
}
