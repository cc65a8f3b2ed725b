//! The vector instructions the direct kernels (`super::direct`) are written in, one
//! implementation per instruction set: AVX-512F (16 lanes of f32, 32 registers) and AVX2 with
//! FMA (8 lanes, 16 registers; AMD's Zen 2 and Zen 3, Intel's cores before AVX-512). The kernels
//! are generic over [`Vector`] and compiled once per set, inside a function with that set's
//! `#[target_feature]`, into which these `#[inline(always)]` methods inline.

use std::arch::x86_64::*;
use std::sync::OnceLock;

/// The instruction set the direct kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// AVX-512F: a register tile of 32 channels by 8 outputs (16 of the 32 registers).
    Avx512,
    /// AVX2 + FMA: register tiles of 16 channels by 6 outputs (12 of the 16 registers).
    Avx2,
}

impl Isa {
    /// Outputs per register tile of the forward kernel (`super::direct`): with AVX-512, 8 outputs
    /// by 32 channels (16 accumulators); with AVX2, 6 by 16 channels (12 accumulators, the
    /// "6 × 16" of BLIS's Haswell micro-kernel, Van Zee and van de Geijn, ACM TOMS 2015).
    pub(super) fn tile_outputs(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 6,
        }
    }

    /// Input channels per depth block of the forward kernel (`super::direct`) on a map of
    /// `pixels` input pixels.
    ///
    /// With AVX-512, 32: a block of 32 output channels' packed weights for a 3×3 kernel then
    /// take 36 KiB and stay in the 48 KiB L1 while every register tile of a band passes over
    /// them. Measured on one thread (Xeon, Sapphire Rapids class, CPU time): 16 as fast, 64
    /// (72 KiB) 10–25% slower.
    ///
    /// With AVX2, 256 on maps of up to 32×32 pixels: fewer depth blocks mean fewer passes of a
    /// tile over its taps (each pass's setup, and the partial sums stored and reloaded between
    /// passes). Measured on AMD EPYC Zen 3 (`conv_layers`, 2 threads, batch 32, the variants
    /// alternating in one process, fastest and median runs): against 32, 128 made the forward
    /// 2–9% faster on 8×8 to 32×32 layers of 64–256 channels (up to 20% on 128→128 at 8×8),
    /// and 256 another 0–6% on those with 192–512 input channels; 512 was level with 256 on
    /// 512→512 at 8×8. On larger maps it stays 32: the
    /// normalised planes `interleave` keeps for a depth block take `kc·H·W` values, and the
    /// depth blocks are what it spreads over the threads for a single sample.
    pub(super) fn depth_block(self, pixels: usize) -> usize {
        match self {
            Isa::Avx2 if pixels <= 32 * 32 => 256,
            _ => 32,
        }
    }

    /// Output channels per block of the forward kernel's packed weights (`super::direct`):
    /// 32 with AVX-512, 16 with AVX2, whose register tiles take 16 channels at a time (with
    /// blocks of 32, each tile passed twice over the block's weights, reading half of every
    /// 128-byte row each time). Measured on AMD EPYC Zen 3 (`conv_layers` forward, the variants
    /// alternating in one process, 25–40 runs each, one thread and two): with depth blocks of 32
    /// channels, 16 was 5–7% faster on 128→128 and 256→128 at 8×8 and on 64→64 and 128→128 at
    /// 32×32; with AVX2's depth blocks of 256 ([`Isa::depth_block`]), 32 was 3–19% slower than
    /// 16 on the same layers and 256→128 at 16×16.
    pub(super) fn block(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2 => 16,
        }
    }
}

/// The best set this CPU has, checked once; `None` without AVX2 + FMA (the im2col and shifted
/// GEMM paths then compute every convolution). `STIPPLE_CONV_DIRECT=avx2|none`, read once,
/// chooses a lesser set than the CPU's (to test and time the AVX2 kernels on an AVX-512 CPU).
pub(super) fn isa() -> Option<Isa> {
    static ISA: OnceLock<Option<Isa>> = OnceLock::new();
    *ISA.get_or_init(|| {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let best = if is_x86_feature_detected!("avx512f") {
            Some(Isa::Avx512)
        } else if avx2 {
            Some(Isa::Avx2)
        } else {
            None
        };
        match std::env::var("STIPPLE_CONV_DIRECT").as_deref() {
            Ok("none") => None,
            Ok("avx2") if avx2 => Some(Isa::Avx2),
            _ => best,
        }
    })
}

/// One vector register of f32 lanes.
///
/// # Safety
/// Every method needs the instruction set of its implementation (the caller's target feature).
pub(super) trait Vector: Copy {
    /// f32 values per register.
    const LANES: usize;
    unsafe fn zero() -> Self;
    /// `LANES` values from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self;
    /// `LANES` values to `p` (unaligned).
    unsafe fn store(self, p: *mut f32);
    /// `x` in every lane.
    unsafe fn splat(x: f32) -> Self;
    /// `self · b + c`, rounded once.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
}

impl Vector for __m512 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        _mm512_add_ps(self, b)
    }
}

impl Vector for __m256 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm256_fmadd_ps(self, b, c)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        _mm256_add_ps(self, b)
    }
}
