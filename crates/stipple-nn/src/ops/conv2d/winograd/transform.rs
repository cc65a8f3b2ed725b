//! The input and output transforms of one channel over a band of tile rows, [`LANES`] tiles
//! at a time, as vector code ([`Lanes`], compiled for this CPU by [`simd::dispatch`]).
//!
//! The tiles of a row start `m` columns apart and are `n = m + 2` wide, so the input rows are
//! first split by column phase: `phases[r][k][j] = d[r][m·j + k]`. Column `k < m` of tile `j`
//! is then `phases[r][k][j]` and column `m + k` is `phases[r][k][j + 1]`: whole vectors of
//! consecutive tiles, read without gathers.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use super::lanes::{Lanes, LANES};
use super::Tiling;
use crate::ops::simd;

/// The tile rows `rows` of a channel's `H×W` plane, `tw` tiles each: the `nt` tiles of a chunk,
/// numbered row-major from the first tile of the first row.
#[derive(Clone)]
pub(super) struct Band {
    pub(super) rows: std::ops::Range<usize>,
    pub(super) tw: usize,
    pub(super) nt: usize,
    pub(super) h: usize,
    pub(super) w: usize,
}

/// `V[ξ][t] = (Bᵀ d B)[ξ]` for the tiles `t` of a [`Band`] of one input channel `plane (H, W)`,
/// `v` holding `n²` rows of `nt` values.
pub(super) fn input<const N: usize, const M: usize, F: Tiling<N, M>>(band: &Band, plane: &[f32], v: &mut [f32]) {
    simd::dispatch(Input::<N, M, F> { band, plane, v, tiling: PhantomData })
}

/// `y[m·ty + a][m·tx + b] = (Aᵀ M A)[a][b] + add` inside the image for the tiles of a [`Band`]
/// of one output channel, `mo` holding `n²` rows of `nt` products `M[ξ][t]`.
pub(super) fn output<const N: usize, const M: usize, F: Tiling<N, M>>(band: &Band, mo: &[f32], add: f32, y: &mut [MaybeUninit<f32>]) {
    simd::dispatch(Output::<N, M, F> { band, mo, add, y, tiling: PhantomData })
}

struct Input<'a, const N: usize, const M: usize, F> {
    band: &'a Band,
    plane: &'a [f32],
    v: &'a mut [f32],
    tiling: PhantomData<F>,
}

impl<const N: usize, const M: usize, F: Tiling<N, M>> pulp::WithSimd for Input<'_, N, M, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Band { rows, tw, nt, h, w } = self.band.clone();
        // Phases for the tiles in whole vectors plus the one after the last.
        let jw = tw.next_multiple_of(LANES) + 1;
        let mut phases = vec![0.0f32; N * M * jw];
        for ty in rows.clone() {
            // phases[(r·m + k)·jw + j] = x[m·ty + r − 1][m·j + k − 1], zero outside the image.
            for (r, dst) in phases.chunks_exact_mut(M * jw).enumerate() {
                let Some(row) = (M * ty + r).checked_sub(1).filter(|&ih| ih < h).map(|ih| &self.plane[ih * w..][..w]) else {
                    dst.fill(0.0);
                    continue;
                };
                for (k, dst) in dst.chunks_exact_mut(jw).enumerate() {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = (M * j + k).checked_sub(1).and_then(|iw| row.get(iw)).copied().unwrap_or(0.0);
                    }
                }
            }
            let t0 = (ty - rows.start) * tw;
            for tx0 in (0..tw).step_by(LANES) {
                let column = |r: usize, k: usize| {
                    let (k, next) = if k < M { (k, 0) } else { (k - M, 1) };
                    let mut l = Lanes::zero();
                    l.0.copy_from_slice(&phases[(r * M + k) * jw + tx0 + next..][..LANES]);
                    l
                };
                // Bᵀ d B: the rows of d, then the columns.
                let e: [[Lanes; N]; N] = std::array::from_fn(|r| F::input(std::array::from_fn(|k| column(r, k))));
                let count = LANES.min(tw - tx0);
                let columns = (0..N).map(|s| (s, F::input(std::array::from_fn(|r| e[r][s]))));
                for (s, column) in columns {
                    for (a, col) in column.into_iter().enumerate() {
                        self.v[(N * a + s) * nt + t0 + tx0..][..count].copy_from_slice(&col.0[..count]);
                    }
                }
            }
        }
    }
}

struct Output<'a, const N: usize, const M: usize, F> {
    band: &'a Band,
    mo: &'a [f32],
    add: f32,
    y: &'a mut [MaybeUninit<f32>],
    tiling: PhantomData<F>,
}

impl<const N: usize, const M: usize, F: Tiling<N, M>> pulp::WithSimd for Output<'_, N, M, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Band { rows, tw, nt, h, w } = self.band.clone();
        // The m output rows of one row of tiles, interleaved back from the lanes.
        let rw = M * tw.next_multiple_of(LANES);
        let mut out = vec![0.0f32; M * rw];
        for ty in rows.clone() {
            let t0 = (ty - rows.start) * tw;
            for tx0 in (0..tw).step_by(LANES) {
                let count = LANES.min(tw - tx0);
                let product = |a: usize, s: usize| {
                    let mut l = Lanes::zero();
                    l.0[..count].copy_from_slice(&self.mo[(N * a + s) * nt + t0 + tx0..][..count]);
                    l
                };
                // Aᵀ M A: the columns of M, then the rows.
                let cols: [[Lanes; M]; N] = std::array::from_fn(|s| F::output(std::array::from_fn(|a| product(a, s))));
                for (a, out) in out.chunks_exact_mut(rw).enumerate() {
                    let row = F::output(std::array::from_fn(|s| cols[s][a]));
                    for (l, dst) in out[M * tx0..][..M * LANES].chunks_exact_mut(M).enumerate() {
                        for (d, v) in dst.iter_mut().zip(&row) {
                            *d = v.0[l] + self.add;
                        }
                    }
                }
            }
            for (a, out) in out.chunks_exact(rw).enumerate().filter(|&(a, _)| M * ty + a < h) {
                for (y, &v) in self.y[(M * ty + a) * w..][..w].iter_mut().zip(&out[..w]) {
                    y.write(v);
                }
            }
        }
    }
}
