//! PyTorch's CPU generator: `torch.Generator("cpu").manual_seed(seed)` followed by
//! `torch.randn(n, generator=g)` in float32, reproduced so that a seed used with diffusers on
//! the CPU (or with the web UI's "CPU" random number source) gives the same noise here.
//!
//! The engine is MT19937 (Matsumoto & Nishimura 1998) seeded with the low 32 bits of the seed
//! (ATen `CPUGeneratorImpl`, `at::mt19937`). The normals follow ATen's CPU normal kernel
//! (aten/src/ATen/native/cpu/DistributionTemplates.h, `normal_kernel`):
//! - n ≥ 16: fill with n uniforms `(random() & (2²⁴−1))·2⁻²⁴`, then turn each block of 16 into
//!   normals by Box–Muller with u₁ = 1 − data[j], u₂ = data[j+8] (j < 8):
//!   data[j] = √(−2 ln u₁)·cos(2π u₂), data[j+8] = √(−2 ln u₁)·sin(2π u₂); when 16 does not
//!   divide n, the last 16 values are drawn again and transformed again (`normal_fill`);
//! - n < 16: one value at a time from `at::normal_distribution<double>`
//!   (aten/src/ATen/core/DistributionsHelper.h): two 53-bit uniforms u₁, u₂,
//!   r = √(−2 log1p(−u₂)), the cosine r·cos(2π u₁) returned and the sine r·sin(2π u₁) kept for
//!   the next value (in the generator's state, so across calls).
//!
//! ATen evaluates the float block transform with vectorised approximations of log, sin and
//! cos (`avx_mathfun.h`); here they are evaluated in f64 and rounded, so a value may differ
//! from PyTorch's in its last bit or two (tests/reference/make_seed_reference.py; the test
//! states the tolerance).

use rand_mt::Mt;

/// 2π rounded to f32, as ATen's float kernel multiplies by it.
const TWO_PI_F32: f32 = std::f32::consts::TAU;

/// The state of one `torch.Generator("cpu")`.
#[derive(Debug, Clone)]
pub struct TorchCpuGenerator {
    engine: Mt,
    /// The sine half of the last Box–Muller pair of [`TorchCpuGenerator::normal_f64`]
    /// (ATen's `next_double_normal_sample`).
    cached_normal: Option<f64>,
}

impl TorchCpuGenerator {
    /// `torch.Generator("cpu").manual_seed(seed)`: the low 32 bits of the seed seed MT19937.
    pub fn new(seed: u64) -> Self {
        Self { engine: Mt::new(seed as u32), cached_normal: None }
    }

    /// One float32 uniform in [0, 1) from 24 bits of one 32-bit draw.
    fn uniform_f32(&mut self) -> f32 {
        (self.engine.next_u32() & 0x00FF_FFFF) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// One float64 uniform in [0, 1) from 53 bits of two 32-bit draws (the first is the high word).
    fn uniform_f64(&mut self) -> f64 {
        let hi = u64::from(self.engine.next_u32());
        let lo = u64::from(self.engine.next_u32());
        (((hi << 32) | lo) & ((1u64 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One standard normal of `at::normal_distribution<double>` (the kernel for n < 16).
    fn normal_f64(&mut self) -> f64 {
        if let Some(z) = self.cached_normal.take() {
            return z;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.cached_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// `torch.randn(n, generator=g)` in float32: the next `n` standard normals.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n < 16 {
            return (0..n).map(|_| self.normal_f64() as f32).collect();
        }
        let mut data: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        for block in data.chunks_exact_mut(16) {
            box_muller_16(block);
        }
        if !n.is_multiple_of(16) {
            let tail = &mut data[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            box_muller_16(tail);
        }
        data
    }
}

/// ATen's `normal_fill_16` on 16 uniforms in place (see the module documentation).
fn box_muller_16(data: &mut [f32]) {
    for j in 0..8 {
        let u1 = 1.0f32 - data[j];
        let theta = f64::from(TWO_PI_F32 * data[j + 8]);
        let radius = (-2.0 * f64::from(u1).ln()).sqrt();
        data[j] = (radius * theta.cos()) as f32;
        data[j + 8] = (radius * theta.sin()) as f32;
    }
}
