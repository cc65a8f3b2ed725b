//! How the work of one convolution is spread over the threads: over the samples of the batch
//! (each kernel single-threaded) or inside each sample (`STIPPLE_CONV_PARALLEL=batch|gemm`
//! forces one), how many samples go to one call of the direct kernels, and the groups of
//! samples of the weight gradient's partial sums (fixed by the shapes).

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

use gemm::Parallelism;
use rayon::prelude::*;

use super::elem::{assume_init, Elem};
use crate::ops::scratch;
use super::geometry::Geom;

/// How to spread the work over the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Samples in parallel, each GEMM on one thread.
    Batch(usize),
    /// Samples one after another, each GEMM on `n` threads (`Parallelism::None` when 1).
    Gemm(usize),
}

/// The plan for `batch` independent items on the threads of the current rayon pool (the
/// global one, sized by `RAYON_NUM_THREADS` as candle's thread count is, or the pool a caller
/// `install`s).
pub(super) fn plan(batch: usize) -> Plan {
    static FORCED: OnceLock<Option<String>> = OnceLock::new();
    let forced = FORCED.get_or_init(|| std::env::var("STIPPLE_CONV_PARALLEL").ok());
    let threads = rayon::current_num_threads().max(1);
    match forced.as_deref() {
        Some("gemm") => Plan::Gemm(threads),
        Some("batch") if threads > 1 => Plan::Batch(threads),
        _ if threads > 1 && batch >= threads => Plan::Batch(threads),
        _ => Plan::Gemm(threads),
    }
}

/// Whether a kernel given `par` spreads its work over the threads itself.
pub(super) fn threaded(par: Parallelism) -> bool {
    !matches!(par, Parallelism::None)
}

pub(super) fn gemm_par(threads: usize) -> Parallelism {
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A vector of `b·len` values: the chunk of every group of `group` consecutive samples (fewer
/// at the end) is passed uninitialised to `f(samples, chunk, scratch, parallelism)` by the
/// thread that works on that group, which must initialise all of it (the direct kernels write
/// every value; the others start from [`zeroed`]). (A `vec![0; b·len]` would zero all of it
/// serially on the calling thread first.)
pub(super) fn per_group<T: Elem>(g: &Geom, len: usize, group: usize, f: impl Fn(Range<usize>, &mut [MaybeUninit<T>], &mut Vec<T>, Parallelism) + Sync) -> Vec<T> {
    let total = g.b * len;
    if total == 0 {
        return vec![T::ZERO; total];
    }
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(total);
    // SAFETY: `MaybeUninit` values need no initialisation.
    unsafe { out.set_len(total) };
    let run = |i: usize, chunk: &mut [MaybeUninit<T>], scratch: &mut Vec<T>, par: Parallelism| {
        let samples = i * group..i * group + chunk.len() / len;
        f(samples, chunk, scratch, par)
    };
    match plan(g.b) {
        Plan::Batch(_) => out
            .par_chunks_mut(group * len)
            .enumerate()
            .for_each(|(i, o)| scratch::with_vec(|scratch| run(i, o, scratch, Parallelism::None))),
        Plan::Gemm(t) => scratch::with_vec(|scratch| {
            for (i, o) in out.chunks_mut(group * len).enumerate() {
                run(i, o, scratch, gemm_par(t));
            }
        }),
    }
    // SAFETY: the chunks cover all `total` values and `f` initialised each.
    unsafe { assume_init(out) }
}

/// Samples per call of the [`direct`] forward kernel: on maps narrower than 8 pixels a register
/// tile of 8 samples, otherwise enough samples for 256 output pixels, at most 8 and at most one
/// thread's share of the batch; 1 when the kernel splits single samples over the threads. (The
/// outputs of each sample are summed in the same order whatever the group.)
pub(super) fn direct_group(g: &Geom) -> usize {
    match plan(g.b) {
        Plan::Batch(t) => direct_samples(g).min(g.b.div_ceil(t)).max(1),
        Plan::Gemm(_) => 1,
    }
}

/// The samples a [`direct`] kernel call wants: 8 (a register tile of samples) on maps narrower
/// than 8 pixels, otherwise enough for 256 output pixels, at most 8.
fn direct_samples(g: &Geom) -> usize {
    if g.wo < 8 {
        8
    } else {
        (256 / g.n().max(1)).clamp(1, 8)
    }
}

/// Groups of samples with a partial sum of the weight gradient each. Each group more costs a
/// partial sum to fill and add (measured on bench-unet32's training step, Intel Xeon, 2
/// threads, batch 32: 4 groups took up to 2% more CPU time than one per thread, 8 groups 4%); with more
/// threads than groups, each group's kernels split their work over a share of the threads.
const WEIGHT_PARTIALS: usize = 4;

/// The partial sums of one weight gradient take at most this many bytes together.
const WEIGHT_PARTIALS_BYTES: usize = 32 << 20;

/// The weight gradient sums over the samples: [`weight_partials`] cuts the batch into groups of
/// consecutive samples, each summed into its own partial sum, in calls of
/// [`weight_group`] samples (the direct kernel sums a call's samples in its registers), and the
/// partial sums are then added in a fixed order. The groups depend on the shapes alone (at most
/// [`WEIGHT_PARTIALS`], and fewer when their partial sums of `elem` bytes per value would pass
/// [`WEIGHT_PARTIALS_BYTES`]), never on the thread count, so the gradient's bits do not either:
/// training on another number of threads repeats itself.
pub(super) fn weight_partials(g: &Geom, direct: bool, elem: usize) -> Vec<Range<usize>> {
    let bytes = (g.o * g.k() * elem).max(1);
    let calls = g.b / weight_group(g, direct, g.b);
    let groups = calls.min(WEIGHT_PARTIALS).min((WEIGHT_PARTIALS_BYTES / bytes).max(1)).max(1);
    (0..groups).map(|i| i * g.b / groups..(i + 1) * g.b / groups).collect()
}

/// Samples per call of the kernels in a weight-gradient group of `len` samples: for the
/// [`direct`] kernel as [`direct_samples`], at most the group; one for the others.
pub(super) fn weight_group(g: &Geom, direct: bool, len: usize) -> usize {
    if direct {
        direct_samples(g).min(len).max(1)
    } else {
        1
    }
}
