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

    /// Output channels per block of the forward kernel's packed weights (`super::direct`):
    /// 32 with AVX-512, 16 with AVX2. A block's packed weights for one depth block of a 3×3
    /// kernel take `9·32·lanes·4` bytes: 36 KiB for 32 lanes, which fit the 48 KiB L1 of
    /// Intel's AVX-512 cores but not the 32 KiB of AMD's Zen 2 and Zen 3 (AVX2 only), where a
    /// block of 16 (18 KiB) stays in L1 while all the tiles of a band pass over it. Measured on
    /// AMD EPYC Zen 3 (`conv_layers` forward, batch 16, each layer's runs alternating 16 and 32
    /// in one process, 40 runs each, fastest and median): 5–7% faster on 128→128 and 256→128
    /// at 8×8, 64→64 at 32×32 and 128→128 at 32×32 on one thread and on two.
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
