//! The sizes of one 1-D convolution, which outputs each kernel tap reaches, and how the
//! output positions are cut into chunks for the threads.

use std::ops::Range;

use candle_core::{bail, Layout, Result};

/// Output positions per task of the forward pass and the input gradient: enough that the
/// GEMMs of a task are long (`n` ≥ 256), few enough that one chunk of the output
/// (`O × chunk` values) stays in the L2 cache across the kernel's taps.
const CHUNK_VALUES: usize = 64 * 1024;

/// Sizes of one convolution: `x (B, C, L)`, `w (O, C, K)`, stride `s`, zero padding `p` on
/// both sides, dilation `d`; output `(B, O, Lo)` with `Lo = (L + 2p − d(K − 1) − 1)/s + 1`
/// (PyTorch's `Conv1d` formula).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geom {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) l: usize,
    pub(super) o: usize,
    pub(super) k: usize,
    pub(super) s: usize,
    pub(super) p: usize,
    pub(super) d: usize,
    pub(super) lo: usize,
}

impl Geom {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(b: usize, c: usize, l: usize, o: usize, k: usize, s: usize, p: usize, d: usize) -> Result<Self> {
        if s == 0 || d == 0 {
            bail!("conv1d: stride and dilation must be positive (got stride {s}, dilation {d})")
        }
        let span = d * k.saturating_sub(1) + 1;
        if k == 0 || l + 2 * p < span {
            bail!("conv1d: kernel of size {k} with dilation {d} does not fit an input of length {l} with padding {p}")
        }
        Ok(Self { b, c, l, o, k, s, p, d, lo: (l + 2 * p - span) / s + 1 })
    }

    /// The geometry of input `x (B, C, L)` and weight `w (O, C, K)`.
    pub(super) fn of(x: &Layout, w: &Layout, s: usize, p: usize, d: usize) -> Result<Self> {
        let (b, c, l) = x.shape().dims3()?;
        let (o, c2, k) = w.shape().dims3()?;
        if c != c2 {
            bail!("conv1d: input has {c} channels, weight {:?} expects {c2}", w.shape().dims())
        }
        Self::new(b, c, l, o, k, s, p, d)
    }

    /// The output positions whose kernel tap `j` reads an input position in `inputs`: output
    /// `t` reads `t·s + j·d − p`.
    pub(super) fn outputs_reading(&self, j: usize, inputs: Range<usize>) -> Range<usize> {
        let off = j * self.d;
        let first = |i: usize| if i + self.p > off { (i + self.p - off).div_ceil(self.s) } else { 0 }.min(self.lo);
        let start = first(inputs.start);
        start..first(inputs.end).max(start)
    }

    /// The input position that output `t` reads through tap `j` (`t` from
    /// [`Geom::outputs_reading`]).
    pub(super) fn input_of(&self, j: usize, t: usize) -> usize {
        t * self.s + j * self.d - self.p
    }

    /// Positions per task along an axis whose chunk holds `rows` channels (see
    /// [`CHUNK_VALUES`]).
    pub(super) fn chunk(rows: usize) -> usize {
        (CHUNK_VALUES / rows.max(1)).clamp(256, 4096)
    }
}

/// The tasks `(sample, positions)` that cut `b` samples of `len` positions into chunks of
/// `chunk`, sample by sample.
pub(super) fn tasks(b: usize, len: usize, chunk: usize) -> Vec<(usize, Range<usize>)> {
    (0..b).flat_map(|bi| (0..len).step_by(chunk.max(1)).map(move |a| (bi, a..(a + chunk).min(len)))).collect()
}

/// The positions in both ranges.
pub(super) fn intersect(a: Range<usize>, b: &Range<usize>) -> Range<usize> {
    let start = a.start.max(b.start);
    start..a.end.min(b.end).max(start)
}
