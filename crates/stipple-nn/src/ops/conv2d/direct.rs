//! Direct convolution kernels for f32 on CPUs with AVX-512 or AVX2 + FMA: no im2col matrix, no
//! GEMM.
//!
//! The register tile holds `16·V` output channels (one AVX-512 vector per 16, `V ≤ 2`) for
//! `N ≤ 8` outputs: consecutive pixels of one output row or, on maps narrower than 8 pixels,
//! one pixel of up to 8 samples, so that every weight vector still serves 8 fused
//! multiply-adds. With AVX2's sixteen 8-lane registers a tile is at most 6 outputs, computed 16
//! channels at a time (`super::vector`), in the same memory layouts. For each kernel tap and
//! input channel it loads `V` vectors of weights and broadcasts `N` input values. This is the
//! register blocking of BLIS-style GEMM micro-kernels (Van Zee and van de Geijn, *BLIS: A
//! Framework for Rapidly Instantiating BLAS Functionality*, ACM TOMS 2015) applied to the
//! convolution directly, with the output channels in the vector lanes as in oneDNN's direct
//! convolutions (Georganas et al., *Anatomy of High-Performance Deep Learning Convolutions on
//! SIMD Architectures*, SC 2018).
//!
//! The forward kernel blocks for the caches as a GEMM does (Goto and van de Geijn, *Anatomy of
//! High-Performance Matrix Multiplication*, ACM TOMS 2008), with the depth `C·kh·kw` split into
//! blocks of `kc` input channels (all taps of each; [`super::vector::Isa::depth_block`]):
//! - the input of a sample (or of the group of samples of the sample tiles) is first copied,
//!   padded by `p` zero columns, into a channels-last layout per depth block (`(H, W + 2p,
//!   samples, kc)`, `interleave`): a tile's depth loop then reads consecutive addresses,
//!   where candle's `(B, C, H, W)` layout put every channel on another cache line (and often
//!   another page);
//! - the weights are packed once per call in the order the tiles read them, per block of
//!   output channels and depth block (for a 3×3 kernel 36 KiB with AVX-512's blocks of 32
//!   channels, which stay in L1; AVX2's blocks are of 16 output channels and, on small maps,
//!   256 input channels: `Isa::block`, `Isa::depth_block`), the buffer reused from the
//!   thread's previous call;
//! - the output rows are taken in bands of about 256 outputs (`band_rows`); for each band,
//!   each block of output channels passes over the depth blocks, and all the band's tiles over
//!   one depth block's weights, with the partial sums kept in a per-block buffer (in L2) between
//!   depth blocks and the next weights prefetched into L2 meanwhile. The last depth block adds
//!   the bias and stores the tile transposed into the `(B, O, Ho, Wo)` output, which the
//!   kernel writes in full (the caller's output may be uninitialised), so nothing is re-laid out
//!   between ops.
//!
//! On one sample the blocks of output channels of each band are split over rayon's threads.
//! Each output is summed in the same order (depth blocks, taps, channels) whatever the tiling
//! and the threads inside a call, so results do not depend on timing. The weight gradient sums
//! over the samples of one call, and how many samples a call takes depends on the shapes alone
//! (`plan::weight_group`), so its bits do not depend on the thread count either.
//!
//! - forward: `y[o, oh, ow] = Σ_{c,i,j} W[o, c, i, j] · x[c, oh·s + i − p, ow·s + j − p]` on the
//!   input padded by `p` columns on each side; kernel rows outside the image are skipped for
//!   the whole tile, and so are the kernel columns that read padding for a row's first and
//!   last pixels (or for a tile of samples);
//! - gradient w.r.t. the input (stride 1, "same" padding): the same kernel on `dy` with the
//!   transposed, spatially flipped weight `W'[c, o, i, j] = W[o, c, kh−1−i, kw−1−j]`;
//! - gradient w.r.t. a 3×3 weight: `dWᵀ[c·9 + t, o] = Σ_{samples, oh, ow} x_pad[c, oh·s + i,
//!   ow·s + j] · dy[o, oh, ow]` with `16·V` output channels in the lanes and the nine taps of
//!   one input channel as the broadcasts (taps reading padding skipped at the borders), over
//!   a group of samples per call: `dy` is transposed once per sample and block of output
//!   channels to `(pixels, 16·V)`, each block's pixels of all the call's samples contiguous
//!   (rows `O` floats apart used only a quarter of the L1 cache's sets at O = 128).
//!
//! Used for f32 when the channel counts in the lanes are multiples of 16 (see `super::Geom`);
//! everything else takes the im2col/shifted-GEMM paths.

// The kernels index their register arrays with constant-bound loops, which the compiler
// unrolls into registers; iterator chains over them did not always.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::block_transpose::transpose;
use super::elem::{return_weight_buffer, weight_buffer};
use crate::ops::{group_norm, scratch};
use super::geometry::Geom;
use super::norm::Norm;
use super::vector::{isa, Isa, Vector};

/// Maps narrower than this many pixels take register tiles of samples rather than of a row's
/// pixels.
const NR: usize = 8;

/// `n` outputs (a row's pixels, or samples) cut into the fewest register tiles of at most `nr`
/// ([`Isa::tile_outputs`]), of sizes that differ by at most one: `(first, count)`. (A row of 8
/// pixels is one tile of 8 for AVX-512, two of 4 for AVX2, where 6 and 2 would leave the
/// second tile's FMAs waiting on each other.)
fn spans(n: usize, nr: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = n.div_ceil(nr).max(1);
    let (size, longer) = (n / tiles, n % tiles);
    (0..tiles).map(move |t| (t * size + t.min(longer), size + usize::from(t < longer)))
}

/// Whether this CPU has an instruction set the kernels are written for ([`isa`]).
pub(super) fn available() -> bool {
    isa().is_some()
}

/// Whether the weight-gradient kernel ([`weight_gradient`]) runs on this CPU: with AVX-512
/// only. With AVX2's 8-lane vectors its nine accumulators hold 8 channels, so a block of 32
/// takes four passes over the block's `dy`, which on Zen 3 (32 KiB L1) comes from L2 each time,
/// and the shifted GEMMs were faster. Measured (`conv_layers`, AMD EPYC Zen 3, one thread, batch
/// 16, Winograd off, backward pass, fastest of 3 rounds of 8 runs, AVX2 kernel → shifted GEMMs):
/// 128→128 at 16×16 39.5 → 34.9 ms, 256→128 at 8×8 27.0 → 23.6 ms.
pub(super) fn weight_gradient_available() -> bool {
    isa() == Some(Isa::Avx512)
}

/// The most channels in a block of a register tile's lanes (two AVX-512 vectors); see
/// [`Isa::block`] for the block of this CPU.
const BLOCK: usize = 32;

/// Channels per block of output channels on this CPU ([`Isa::block`]).
fn block() -> usize {
    isa().map_or(BLOCK, Isa::block)
}

/// The channel blocks of `n` lanes (a multiple of 16): `(first channel, vectors)`, blocks of
/// [`block`] and a last one of 16 when `n` is an odd multiple of 16 (with blocks of 32).
fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(block()).map(move |c0| (c0, vectors(n, c0)))
}

/// The groups of 16 channels (AVX-512 vectors) of the block of `n` channels that starts at
/// channel `c0`.
fn vectors(n: usize, c0: usize) -> usize {
    (n - c0).min(block()) / 16
}

/// Input channels per depth block (the `Kc` of Goto and van de Geijn, *Anatomy of
/// High-Performance Matrix Multiplication*, ACM TOMS 2008) for a layer of geometry `g` (the
/// forward pass's or the input gradient's, which share the map) on this CPU:
/// [`Isa::depth_block`].
fn kc(g: &Geom) -> usize {
    isa().map_or(32, |isa| isa.depth_block(g.h * g.w))
}

/// The depth blocks of `c` input channels: `(first channel, channels)`, blocks of `kc` and a
/// last, smaller one.
fn depth_blocks(c: usize, kc: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..c).step_by(kc).map(move |c0| (c0, (c - c0).min(kc)))
}

/// A weight in the kernels' order: per block of output channels starting at `o0`, at offset
/// `o0·kk·cin`, and per depth block of input channels starting at `c0` (see [`depth_blocks`]),
/// at `c0·kk·16V` from there, the `(kk, kc, 16·V)` values of tap `t`, input channel `c0 + cc`
/// and the block's channels: the weights of one depth block are read in order, tap by tap.
pub(super) struct Packed(Vec<f32>);

impl Packed {
    /// `w` holds the `kk` taps of output channel `o` and input channel `c` at
    /// `o·out_stride + c·in_stride` (in reverse order when `flip`); depth blocks of `depth`
    /// input channels.
    #[allow(clippy::too_many_arguments)]
    fn new(out: usize, inp: usize, kk: usize, w: &[f32], (out_stride, in_stride): (usize, usize), flip: bool, depth: usize) -> Self {
        assert!(out == 0 || inp == 0 || (out - 1) * out_stride + (inp - 1) * in_stride + kk <= w.len());
        // Every value is written below.
        let mut data = weight_buffer(out * inp * kk);
        let width = block();
        data.par_chunks_mut(width * kk * inp).enumerate().for_each(|(bi, block)| {
            let lanes = block.len() / (kk * inp);
            for (c0, kc) in depth_blocks(inp, depth) {
                let depth = &mut block[c0 * kk * lanes..][..kk * kc * lanes];
                for (t, depth) in depth.chunks_exact_mut(kc * lanes).enumerate() {
                    let tap = if flip { kk - 1 - t } else { t };
                    for (cc, dst) in depth.chunks_exact_mut(lanes).enumerate() {
                        let src = &w[width * bi * out_stride + (c0 + cc) * in_stride + tap..];
                        for (l, d) in dst.iter_mut().enumerate() {
                            *d = src[l * out_stride];
                        }
                    }
                }
            }
        });
        Self(data)
    }

    /// `W (O, C, kh, kw)` for the forward pass.
    pub(super) fn forward(g: &Geom, w: &[f32]) -> Self {
        let kk = g.kh * g.kw;
        Self::new(g.o, g.c, kk, w, (g.c * kk, kk), false, kc(g))
    }

    /// `W'[c, o, t] = W[o, c, kk − 1 − t]` for the gradient w.r.t. the input (computed with
    /// [`input_gradient_geom`], whose map is `g`'s).
    pub(super) fn input_gradient(g: &Geom, w: &[f32]) -> Self {
        let kk = g.kh * g.kw;
        Self::new(g.c, g.o, kk, w, (kk, g.c * kk), true, kc(&input_gradient_geom(g)))
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        return_weight_buffer(std::mem::take(&mut self.0));
    }
}

/// The geometry of the gradient w.r.t. the input of a stride-1 "same" convolution `g`, as a
/// forward convolution from `O` channels to `C`.
pub(super) fn input_gradient_geom(g: &Geom) -> Geom {
    Geom { c: g.o, o: g.c, p: g.kh - 1 - g.p, ..*g }
}

/// The bias of a group of samples: `values[n·stride + o]` for sample `n` and channel `o`
/// (`stride` 0: one bias for all).
#[derive(Clone, Copy)]
pub(super) struct Bias<'a> {
    pub values: &'a [f32],
    pub stride: usize,
}

/// The forward pass of `ns` consecutive samples: `y (ns, O, Ho, Wo) := conv(x (ns, C, H, W)) +
/// bias`, with `packed` from [`Packed::forward`] (or the input gradient with
/// [`input_gradient_geom`] and [`Packed::input_gradient`]). `g.o` must be a multiple of 16.
///
/// A register tile is 8 pixels of an output row or, on maps narrower than 8 pixels, one pixel
/// of up to 8 samples (so that each weight vector still serves 8 multiply-adds). The input is
/// first interleaved channels-last by depth block ([`interleave`]); then, band of output rows
/// by band (`band_rows`), each block of output channels passes over the depth blocks, and
/// all the band's tiles over each depth block's weights (kept in L1), with partial sums in a
/// per-block buffer between depth blocks. `parallel` (one sample only) splits the output
/// channel blocks of each band over rayon's threads. Every output is summed in the same order
/// whatever the threads.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(g: &Geom, x: &[f32], packed: &Packed, bias: Option<Bias>, norm: Option<Norm>, y: &mut [MaybeUninit<f32>], scratch: &mut Vec<f32>, parallel: bool) {
    let (sample_in, pixels) = (g.c * g.h * g.w, g.ho * g.wo);
    let ns = x.len() / sample_in.max(1);
    assert!(available() && g.o.is_multiple_of(16) && packed.0.len() == g.o * g.c * g.kh * g.kw);
    assert!(x.len() == ns * sample_in && y.len() == ns * g.o * pixels && !(parallel && ns > 1));
    assert!(bias.is_none_or(|b| b.values.len() >= (ns - 1) * b.stride + g.o));
    if ns == 0 || pixels == 0 {
        return;
    }
    // Tiles of samples interleave all the samples; tiles of pixels take one sample at a time.
    let nq = if g.wo < NR && ns > 1 { ns } else { 1 };
    let sample_out = g.o * pixels;
    scratch.resize(nq * g.c * g.h * (g.w + 2 * g.p), 0.0);
    let rows = band_rows(g, nq);
    for (gi, (xs, ys)) in x.chunks_exact(nq * sample_in).zip(y.chunks_exact_mut(nq * sample_out)).enumerate() {
        let norm = norm.map(|n| Norm { coefficients: &n.coefficients[gi * nq * g.c..][..nq * g.c], silu: n.silu });
        interleave(g, xs, nq, norm, scratch, parallel);
        let bias = bias.map(|b| Bias { values: &b.values[gi * nq * b.stride..], stride: b.stride });
        let tiles = Tiles { g, xl: scratch, bias, nq };
        for oh0 in (0..g.ho).step_by(rows) {
            let band = oh0..(oh0 + rows).min(g.ho);
            if parallel {
                let lanes = block();
                ys.par_chunks_mut(lanes * pixels)
                    .enumerate()
                    .for_each(|(bi, y)| tiles.block(packed, lanes * bi, band.clone(), y));
            } else {
                for (o0, _) in blocks(g.o) {
                    tiles.block(packed, o0, band.clone(), &mut ys[o0 * pixels..]);
                }
            }
        }
    }
}

/// Output rows per band: enough for 256 outputs (32 register tiles reuse a depth block's weights
/// from L1), at most the map.
fn band_rows(g: &Geom, nq: usize) -> usize {
    256usize.div_ceil(g.wo * nq).clamp(1, g.ho.max(1))
}

/// `xl` := the `nq` samples `x (nq, C, H, W)` (normalised by `norm` when given) padded by `p`
/// zero columns on each side and interleaved channels-last by depth block: for the block of
/// `kc` channels from `c0`, at offset `c0·H·(W + 2p)·nq`, the values of row `ih`, padded
/// column `col`, sample `q` and channel `c0 + cc` at `((ih·(W + 2p) + col)·nq + q)·kc + cc`,
/// so that a tile's depth loop reads consecutive addresses (the "channels-last" blocked layout
/// of Georganas et al., SC 2018). `parallel` splits the depth blocks over rayon's threads.
fn interleave(g: &Geom, x: &[f32], nq: usize, norm: Option<Norm>, xl: &mut [f32], parallel: bool) {
    let (wp, plane, depth) = (g.w + 2 * g.p, g.h * g.w, kc(g));
    let sample = g.c * plane;
    let pack = |(bi, dst): (usize, &mut [f32])| {
        let c0 = bi * depth;
        let kc = (g.c - c0).min(depth);
        // With a normalisation, the block's planes are normalised first, sample q's channel
        // c0 + cc at `(q·kc + cc)·H·W`.
        let mut fill = |normalised: &mut [f32]| {
            // Sample q's planes of the block's channels, `H·W` values apart.
            let planes = |q: usize| match norm {
                Some(_) => &normalised[q * kc * plane..],
                None => &x[q * sample + c0 * plane..],
            };
            for (ih, row) in dst.chunks_exact_mut(wp * nq * kc).enumerate() {
                row[..g.p * nq * kc].fill(0.0);
                row[(g.p + g.w) * nq * kc..].fill(0.0);
                for q in 0..nq {
                    // Row ih of the kc planes, a (kc, W) block, transposed to (W, kc) rows nq·kc apart.
                    let dst = &mut row[(g.p * nq + q) * kc..];
                    transpose(&planes(q)[ih * g.w..], plane, kc, g.w, dst, nq * kc);
                }
            }
        };
        match norm {
            Some(n) => scratch::with(nq * kc * plane, |normalised| {
                for (i, out) in normalised.chunks_exact_mut(plane.max(1)).enumerate() {
                    let c = c0 + i % kc;
                    group_norm::normalise_plane(out, &x[(i / kc) * sample + c * plane..][..plane], n.coefficients[(i / kc) * g.c + c], n.silu);
                }
                fill(normalised)
            }),
            None => fill(&mut []),
        }
    };
    let chunk = depth * g.h * wp * nq;
    if parallel {
        xl.par_chunks_mut(chunk).enumerate().for_each(pack);
    } else {
        xl.chunks_mut(chunk).enumerate().for_each(pack);
    }
}

/// The register tiles of one group of samples: `nq` samples of one pixel each, or one sample's
/// pixels.
struct Tiles<'a> {
    g: &'a Geom,
    /// The group's input from [`interleave`].
    xl: &'a [f32],
    bias: Option<Bias<'a>>,
    /// Samples in the group (more than 1: tiles of samples rather than of a row's pixels).
    nq: usize,
}

impl Tiles<'_> {
    /// The output rows `band` of the block of output channels `o0..` of the group; `y` starts
    /// at channel `o0` of the first sample.
    fn block(&self, packed: &Packed, o0: usize, band: Range<usize>, y: &mut [MaybeUninit<f32>]) {
        let g = self.g;
        let isa = isa().expect("the direct kernels need AVX-512F or AVX2 + FMA");
        let (v, kk, wp, nq) = (vectors(g.o, o0), g.kh * g.kw, g.w + 2 * g.p, self.nq);
        let lanes = 16 * v;
        let by_sample = nq > 1;
        let sample_out = g.o * g.ho * g.wo;
        let nr = isa.tile_outputs();
        let tiles = band.len() * if by_sample { g.wo * nq.div_ceil(nr) } else { g.wo.div_ceil(nr) };
        // The band's partial sums between depth blocks (with one depth block, none).
        let depth = kc(g);
        let partial = if g.c > depth { band.len() * g.wo * nq * lanes } else { 0 };
        scratch::with(partial, |acc: &mut [f32]| {
            for (c0, kc) in depth_blocks(g.c, depth) {
                let start = o0 * kk * g.c + c0 * kk * lanes;
                let a = &packed.0[start..][..kk * kc * lanes];
                let xb = &self.xl[c0 * g.h * wp * nq..][..kc * g.h * wp * nq];
                let (first, last) = (c0 == 0, c0 + kc == g.c);
                // The weights that follow in memory (the next depth block's, or the next output
                // block's first) are fetched into L2, a share before each tile, while these are in
                // use: where the weights do not fit the L2 the hardware prefetchers alone left the
                // first tiles of a sweep waiting on memory.
                let next = &packed.0[start + a.len()..];
                let share = a.len().min(next.len()).div_ceil(tiles).next_multiple_of(16);
                let mut k = 0;
                let mut tile = |oh: usize, ow: usize, n0: usize, n: usize| {
                    for line in next.iter().skip(k * share).take(share).step_by(16) {
                        // SAFETY: SSE is part of x86-64; a prefetch does not touch memory.
                        unsafe { _mm_prefetch::<_MM_HINT_T1>((line as *const f32).cast()) };
                    }
                    k += 1;
                    let pos = ((oh - band.start) * g.wo + ow) * nq + n0;
                    let step = if by_sample { kc } else { g.s * kc };
                    let t = Tile { g, a, xb, kc, nq, oh, ow, n0, pos, step, o0, by_sample, first, last };
                    macro_rules! run {
                        ($v:literal, [$($n:literal)*]) => {
                            // SAFETY: `isa` is available (asserted by `forward`); the tile reads
                            // inside `a`, `xb` and `acc` and writes inside `acc` and `y` (see
                            // `Tile::run`).
                            match n {
                                $($n => unsafe { t.run::<$v, $n>(isa, acc, y, self.bias, sample_out) },)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    match v {
                        1 => run!(1, [1 2 3 4 5 6 7 8]),
                        _ => run!(2, [1 2 3 4 5 6 7 8]),
                    }
                };
                for oh in band.clone() {
                    if by_sample {
                        for ow in 0..g.wo {
                            for (n0, n) in spans(nq, nr) {
                                tile(oh, ow, n0, n);
                            }
                        }
                    } else {
                        for (ow, n) in spans(g.wo, nr) {
                            tile(oh, ow, 0, n);
                        }
                    }
                }
            }
        })
    }
}

/// One register tile over one depth block: `N` outputs of output row `oh` starting at column
/// `ow`, consecutive columns or samples (from sample `n0`).
struct Tile<'a> {
    g: &'a Geom,
    /// The packed weights of the block of output channels and the depth block.
    a: &'a [f32],
    /// The depth block's interleaved input (see [`interleave`]) and its channel count.
    xb: &'a [f32],
    kc: usize,
    nq: usize,
    oh: usize,
    ow: usize,
    n0: usize,
    /// The first output's position among the band's partial sums (`16·V` values each).
    pos: usize,
    /// From one output of the tile to the next in `xb`.
    step: usize,
    /// The block's first output channel (for the bias).
    o0: usize,
    by_sample: bool,
    /// Whether this is the first depth block (the sums start from zero) and the last (the
    /// sums plus the bias go to `y`, not to the partial sums).
    first: bool,
    last: bool,
}

impl Tile<'_> {
    /// `y[(n0 + n)·sample_out + o·Ho·Wo + oh·Wo + ow]` (tiles of samples) or `y[o·Ho·Wo + oh·Wo
    /// + ow + n]` (tiles of pixels) `= bias + Σ` for the tile's outputs `n` and the block's
    /// `16·V` channels `o`, the sum carried in `acc` from one depth block to the next.
    ///
    /// # Safety
    /// `isa` must be available; `y` must hold the outputs from the group's first sample and
    /// the block's first channel, and `acc` the band's partial sums unless this is the only
    /// depth block.
    unsafe fn run<const V: usize, const N: usize>(&self, isa: Isa, acc: &mut [f32], y: &mut [MaybeUninit<f32>], bias: Option<Bias>, sample_out: usize) {
        debug_assert!(self.a.len() >= 16 * V * self.g.kh * self.g.kw * self.kc);
        let mut out = [[0.0f32; BLOCK]; N];
        match isa {
            Isa::Avx512 => self.sums_avx512::<V, N>(acc, &mut out),
            Isa::Avx2 => self.sums_avx2::<V, N>(acc, &mut out),
        }
        if self.last {
            self.store::<V, N>(&out, y, bias, sample_out);
        }
    }

    /// All the tile's sums in one register tile of `V` AVX-512 vectors by `N` outputs.
    #[target_feature(enable = "avx512f")]
    unsafe fn sums_avx512<const V: usize, const N: usize>(&self, acc: &mut [f32], out: &mut [[f32; BLOCK]; N]) {
        self.sums::<__m512, V, N>(0, 0, N, acc, out);
    }

    /// The tile's sums in register tiles of 16 channels (two AVX2 vectors) by at most 6 outputs
    /// ([`Isa::tile_outputs`]): 12 accumulators, 2 weight vectors and a broadcast of the 16
    /// registers, where a 32 × 8 tile would not fit.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sums_avx2<const V: usize, const N: usize>(&self, acc: &mut [f32], out: &mut [[f32; BLOCK]; N]) {
        for ch in (0..16 * V).step_by(16) {
            for n0 in (0..N).step_by(6) {
                match (N - n0).min(6) {
                    1 => self.sums::<__m256, 2, 1>(ch, n0, N, acc, out),
                    2 => self.sums::<__m256, 2, 2>(ch, n0, N, acc, out),
                    3 => self.sums::<__m256, 2, 3>(ch, n0, N, acc, out),
                    4 => self.sums::<__m256, 2, 4>(ch, n0, N, acc, out),
                    5 => self.sums::<__m256, 2, 5>(ch, n0, N, acc, out),
                    _ => self.sums::<__m256, 2, 6>(ch, n0, N, acc, out),
                }
            }
        }
    }

    /// The sums of the tile's outputs `n0..n0 + M` (of its `n`) and the block's channels `ch..ch
    /// + K·R::LANES`, over the depth block: started from the partial sums in `acc` (unless this
    /// is the first depth block), left there (unless it is the last) or else in `out[n][o]`.
    #[inline(always)]
    unsafe fn sums<R: Vector, const K: usize, const M: usize>(&self, ch: usize, n0: usize, n: usize, acc: &mut [f32], out: &mut [[f32; BLOCK]]) {
        let g = self.g;
        let wp = g.w + 2 * g.p;
        // The block's channels (`a` holds `kh·kw·kc` rows of them).
        let lanes = self.a.len() / (g.kh * g.kw * self.kc);
        let mut sums = [[R::zero(); M]; K];
        // The tile's partial sums start at `pos·lanes` in `acc`, `lanes` per output.
        let partial = |m: usize, k: usize| (n0 + m) * lanes + ch + k * R::LANES;
        if !self.first {
            let p = acc[self.pos * lanes..][..n * lanes].as_ptr();
            for m in 0..M {
                for k in 0..K {
                    sums[k][m] = R::load(p.add(partial(m, k)));
                }
            }
        }
        for i in 0..g.kh {
            // Kernel rows outside the image contribute nothing to this output row.
            let Some(ih) = g.input_row(i, self.oh) else { continue };
            for j in 0..g.kw {
                // Kernel column j of the tile's first and last outputs outside the image (a
                // tile of samples is one pixel: then the whole tap).
                let outside = |ow: usize| !(g.p..g.p + g.w).contains(&(ow * g.s + j));
                let last = if self.by_sample { self.ow } else { self.ow + n - 1 };
                if self.by_sample && outside(self.ow) {
                    continue;
                }
                // Of these outputs, the first is the tile's first, the last the tile's last.
                let skip_first = n0 == 0 && outside(self.ow);
                let skip_last = n0 + M == n && outside(last);
                let t = i * g.kw + j;
                // Tap (i, j) reads column ow·s + j of the padded row, at most (Wo − 1)·s + kw −
                // 1 < W + 2p, and samples n0.. < nq.
                let b = self.xb[((ih * wp + self.ow * g.s + j) * self.nq + self.n0) * self.kc + n0 * self.step..].as_ptr();
                let a = self.a.as_ptr().add(t * self.kc * lanes + ch);
                // The padding columns of a row's first and last pixels are skipped (reading
                // them would only add zeros).
                match (skip_first || (M == 1 && skip_last), skip_last && M > 1) {
                    (false, false) => tap::<R, K, M, false, false>(&mut sums, a, lanes, b, self.kc, self.step),
                    (true, false) => tap::<R, K, M, true, false>(&mut sums, a, lanes, b, self.kc, self.step),
                    (false, true) => tap::<R, K, M, false, true>(&mut sums, a, lanes, b, self.kc, self.step),
                    (true, true) => tap::<R, K, M, true, true>(&mut sums, a, lanes, b, self.kc, self.step),
                }
            }
        }
        if self.last {
            for m in 0..M {
                for k in 0..K {
                    sums[k][m].store(out[n0 + m][ch + k * R::LANES..][..R::LANES].as_mut_ptr());
                }
            }
        } else {
            let p = acc[self.pos * lanes..][..n * lanes].as_mut_ptr();
            for m in 0..M {
                for k in 0..K {
                    sums[k][m].store(p.add(partial(m, k)));
                }
            }
        }
    }

    /// `y := out + bias` for the last depth block (see [`Tile::run`]).
    fn store<const V: usize, const N: usize>(&self, out: &[[f32; BLOCK]; N], y: &mut [MaybeUninit<f32>], bias: Option<Bias>, sample_out: usize) {
        let g = self.g;
        let lanes = 16 * V;
        let pixels = g.ho * g.wo;
        let first = self.oh * g.wo + self.ow;
        let bias_of = |n: usize| {
            let sample = if self.by_sample { self.n0 + n } else { 0 };
            bias.map(|b| &b.values[sample * b.stride + self.o0..][..lanes])
        };
        if self.by_sample {
            for n in 0..N {
                let add = bias_of(n);
                let y = &mut y[(self.n0 + n) * sample_out + first..];
                for o in 0..lanes {
                    y[o * pixels] = MaybeUninit::new(out[n][o] + add.map_or(0.0, |b| b[o]));
                }
            }
        } else {
            // One output row segment per channel (stores the compiler vectorises).
            let add = bias_of(0);
            for o in 0..lanes {
                let row = &mut y[o * pixels + first..][..N];
                let b = add.map_or(0.0, |b| b[o]);
                for (n, d) in row.iter_mut().enumerate() {
                    *d = MaybeUninit::new(out[n][o] + b);
                }
            }
        }
    }
}

/// `acc[k][m] += Σ_{c < depth} a[c·stride + k·LANES ..][..LANES] · b[c + m·step]`: one kernel
/// tap over a depth block of interleaved input channels, leaving out the first output when
/// `SKIP_FIRST` and the last when `SKIP_LAST`.
///
/// # Safety
/// The instruction set of `R` must be available (the caller's target feature); `a` and `b`
/// must address `depth` packed weight rows `stride` apart and the `M` outputs' `depth`
/// consecutive channels.
#[inline(always)]
unsafe fn tap<R: Vector, const K: usize, const M: usize, const SKIP_FIRST: bool, const SKIP_LAST: bool>(
    acc: &mut [[R; M]; K],
    a: *const f32,
    stride: usize,
    b: *const f32,
    depth: usize,
    step: usize,
) {
    let (mut a, mut b) = (a, b);
    for _ in 0..depth {
        let mut w = [R::zero(); K];
        for k in 0..K {
            w[k] = R::load(a.add(k * R::LANES));
        }
        for m in 0..M {
            if (SKIP_FIRST && m == 0) || (SKIP_LAST && m == M - 1) {
                continue;
            }
            let x = R::splat(*b.add(m * step));
            for k in 0..K {
                acc[k][m] = w[k].mul_add(x, acc[k][m]);
            }
        }
        a = a.add(stride);
        b = b.add(1);
    }
}

/// `dst (R, W + 2p)` := the rows `src (R, W)` with `p` zero columns on each side.
///
/// Element by element: the rows are short (4 to 64 values), and `fill`/`copy_from_slice` made a
/// `memset`/`memcpy` call per row and side, 2% of an emoji16 training step.
fn pad_columns(w: usize, p: usize, src: &[f32], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w + 2 * p)) {
        let (left, rest) = d.split_at_mut(p);
        let (mid, right) = rest.split_at_mut(w);
        for v in left.iter_mut().chain(right) {
            *v = 0.0;
        }
        for (d, &v) in mid.iter_mut().zip(s) {
            *d = v;
        }
    }
}

/// The contribution of `ns` consecutive samples to the gradient of a 3×3 weight: `dwt (C·9, O)
/// := [dwt +] Σ_{samples, pixels} x_pad · dy` (the layout of `super::backward_weight`'s
/// transposed partial sums); `parallel` splits the input channels over rayon's threads.
/// `g.o` must be a multiple of 16.
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_gradient(g: &Geom, x: &[f32], dy: &[f32], dwt: &mut [f32], accumulate: bool, scratch: &mut Vec<f32>, parallel: bool) {
    let (hp, wp) = (g.h + 2 * g.p, g.w + 2 * g.p);
    let pixels = g.ho * g.wo;
    let ns = x.len() / (g.c * g.h * g.w).max(1);
    assert!(weight_gradient_available() && g.o.is_multiple_of(16) && g.kh == 3 && g.kw == 3);
    assert!(x.len() == ns * g.c * g.h * g.w && dy.len() == ns * g.o * pixels && dwt.len() == g.c * 9 * g.o);
    scratch.resize(ns * (g.c * hp * wp + pixels * g.o), 0.0);
    let (xp, dyt) = scratch.split_at_mut(ns * g.c * hp * wp);
    for (s, d) in x.chunks_exact(g.h * g.w).zip(xp.chunks_exact_mut(hp * wp)) {
        d[..g.p * wp].fill(0.0);
        pad_columns(g.w, g.p, s, &mut d[g.p * wp..(g.p + g.h) * wp]);
        d[(g.p + g.h) * wp..].fill(0.0);
    }
    // Block by block of output channels, each sample's rows of the block transposed to
    // (pixels, 16·v): the block's values for all samples at `o0·ns·pixels`.
    for (o0, v) in blocks(g.o) {
        let width = 16 * v;
        let block = &mut dyt[o0 * ns * pixels..][..ns * pixels * width];
        for (s, d) in dy.chunks_exact(g.o * pixels).zip(block.chunks_exact_mut(pixels * width)) {
            transpose(&s[o0 * pixels..], pixels, width, pixels, d, width);
        }
    }
    let (xp, dyt): (&[f32], &[f32]) = (xp, dyt);
    let columns = column_runs(g);
    // The nine rows of channel c, output channels o0 to o0 + 16·v.
    let block = |c: usize, rows: &mut [f32], o0: usize, v: usize| {
        let taps = Taps { g, xp: &xp[c * hp * wp..], dyt: &dyt[o0 * ns * pixels..], ns, o0, columns: &columns };
        // SAFETY: AVX-512F is available (asserted); `xp` holds ns·C padded planes, `dyt` ns
        // (pixels, O) matrices, `rows` the 9 rows of channel c (see `Taps::run`).
        unsafe {
            match v {
                1 => taps.run::<1>(rows, accumulate),
                _ => taps.run::<2>(rows, accumulate),
            }
        }
    };
    if parallel {
        dwt.par_chunks_mut(9 * g.o).enumerate().for_each(|(c, rows)| {
            for (o0, v) in blocks(g.o) {
                block(c, rows, o0, v);
            }
        });
    } else {
        // Block of output channels outermost: its `dy` stays in L1 while every input channel
        // passes over it.
        for (o0, v) in blocks(g.o) {
            for (c, rows) in dwt.chunks_mut(9 * g.o).enumerate() {
                block(c, rows, o0, v);
            }
        }
    }
}

/// One pixel's contribution to the nine taps' accumulators: `acc[k][3i + j] += dy[k·LANES..][..LANES]
/// · r0[i·wp + j]` for the kernel rows `i` in the bit mask `ROWS` and the columns `j` in `COLS`.
///
/// # Safety
/// The instruction set of `R` must be available (the caller's target feature); `dy` must
/// address `K·LANES` values and `r0` the pixel's 3×3 window of a padded plane with rows `wp`
/// apart.
#[inline(always)]
unsafe fn pixel<R: Vector, const K: usize, const ROWS: u8, const COLS: u8>(acc: &mut [[R; 9]; K], dy: *const f32, r0: *const f32, wp: usize) {
    let mut d = [R::zero(); K];
    for k in 0..K {
        d[k] = R::load(dy.add(k * R::LANES));
    }
    for i in 0..3 {
        if ROWS & 1 << i == 0 {
            continue;
        }
        let r = r0.add(i * wp);
        for j in 0..3 {
            if COLS & 1 << j == 0 {
                continue;
            }
            let x = R::splat(*r.add(j));
            for k in 0..K {
                acc[k][3 * i + j] = d[k].mul_add(x, acc[k][3 * i + j]);
            }
        }
    }
}

/// The weight-gradient accumulation of one input channel and one block of output channels
/// over `ns` samples.
struct Taps<'a> {
    g: &'a Geom,
    /// The channel's padded plane of the first sample (the next ones `C` planes apart).
    xp: &'a [f32],
    /// The block's transposed `dy`: `(pixels, 16·V)` per sample, the samples one after
    /// another.
    dyt: &'a [f32],
    ns: usize,
    o0: usize,
    /// The output columns in runs with the same taps inside the image ([`column_runs`]).
    columns: &'a [(Range<usize>, u8)],
}

/// Which kernel taps of output row (or column) `o` read inside a map of `size` rows (or
/// columns): bit `i` is set when tap `i` reads row `o·s + i` of the padded map, inside
/// `p..p + size`. Taps reading the padding add zeros and are skipped.
fn taps_inside(g: &Geom, o: usize, size: usize) -> u8 {
    (0..3).filter(|&i| (g.p..g.p + size).contains(&(o * g.s + i))).fold(0u8, |m, i| m | 1 << i)
}

/// The output columns cut into runs of consecutive columns whose taps inside the image
/// ([`taps_inside`]) are the same, so that [`Taps::run`] takes one loop per run: for a stride-1
/// "same" layer the first column, the interior and the last column.
fn column_runs(g: &Geom) -> Vec<(Range<usize>, u8)> {
    let mut runs: Vec<(Range<usize>, u8)> = Vec::new();
    for ow in 0..g.wo {
        let inside = taps_inside(g, ow, g.w);
        match runs.last_mut() {
            Some((cols, m)) if *m == inside => cols.end = ow + 1,
            _ => runs.push((ow..ow + 1, inside)),
        }
    }
    runs
}

impl Taps<'_> {
    /// `rows[t·O + o0 + o] := [rows[…] +] Σ_{samples, pixels} plane[oh·s + i, ow·s + j] ·
    /// dyt[pixel, o]` for the nine taps `t = 3i + j` and the `16·V` channels `o` of the block.
    ///
    /// # Safety
    /// AVX-512F must be available; the fields must address `ns` samples as described there.
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const V: usize>(&self, rows: &mut [f32], accumulate: bool) {
        let g = self.g;
        let (hp, wp, pixels) = (g.h + 2 * g.p, g.w + 2 * g.p, g.ho * g.wo);
        assert!(self.xp.len() > (self.ns - 1) * g.c * hp * wp + (hp - 1) * wp + wp - 1);
        let width = 16 * V;
        assert!(self.dyt.len() >= self.ns * pixels * width && rows.len() >= 9 * g.o && self.o0 + width <= g.o);
        let mut acc = [[__m512::zero(); 9]; V];
        for n in 0..self.ns {
            let plane = self.xp.as_ptr().add(n * g.c * hp * wp);
            let dy = self.dyt.as_ptr().add(n * pixels * width);
            for oh in 0..g.ho {
                // Pixel (oh, ow)'s taps read rows oh·s + i and columns ow·s + j of the padded
                // plane: at most (Ho − 1)·s + 2 < H + 2p and likewise for the columns.
                let rows_in = taps_inside(g, oh, g.h);
                for (cols, cols_in) in self.columns {
                    let mut r0 = plane.add(oh * g.s * wp + cols.start * g.s);
                    let mut d = dy.add((oh * g.wo + cols.start) * width);
                    // One loop per mask, with the common masks compiled in (any superset of
                    // the valid taps is exact, the padding being zeros).
                    macro_rules! pixels {
                        ($(($r:literal, $c:literal)),*) => {
                            match (rows_in, *cols_in) {
                                $(($r, $c) => for _ in cols.clone() {
                                    pixel::<__m512, V, $r, $c>(&mut acc, d, r0, wp);
                                    d = d.add(width);
                                    r0 = r0.add(g.s);
                                },)*
                                _ => for _ in cols.clone() {
                                    pixel::<__m512, V, 7, 7>(&mut acc, d, r0, wp);
                                    d = d.add(width);
                                    r0 = r0.add(g.s);
                                },
                            }
                        };
                    }
                    pixels!((7, 7), (7, 6), (7, 3), (6, 7), (6, 6), (6, 3), (3, 7), (3, 6), (3, 3));
                }
            }
        }
        for t in 0..9 {
            for v in 0..V {
                let p = rows.as_mut_ptr().add(t * g.o + self.o0 + 16 * v);
                let sum = if accumulate { __m512::load(p).add(acc[v][t]) } else { acc[v][t] };
                sum.store(p);
            }
        }
    }
}
