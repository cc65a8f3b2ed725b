//! The sizes of one convolution: output extents, GEMM shapes, which kernel computes which
//! pass, and where the taps of a stride-1 "same" kernel read inside the image.

use candle_core::{bail, Layout, Result};

use std::sync::OnceLock;

use super::direct;
use super::elem::Elem;
use super::winograd::Variant;

/// The smallest map (pixels per channel) on which [`shifted`] replaces im2col + GEMM. Measured
/// per sample on one thread (AVX-512 EPYC, `gemm` 0.19), 3×3 kernels, time of shifted ÷ im2col:
/// at 32×32, forward 0.77–1.03 (C→O = 128→64 … 128→128), input gradient 0.86–0.96, weight
/// gradient ≈ 1 once im2col's copy is counted; at 64×64 (192→64) 0.69, 0.70 and 0.95; at 16×16
/// the forward was 8% slower (input gradient 8% faster), at 8×8 all three slower.
pub(super) const SHIFTED_MIN_PIXELS: usize = 32 * 32;

/// [`Geom::weight_bound`]: weight values per output position of the batch, and output pixels
/// per sample (fewer make the per-sample GEMM too narrow). Measured forward passes (Intel Xeon,
/// 2 threads, batch 2, direct kernels → im2col + GEMM): 1280→1280 at 8×8 (115,200 values per
/// position) 12.4–13.0 → 8.9–9.0 ms, 2560→1280 at 8×8 24.9–25.4 → 17.7–17.9 ms, 1280→1280 at
/// 16×16 (28,800) 35.5–35.9 → 34.2–34.3 ms; equal for 640→640 at 16×16 (7,200); direct faster
/// at batch 16 and 32 on 4×4 maps (512→512 at batch 32, 4,608 values per position: 5.3 against
/// 11.3 ms) and on every layer of the benchmark presets.
pub(super) const WEIGHT_BOUND_VALUES: usize = 16 * 1024;
pub(super) const WEIGHT_BOUND_PIXELS: usize = 8 * 8;

/// The smallest map (pixels per channel) and channel counts (fewer, more of input and output)
/// on which [`winograd`] replaces the direct kernels. Measured per sample on one thread (Xeon,
/// Sapphire Rapids class, CPU time), Winograd ÷ direct: 512→512 at 64×64 0.61, 320→320 at 64×64
/// 0.68, 640→640 at 32×32 0.73, 256→256 at 32×32 0.85, 256→128 at 128×128 0.88, 128→128 at
/// 128×128 0.95; 1280→1280 at 16×16 0.96–1.0 (the weight transform costs as much as it saves),
/// 256→256 at 16×16 1.35, 128→128 at 32×32 1.07, 64→64 at 64×64 1.3.
pub(super) const WINOGRAD_MIN_PIXELS: usize = 32 * 32;
pub(super) const WINOGRAD_MIN_CHANNELS: (usize, usize) = (128, 256);

/// The smallest map (pixels per channel) and channel count (of input and output) on which
/// [`winograd`]'s F(4×4, 3×3) replaces F(2×2, 3×3) and the direct kernels. Measured with
/// `bench/winograd_layers.sh` (Intel Xeon with AVX-512, one thread, medians of 2 rounds of the
/// fastest of 2 runs, on a machine shared with other jobs: ±10–20%), time ÷ the direct
/// kernels' as forward / input gradient, F(2×2) then F(4×4):
/// - Stable Diffusion 1.5 U-Net, batch 2: 320→320 at 64×64 0.78/0.65 and 0.43/0.39, 640→320
///   0.64/0.62 and 0.45/0.46, 960→320 0.57/0.68 and 0.49/0.40; 640→640 at 32×32 0.77/0.84
///   and 0.84/0.79, 1280→640 0.69/0.65 and 0.72/0.71 (F(4×4) no better on 32×32 maps: 64
///   tiles per sample against a transformed weight of 36·O·C values); 1280→1280 at 16×16
///   0.81/1.28 and 1.51/3.36, 2560→1280 0.90/1.51 and 1.43/2.77, 1280→1280 at 8×8 2.08/3.72
///   and 5.19/9.87 (the weight transform, every call, costs more than the GEMMs save).
/// - SDXL U-Net, batch 2: 320→320 at 128×128 0.79/0.71 and 0.46/0.49, 640→640 at 64×64
///   0.72/0.71 and 0.45/0.47, 1280→1280 at 32×32 0.63/0.80 and 0.63/0.91.
/// - VAE decoder, batch 1: 512→512 at 64×64 0.69/0.72 and 0.84/0.59, at 128×128 0.58/0.60 and
///   0.51/0.46, 512→256 at 256×256 0.82/0.94 and 0.42/0.51, 256→256 0.66/0.66 and 0.47/0.46,
///   256→128 at 512×512 0.72/0.75 and 0.47/0.52, 128→128 0.93/0.92 and 0.73/0.73 (the last
///   four before the vectorised weight transform, which costs little on these maps).
/// - Batch 4 on 64×64 maps: 256→256 0.72/0.66 and 0.50/0.49, 256→128 1.14/1.03 and 0.65/0.60,
///   128→128 0.96/0.78 and 0.71/0.56, 64→64 0.88/1.17 and 0.74/0.80 (64 channels are left to
///   the direct kernels: the training presets' 64-channel layers were not timed at their
///   batch).
pub(super) const WINOGRAD_F4X4_MIN_PIXELS: usize = 64 * 64;
pub(super) const WINOGRAD_F4X4_MIN_CHANNELS: usize = 128;

/// The map (pixels per channel) and channel counts (fewer, more of input and output) from which
/// the forward pass alone also takes F(2×2, 3×3) on maps below [`WINOGRAD_MIN_PIXELS`]
/// ([`Geom::winograd_forward`]). Measured with `bench/winograd_layers.sh` (Intel Xeon, 2
/// threads, batch 2, medians of 3 rounds), F(2×2) ÷ direct forward on 16×16 maps: 1280→1280
/// 0.84, 2560→1280 0.82, 1920→1280 0.82, 640→1280 0.92, 1280→640 0.85 (the Stable Diffusion
/// 1.5 U-Net's 16×16 level); 640→640 1.06, 512→512 0.96, and at batch 32 256→256 1.04, 256→128
/// 1.32, 128→128 1.34; 1280→1280 on 12×12 1.08 and on 8×8 1.41. The input gradients of the
/// winning layers were 0.96–1.35, so they stay direct.
pub(super) const WINOGRAD_FORWARD_MIN_PIXELS: usize = 16 * 16;
pub(super) const WINOGRAD_FORWARD_MIN_CHANNELS: (usize, usize) = (640, 1280);

/// `STIPPLE_CONV_WINOGRAD=none|f2x2|f4x4`, read once: the algorithm forced on every 3×3
/// stride-1 "same" layer (`Some(None)` for the direct kernels), to time one against another.
fn forced_winograd() -> Option<Option<Variant>> {
    static FORCED: OnceLock<Option<String>> = OnceLock::new();
    match FORCED.get_or_init(|| std::env::var("STIPPLE_CONV_WINOGRAD").ok()).as_deref() {
        Some("none") => Some(None),
        Some("f2x2") => Some(Some(Variant::F2x2)),
        Some("f4x4") => Some(Some(Variant::F4x4)),
        _ => None,
    }
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geom {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) s: usize,
    pub(super) p: usize,
    pub(super) ho: usize,
    pub(super) wo: usize,
}

impl Geom {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(b: usize, c: usize, h: usize, w: usize, o: usize, kh: usize, kw: usize, s: usize, p: usize) -> Result<Self> {
        if s == 0 {
            bail!("conv2d: stride must be positive")
        }
        if kh == 0 || kw == 0 || h + 2 * p < kh || w + 2 * p < kw {
            bail!("conv2d: kernel {kh}×{kw} does not fit input {h}×{w} with padding {p}")
        }
        let (ho, wo) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
        Ok(Self { b, c, h, w, o, kh, kw, s, p, ho, wo })
    }

    /// The geometry of input `x (B, C, H, W)` and weight `w (O, C, kh, kw)`.
    pub(super) fn of(x: &Layout, w: &Layout, stride: usize, padding: usize) -> Result<Self> {
        let (b, c, h, wd) = x.shape().dims4()?;
        let (o, c2, kh, kw) = w.shape().dims4()?;
        if c != c2 {
            bail!("conv2d: input has {c} channels, weight {:?} expects {c2}", w.shape().dims())
        }
        Self::new(b, c, h, wd, o, kh, kw, stride, padding)
    }

    /// GEMM depth: rows of the im2col matrix.
    pub(super) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per sample: columns of the im2col matrix.
    pub(super) fn n(&self) -> usize {
        self.ho * self.wo
    }

    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.s == 1 && self.p == 0
    }

    /// Whether [`shifted`] computes this convolution (forward and both gradients): a
    /// [`Geom::same_stride1`] kernel larger than 1×1 on a map of at least
    /// [`SHIFTED_MIN_PIXELS`].
    pub(super) fn shifted(&self) -> bool {
        self.same_stride1() && !self.pointwise() && self.h * self.w >= SHIFTED_MIN_PIXELS
    }

    /// Which [`winograd`] algorithm computes the forward pass and the gradient w.r.t. the input
    /// (for f32), if one does, for a stride-1 "same" 3×3 convolution: F(4×4, 3×3) on maps of
    /// at least [`WINOGRAD_F4X4_MIN_PIXELS`] with at least [`WINOGRAD_F4X4_MIN_CHANNELS`] input
    /// and output channels, otherwise F(2×2, 3×3) on maps of at least [`WINOGRAD_MIN_PIXELS`]
    /// with at least [`WINOGRAD_MIN_CHANNELS`] channels (the fewer of input and output, the
    /// more). `STIPPLE_CONV_WINOGRAD=none|f2x2|f4x4` forces the choice
    /// for every 3×3 stride-1 "same" layer (to time one against another).
    pub(super) fn winograd(&self) -> Option<Variant> {
        if !self.winograd_shape() {
            return None;
        }
        if let Some(forced) = forced_winograd() {
            return forced;
        }
        let (fewer, more) = WINOGRAD_MIN_CHANNELS;
        let large = self.h * self.w >= WINOGRAD_MIN_PIXELS && self.c.min(self.o) >= fewer && self.c.max(self.o) >= more;
        let f4x4 = self.h * self.w >= WINOGRAD_F4X4_MIN_PIXELS && self.c.min(self.o) >= WINOGRAD_F4X4_MIN_CHANNELS;
        match (f4x4, large) {
            (true, _) => Some(Variant::F4x4),
            (false, true) => Some(Variant::F2x2),
            (false, false) => None,
        }
    }

    /// [`Geom::winograd`] for the forward pass: also F(2×2, 3×3) on the smaller maps with many
    /// channels of [`WINOGRAD_FORWARD_MIN_PIXELS`] (where the input gradient stays direct).
    pub(super) fn winograd_forward(&self) -> Option<Variant> {
        let (fewer, more) = WINOGRAD_FORWARD_MIN_CHANNELS;
        let wide = self.h * self.w >= WINOGRAD_FORWARD_MIN_PIXELS && self.c.min(self.o) >= fewer && self.c.max(self.o) >= more;
        match self.winograd() {
            None if wide && self.winograd_shape() && forced_winograd().is_none() => Some(Variant::F2x2),
            choice => choice,
        }
    }

    /// A stride-1 "same" 3×3 convolution: the shape Winograd's algorithms here compute.
    fn winograd_shape(&self) -> bool {
        self.kh == 3 && self.kw == 3 && self.same_stride1()
    }

    /// Whether the direct kernels compute the forward pass (for f32): output channels in
    /// vectors of 16, a kernel larger than 1×1 (a 1×1 convolution is one GEMM per sample), and
    /// not [`Geom::weight_bound`].
    pub(super) fn direct_forward(&self) -> bool {
        direct::available() && self.o.is_multiple_of(16) && !self.pointwise() && !self.weight_bound()
    }

    /// A layer whose weight is large for its outputs: at least [`WEIGHT_BOUND_VALUES`] weight
    /// values per output position of the batch, on maps of at least [`WEIGHT_BOUND_PIXELS`]
    /// output pixels. im2col + GEMM computes its forward pass faster than the direct kernels,
    /// which read the weight again for every band of output rows; the GEMM reads it once per
    /// sample, in cache blocks.
    fn weight_bound(&self) -> bool {
        let pixels = self.ho * self.wo;
        pixels >= WEIGHT_BOUND_PIXELS && self.o * self.c * self.kh * self.kw >= WEIGHT_BOUND_VALUES * self.b * pixels
    }

    /// Whether a kernel that can normalise its input as it reads it (`super::conv2d_normalized`)
    /// computes the forward pass (f32): [`winograd`], or else the [`direct`] kernel.
    pub(super) fn normalized_forward(&self) -> bool {
        self.winograd_forward().is_some() || self.direct_forward()
    }

    /// Whether the direct kernels compute the gradient w.r.t. the input: a stride-1 "same"
    /// convolution (so that it is a forward convolution of `dy`) with input channels in
    /// vectors of 16.
    pub(super) fn direct_input_gradient(&self) -> bool {
        direct::available() && self.c.is_multiple_of(16) && self.same_stride1() && !self.pointwise()
    }

    /// Whether the direct kernels compute the gradient w.r.t. the weight: a 3×3 kernel with
    /// output channels in vectors of 16, on a CPU with AVX-512 (`direct::weight_gradient_available`;
    /// with AVX2 the shifted GEMMs were faster). On large "same" maps this is also faster than the
    /// shifted GEMMs (each a product over all the map's pixels), since the kernel reads each
    /// block's `dy` from L1 (`direct::weight_gradient`). Measured (`conv_bench`, Intel Xeon, one
    /// thread, weight gradient alone, shifted → direct): 128→128 at 32×32, batch 32, 54.9 →
    /// 46.2 ms; 256→256 at 32×32, batch 32, 214 → 188 ms; 640→640 at 32×32, batch 2, 97.7 →
    /// 91.9 ms; 320→320 at 64×64, batch 1, 40.1 → 35.2 ms; 128→128 at 64×64, batch 4, 29.0 →
    /// 23.1 ms.
    pub(super) fn direct_weight_gradient(&self) -> bool {
        direct::weight_gradient_available() && self.o.is_multiple_of(16) && self.kh == 3 && self.kw == 3
    }

    /// Stride 1 and "same" padding (output size = input size, e.g. 3×3 with padding 1): then
    /// the im2col row of kernel tap `(i, j)` is the channel plane shifted by [`Geom::shift`],
    /// except where the shift wraps across a row border ([`Tap`]).
    pub(super) fn same_stride1(&self) -> bool {
        self.s == 1 && self.ho == self.h && self.wo == self.w
    }

    /// For a [`Geom::same_stride1`] geometry and kernel tap `(i, j)`: the output pixels
    /// `lo..hi` read the input pixel at offset `n + shift` inside the image plane; those
    /// among them in the columns `wrap` read across a row border and are zero.
    pub(super) fn tap(&self, i: usize, j: usize) -> Tap {
        let (w, hw, p) = (self.w as isize, (self.h * self.w) as isize, self.p as isize);
        let shift = (i as isize - p) * w + (j as isize - p);
        // Output rows whose input row `oh + i − p` is inside the image.
        let oh0 = (p - i as isize).clamp(0, self.h as isize);
        let oh1 = (self.h as isize + p - i as isize).clamp(oh0, self.h as isize);
        // Within those rows, the pixels whose flat source index lies in the plane; the ones
        // clipped here are all in `wrap` columns.
        let lo = (oh0 * w).max(-shift).min(oh1 * w);
        let hi = (oh1 * w).min(hw - shift).max(lo);
        let dj = j as isize - p;
        let wrap = if dj < 0 { 0..(-dj).min(w) } else { (w - dj).max(0)..w };
        Tap {
            rows: oh0 as usize..oh1 as usize,
            lo: lo as usize,
            hi: hi as usize,
            shift,
            wrap: wrap.start as usize..wrap.end as usize,
        }
    }

    /// For kernel column `j`: the output columns `ow0..ow1` that read inside the image.
    pub(super) fn valid_cols(&self, j: usize) -> (usize, usize) {
        let (s, p) = (self.s, self.p);
        let ow0 = if p > j { (p - j).div_ceil(s) } else { 0 }.min(self.wo);
        let ow1 = if self.w + p > j { (self.w + p - j).div_ceil(s) } else { 0 }.min(self.wo);
        (ow0, ow1.max(ow0))
    }

    /// For kernel row `i` and output row `oh`: the input row read, if inside the image.
    pub(super) fn input_row(&self, i: usize, oh: usize) -> Option<usize> {
        let r = oh * self.s + i;
        (r >= self.p && r - self.p < self.h).then(|| r - self.p)
    }
}

/// See [`Geom::tap`].
pub(super) struct Tap {
    /// Output rows that read inside the image (the others are zero).
    pub(super) rows: std::ops::Range<usize>,
    /// Flat output pixels `lo..hi` read input pixel `n + shift`.
    pub(super) lo: usize,
    pub(super) hi: usize,
    pub(super) shift: isize,
    /// Output columns that read across a row border, in every row of `rows`.
    pub(super) wrap: std::ops::Range<usize>,
}

impl Tap {
    /// Zeroes the pixels of an im2col row (`N = H·W` values) that read outside the image.
    pub(super) fn zero_outside<T: Elem>(&self, g: &Geom, row: &mut [T]) {
        let w = g.w;
        row[..self.rows.start * w].fill(T::ZERO);
        row[self.rows.end * w..].fill(T::ZERO);
        // Column by column (usually one): a fill per image row would be a `memset` call
        // for a single value.
        for col in self.wrap.clone() {
            for v in row[self.rows.start * w..self.rows.end * w].iter_mut().skip(col).step_by(w) {
                *v = T::ZERO;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 "same" layer from `c` to `o` channels on `b` maps of `h×h`.
    fn layer(b: usize, c: usize, o: usize, h: usize) -> Geom {
        Geom::new(b, c, h, h, o, 3, 3, 1, 1).unwrap()
    }

    #[test]
    fn large_weights_on_small_batches_are_weight_bound() {
        // Stable Diffusion 1.5's 8×8 level at batch 2 (guidance).
        assert!(layer(2, 1280, 1280, 8).weight_bound());
        assert!(layer(2, 2560, 1280, 8).weight_bound());
        // Equal times measured: left to the direct kernels.
        assert!(!layer(2, 640, 640, 16).weight_bound());
        // Maps too small for the per-sample GEMM, and the benchmark presets' layers.
        assert!(!layer(32, 512, 512, 4).weight_bound());
        assert!(!layer(1, 1280, 1280, 4).weight_bound());
        for (b, c, h) in [(32, 256, 8), (16, 256, 8), (32, 128, 16), (32, 64, 32)] {
            assert!(!layer(b, c, c, h).weight_bound(), "{b}×{c}@{h}");
        }
    }
}
