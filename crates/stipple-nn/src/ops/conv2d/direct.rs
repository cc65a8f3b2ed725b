//! Direct convolution kernels for f32 on CPUs with AVX-512: no im2col matrix, no GEMM packing.
//!
//! The register tile holds `16·V` output channels (one AVX-512 vector per 16) for `NR ≤ 8`
//! consecutive output pixels of one row, `V·NR ≤ 16` accumulators. For each kernel tap and input
//! channel it loads `V` vectors of weights (packed once per call so that they are read in
//! order) and broadcasts `NR` input values, each used by `V` fused multiply-adds. This is the
//! register blocking of BLIS-style GEMM micro-kernels (Van Zee and van de Geijn, *BLIS: A
//! Framework for Rapidly Instantiating BLAS Functionality*, ACM TOMS 2015) applied to the
//! convolution directly, with the output channels in the vector lanes as in oneDNN's direct
//! convolutions (Georganas et al., *Anatomy of High-Performance Deep Learning Convolutions on
//! SIMD Architectures*, SC 2018) — but on candle's `(B, C, H, W)` layout, so nothing is
//! re-laid out between ops: the tile is stored transposed into the output rows.
//!
//! - forward: `y[o, oh, ow] = Σ_{c,i,j} W[o, c, i, j] · x[c, oh·s + i − p, ow·s + j − p]` on the
//!   input padded by `p` columns on each side; kernel rows that fall outside the image are
//!   skipped for the whole tile (no multiplications by padding rows);
//! - gradient w.r.t. the input (stride 1, "same" padding): the same kernel on `dy` with the
//!   transposed, spatially flipped weight `W'[c, o, i, j] = W[o, c, kh−1−i, kw−1−j]`;
//! - gradient w.r.t. a 3×3 weight: `dWᵀ[c·9 + t, o] = Σ_{oh,ow} x_pad[c, oh·s + i, ow·s + j] ·
//!   dy[o, oh, ow]` with `16·V` output channels in the lanes and the nine taps of one input
//!   channel as the broadcasts: `dy` is transposed once per sample to `(pixels, O)`.
//!
//! Used for f32 when the channel counts in the lanes are multiples of 16 (see `super::Geom`);
//! everything else takes the im2col/shifted-GEMM paths.

// The kernels index their register arrays with constant-bound loops, which the compiler
// unrolls into registers; iterator chains over them did not always.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::Geom;

/// Output pixels per register tile (a row's last tile may be narrower).
const NR: usize = 8;

/// Whether this CPU has AVX-512F (checked once).
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

/// The channel blocks of `n` lanes (a multiple of 16): `(first channel, vectors)`, blocks of
/// 32 and a last one of 16 when `n` is an odd multiple of 16.
fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(32).map(move |c0| (c0, (n - c0).min(32) / 16))
}

/// A weight in the kernels' order: per block of output channels starting at `o0`, at offset
/// `o0·kk·cin`, the `(kk, cin, 16·V)` values of tap `t`, input channel `cc` and the block's
/// channels.
pub(super) struct Packed(Vec<f32>);

impl Packed {
    fn new(out: usize, inp: usize, kk: usize, weight: impl Fn(usize, usize, usize) -> f32) -> Self {
        let mut data = vec![0.0; out * inp * kk];
        for (o0, v) in blocks(out) {
            let lanes = 16 * v;
            let block = &mut data[o0 * kk * inp..][..lanes * kk * inp];
            for t in 0..kk {
                for cc in 0..inp {
                    for (l, d) in block[(t * inp + cc) * lanes..][..lanes].iter_mut().enumerate() {
                        *d = weight(o0 + l, cc, t);
                    }
                }
            }
        }
        Self(data)
    }

    /// `W (O, C, kh, kw)` for the forward pass.
    pub(super) fn forward(g: &Geom, w: &[f32]) -> Self {
        let kk = g.kh * g.kw;
        Self::new(g.o, g.c, kk, |o, c, t| w[(o * g.c + c) * kk + t])
    }

    /// `W'[c, o, t] = W[o, c, kk − 1 − t]` for the gradient w.r.t. the input.
    pub(super) fn input_gradient(g: &Geom, w: &[f32]) -> Self {
        let kk = g.kh * g.kw;
        Self::new(g.c, g.o, kk, |c, o, t| w[(o * g.c + c) * kk + kk - 1 - t])
    }
}

/// The geometry of the gradient w.r.t. the input of a stride-1 "same" convolution `g`, as a
/// forward convolution from `O` channels to `C`.
pub(super) fn input_gradient_geom(g: &Geom) -> Geom {
    Geom { c: g.o, o: g.c, p: g.kh - 1 - g.p, ..*g }
}

/// One sample's forward: `y_b (O, Ho, Wo) := conv(x_b (C, H, W)) + bias_b`, with `packed`
/// from [`Packed::forward`] (or the input gradient with [`input_gradient_geom`] and
/// [`Packed::input_gradient`]); `parallel` splits the output channel blocks over rayon's
/// threads. `g.o` must be a multiple of 16.
pub(super) fn forward(g: &Geom, x_b: &[f32], packed: &Packed, bias_b: Option<&[f32]>, y_b: &mut [f32], scratch: &mut Vec<f32>, parallel: bool) {
    assert!(available() && g.o.is_multiple_of(16) && packed.0.len() == g.o * g.c * g.kh * g.kw);
    assert!(x_b.len() == g.c * g.h * g.w && y_b.len() == g.o * g.ho * g.wo);
    let wp = g.w + 2 * g.p;
    scratch.resize(g.c * g.h * wp, 0.0);
    pad_columns(g.w, g.p, x_b, scratch);
    let xh: &[f32] = scratch;
    let pixels = g.ho * g.wo;
    let block = |(bi, y): (usize, &mut [f32])| {
        let o0 = bi * 32;
        let v = y.len() / (16 * pixels);
        // SAFETY: AVX-512F is available (asserted); the packed block, `xh` and `y`'s rows have
        // the sizes asserted above, and `tile` reads inside them (see there).
        unsafe { block_rows(g, &packed.0[o0 * g.kh * g.kw * g.c..], xh, y, v, bias_b.map(|b| &b[o0..])) }
    };
    if parallel {
        y_b.par_chunks_mut(32 * pixels).enumerate().for_each(block);
    } else {
        y_b.chunks_mut(32 * pixels).enumerate().for_each(block);
    }
}

/// `dst (R, W + 2p)` := the rows `src (R, W)` with `p` zero columns on each side.
fn pad_columns(w: usize, p: usize, src: &[f32], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w + 2 * p)) {
        d[..p].fill(0.0);
        d[p..p + w].copy_from_slice(s);
        d[p + w..].fill(0.0);
    }
}

/// All tiles of one block of `16·v` output channels (`y`: their rows).
///
/// # Safety
/// AVX-512F must be available; `a` must hold the block's packed weight.
#[target_feature(enable = "avx512f")]
unsafe fn block_rows(g: &Geom, a: &[f32], xh: &[f32], y: &mut [f32], v: usize, bias: Option<&[f32]>) {
    for oh in 0..g.ho {
        for ow0 in (0..g.wo).step_by(NR) {
            let nr = (g.wo - ow0).min(NR);
            let t = Tile { g, a, xh, oh, ow0 };
            macro_rules! run {
                ($v:literal, [$($n:literal)*]) => {
                    match nr {
                        $($n => t.run::<$v, $n>(y, bias),)*
                        _ => unreachable!(),
                    }
                };
            }
            match v {
                1 => run!(1, [1 2 3 4 5 6 7 8]),
                _ => run!(2, [1 2 3 4 5 6 7 8]),
            }
        }
    }
}

/// One register tile: output row `oh`, pixels `ow0..ow0 + N`.
struct Tile<'a> {
    g: &'a Geom,
    a: &'a [f32],
    xh: &'a [f32],
    oh: usize,
    ow0: usize,
}

impl Tile<'_> {
    /// `y[o, oh, ow0 + n] = bias[o] + Σ` for the block's `16·V` channels `o`.
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const V: usize, const N: usize>(&self, y: &mut [f32], bias: Option<&[f32]>) {
        let g = self.g;
        let (kk, wp) = (g.kh * g.kw, g.w + 2 * g.p);
        let plane = g.h * wp;
        let lanes = 16 * V;
        debug_assert!(self.a.len() >= lanes * kk * g.c && y.len() >= lanes * g.ho * g.wo);
        let mut acc = [[_mm512_setzero_ps(); N]; V];
        for i in 0..g.kh {
            // Kernel rows outside the image contribute nothing to this output row.
            let Some(ih) = g.input_row(i, self.oh) else { continue };
            for j in 0..g.kw {
                let t = i * g.kw + j;
                // Tap (i, j) of pixel ow0 + n reads column (ow0 + n)·s + j of the padded row:
                // at most (Wo − 1)·s + kw − 1 < W + 2p.
                let b = self.xh.as_ptr().add(ih * wp + self.ow0 * g.s + j);
                tap(&mut acc, self.a.as_ptr().add(t * g.c * lanes), b, g.c, plane, g.s);
            }
        }
        let mut out = [[[0.0f32; 16]; N]; V];
        for v in 0..V {
            for n in 0..N {
                _mm512_storeu_ps(out[v][n].as_mut_ptr(), acc[v][n]);
            }
        }
        let pixels = g.ho * g.wo;
        for v in 0..V {
            for l in 0..16 {
                let o = 16 * v + l;
                let add = bias.map_or(0.0, |b| b[o]);
                let row = &mut y[o * pixels + self.oh * g.wo + self.ow0..][..N];
                for (n, d) in row.iter_mut().enumerate() {
                    *d = out[v][n][l] + add;
                }
            }
        }
    }
}

/// `acc[v][n] += Σ_{c < depth} a[c·16V + 16v ..][..16] · b[c·plane + n·s]`: one kernel tap over
/// all input channels.
///
/// # Safety
/// AVX-512F must be available (the caller's target feature); `a` and `b` must address
/// `depth·16V` packed weights and `depth` planes holding the `N` strided pixels.
#[inline(always)]
unsafe fn tap<const V: usize, const N: usize>(acc: &mut [[__m512; N]; V], a: *const f32, b: *const f32, depth: usize, plane: usize, s: usize) {
    let (mut a, mut b) = (a, b);
    for _ in 0..depth {
        let mut w = [_mm512_setzero_ps(); V];
        for v in 0..V {
            w[v] = _mm512_loadu_ps(a.add(16 * v));
        }
        for n in 0..N {
            let x = _mm512_set1_ps(*b.add(n * s));
            for v in 0..V {
                acc[v][n] = _mm512_fmadd_ps(w[v], x, acc[v][n]);
            }
        }
        a = a.add(16 * V);
        b = b.add(plane);
    }
}

/// One sample's contribution to the gradient of a 3×3 weight: `dwt (C·9, O) := [dwt +]
/// Σ_pixels x_pad · dy` (the layout of `super::backward_weight`'s transposed partial sums);
/// `parallel` splits the input channels over rayon's threads. `g.o` must be a multiple of 16.
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_gradient(g: &Geom, x_b: &[f32], dy_b: &[f32], dwt: &mut [f32], accumulate: bool, scratch: &mut Vec<f32>, parallel: bool) {
    assert!(available() && g.o.is_multiple_of(16) && g.kh == 3 && g.kw == 3);
    assert!(x_b.len() == g.c * g.h * g.w && dy_b.len() == g.o * g.ho * g.wo && dwt.len() == g.c * 9 * g.o);
    let (hp, wp) = (g.h + 2 * g.p, g.w + 2 * g.p);
    let pixels = g.ho * g.wo;
    scratch.resize(g.c * hp * wp + pixels * g.o, 0.0);
    let (xp, dyt) = scratch.split_at_mut(g.c * hp * wp);
    for (s, d) in x_b.chunks_exact(g.h * g.w).zip(xp.chunks_exact_mut(hp * wp)) {
        d[..g.p * wp].fill(0.0);
        pad_columns(g.w, g.p, s, &mut d[g.p * wp..(g.p + g.h) * wp]);
        d[(g.p + g.h) * wp..].fill(0.0);
    }
    transpose(dy_b, g.o, pixels, dyt);
    let (xp, dyt): (&[f32], &[f32]) = (xp, dyt);
    let channel = |(c, rows): (usize, &mut [f32])| {
        for (o0, v) in blocks(g.o) {
            // SAFETY: AVX-512F is available (asserted); `xp` holds C padded planes, `dyt`
            // (pixels, O), `rows` the 9 rows of channel c (see `dw_tile`).
            unsafe {
                let plane = &xp[c * hp * wp..][..hp * wp];
                match v {
                    1 => dw_tile::<1>(g, plane, &dyt[o0..], rows, o0, accumulate),
                    _ => dw_tile::<2>(g, plane, &dyt[o0..], rows, o0, accumulate),
                }
            }
        }
    };
    if parallel {
        dwt.par_chunks_mut(9 * g.o).enumerate().for_each(channel);
    } else {
        dwt.chunks_mut(9 * g.o).enumerate().for_each(channel);
    }
}

/// `dst (cols, rows)` := `src (rows, cols)ᵀ`, in 16×16 blocks.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// `rows[t·O + o0 + o] := [rows[…] +] Σ_pixels plane[oh·s + i, ow·s + j] · dyt[pixel, o]` for
/// the nine taps `t = 3i + j` and the `16·V` channels `o` of the block at `o0` (`dyt` starts
/// at channel `o0`).
///
/// # Safety
/// AVX-512F must be available; `plane` must be one padded `(H + 2p, W + 2p)` plane.
#[target_feature(enable = "avx512f")]
unsafe fn dw_tile<const V: usize>(g: &Geom, plane: &[f32], dyt: &[f32], rows: &mut [f32], o0: usize, accumulate: bool) {
    let wp = g.w + 2 * g.p;
    debug_assert!(plane.len() == (g.h + 2 * g.p) * wp && dyt.len() + o0 >= g.ho * g.wo * g.o);
    let mut acc = [[_mm512_setzero_ps(); 9]; V];
    let mut d = dyt.as_ptr();
    for oh in 0..g.ho {
        // Pixel (oh, ow)'s taps read rows oh·s + i and columns ow·s + j of the padded plane:
        // at most (Ho − 1)·s + 2 < H + 2p and likewise for the columns.
        let mut r0 = plane.as_ptr().add(oh * g.s * wp);
        for _ in 0..g.wo {
            let mut dy = [_mm512_setzero_ps(); V];
            for v in 0..V {
                dy[v] = _mm512_loadu_ps(d.add(16 * v));
            }
            let (r1, r2) = (r0.add(wp), r0.add(2 * wp));
            macro_rules! taps {
                ($($t:literal: $row:ident + $j:literal),*) => {$(
                    let x = _mm512_set1_ps(*$row.add($j));
                    for v in 0..V {
                        acc[v][$t] = _mm512_fmadd_ps(dy[v], x, acc[v][$t]);
                    }
                )*};
            }
            taps!(0: r0 + 0, 1: r0 + 1, 2: r0 + 2, 3: r1 + 0, 4: r1 + 1, 5: r1 + 2, 6: r2 + 0, 7: r2 + 1, 8: r2 + 2);
            d = d.add(g.o);
            r0 = r0.add(g.s);
        }
    }
    for t in 0..9 {
        for v in 0..V {
            let p = rows.as_mut_ptr().add(t * g.o + o0 + 16 * v);
            let sum = if accumulate { _mm512_add_ps(_mm512_loadu_ps(p), acc[v][t]) } else { acc[v][t] };
            _mm512_storeu_ps(p, sum);
        }
    }
}
