//! How the work of one convolution is spread over candle's threads: over the samples of the
//! batch (each kernel single-threaded) or inside each sample (`STIPPLE_CONV_PARALLEL=batch|gemm`
//! forces one), and how many samples go to one call of the direct kernels.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

use gemm::Parallelism;
use rayon::prelude::*;

use super::elem::{assume_init, with_scratch, Elem};
use super::geometry::Geom;

/// How to spread the work over the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Samples in parallel, each GEMM on one thread.
    Batch(usize),
    /// Samples one after another, each GEMM on `n` threads (`Parallelism::None` when 1).
    Gemm(usize),
}

pub(super) fn plan(batch: usize) -> Plan {
    static FORCED: OnceLock<Option<String>> = OnceLock::new();
    // Counted once: without RAYON_NUM_THREADS candle parses /proc/cpuinfo on every call.
    static THREADS: OnceLock<usize> = OnceLock::new();
    let forced = FORCED.get_or_init(|| std::env::var("STIPPLE_CONV_PARALLEL").ok());
    let threads = *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1));
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
            .for_each(|(i, o)| with_scratch(|scratch| run(i, o, scratch, Parallelism::None))),
        Plan::Gemm(t) => with_scratch(|scratch| {
            for (i, o) in out.chunks_mut(group * len).enumerate() {
                run(i, o, scratch, gemm_par(t));
            }
        }),
    }
    // SAFETY: the chunks cover all `total` values and `f` initialised each.
    unsafe { assume_init(out) }
}

/// Samples per call of the [`direct`] kernels: on maps narrower than 8 pixels a register tile
/// of 8 samples, otherwise enough samples for 256 output pixels (the weight gradient's
/// accumulators are stored once per call), at most 8 and at most one thread's share of the
/// batch; 1 when the kernels split single samples over the threads.
pub(super) fn direct_group(g: &Geom) -> usize {
    match plan(g.b) {
        Plan::Batch(t) => {
            let want = if g.wo < 8 { 8 } else { (256 / g.n().max(1)).clamp(1, 8) };
            want.min(g.b.div_ceil(t)).max(1)
        }
        Plan::Gemm(_) => 1,
    }
}
