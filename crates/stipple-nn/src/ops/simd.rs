//! Helpers that let the element-wise loops of the CPU kernels vectorise.
//!
//! The workspace is compiled for the baseline x86-64 (SSE2) so that its binaries run on any
//! x86-64 CPU. [`dispatch`] runs a closure compiled again for the widest instruction set the CPU
//! has (AVX-512, AVX2 + FMA, …; chosen once at run time by `pulp`, which the `gemm` crate
//! already uses for the same purpose), and [`exp_f32`] is an exponential written with plain
//! arithmetic, so that a loop calling it becomes vector code instead of one libm call per value.

/// Runs `kernel` compiled for the best instruction set of this CPU.
///
/// The kernel's `#[inline(always)]` `with_simd` (and the `#[inline(always)]` functions it
/// calls) are compiled into a function with that set's target features, so their loops
/// vectorise for it; calls that are not inlined run as they were compiled. (A closure would not
/// do: its body is a function of its own, compiled for the baseline.)
#[inline(always)]
pub(crate) fn dispatch<K: pulp::WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
}

/// `eˣ` in f32 within 2 ulp of the correctly rounded value over `[−87, 88]`; `x` is clamped
/// there first, so the result is never 0 or ∞ (`e⁻⁸⁷ ≈ 1.6·10⁻³⁸`, `e⁸⁸ ≈ 1.7·10³⁸`), and NaN
/// stays NaN.
///
/// Cephes' `expf` (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989):
/// `eˣ = 2ⁿ·eʳ` with `n = round(x·log₂e)` and `r = x − n·ln 2` (`ln 2` split in two parts so
/// that `r` is exact), `|r| ≤ ln 2 / 2`, and `eʳ ≈ 1 + r + r²·P(r)` with Cephes' degree-5
/// minimax polynomial `P`. The rounding adds and subtracts `1.5·2²³` (exact for `|x·log₂e| <
/// 2²²`) and `2ⁿ` is built from its exponent bits: no branch, no call, so the function
/// vectorises. The products and sums are fused multiply-adds (`mul_add`: one instruction with
/// the instruction sets [`dispatch`] compiles for, AVX2 + FMA and AVX-512): the attention
/// kernel's softmax on 64×64 latents 182 → 168 ms (Intel Xeon, 2 threads).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³
    // Cephes' coefficients; the last, 5.0000001201e-1, is 0.5 in f32.
    const P: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let er = p.mul_add(r * r, r) + 1.0;
    // n is the low bits of t's mantissa (t = 1.5·2²³ + n): 2ⁿ has exponent field n + 127.
    // Wrapping arithmetic: an overflow check (debug builds) is a call that stops vectorisation.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    er * f32::from_bits((n_int.wrapping_add(127) as u32) << 23)
}

/// `erf(x)` in f32 within 5·10⁻⁷ of the exact value (absolute error), NaN staying NaN.
///
/// Abramowitz & Stegun, *Handbook of Mathematical Functions*, 7.1.26 (error ≤ 1.5·10⁻⁷ in
/// exact arithmetic, the rest is f32 rounding of `1 − …`, an ulp of 1 being 1.2·10⁻⁷): `erf(|x|) = 1 − t·P(t)·e^(−x²)` with
/// `t = 1/(1 + 0.3275911·|x|)` and a degree-4 polynomial `P`, odd in `x`. PyTorch's CPU
/// kernels compute `erf` (hence the exact GELU) the same way (`Vectorized<float>::erf`,
/// `aten/src/ATen/cpu/vec`). Branch-free with [`exp_f32`], so that it vectorises.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_72, 1.421_413_8, -1.453_152_1, 1.061_405_4];
    let ax = x.abs();
    let t = 1.0 / (P * ax + 1.0);
    let poly = (((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0];
    (1.0 - poly * t * exp_f32(-ax * ax)).copysign(x)
}

/// `Σ f(v)` over `v`, in eight interleaved partial sums (which the compiler keeps in vector
/// registers).
#[inline(always)]
pub(crate) fn sum<T: Float>(v: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    let mut s = tail.iter().fold(T::zero(), |s, &x| s + f(x));
    for a in acc {
        s += a;
    }
    s
}

/// The largest value of `v` (−∞ for none), in 32 interleaved partial maxima: two AVX-512
/// vectors of f32 with independent maxima, so that the loop is not bound by the latency of one
/// maximum after another (with 8, the loop ran one 256-bit maximum per latency; 64 were kept in
/// memory instead of registers). Measured on the attention kernel (Intel Xeon, 2 threads,
/// 64×64 latents, 8 heads of 40): 189 → 182 ms.
#[inline(always)]
pub(crate) fn max<T: Float>(v: &[T]) -> T {
    let lowest = T::from_f64(f64::NEG_INFINITY);
    let pick = |a: T, x: T| if x > a { x } else { a };
    let mut acc = [lowest; 32];
    let chunks = v.chunks_exact(32);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = pick(*a, x);
        }
    }
    acc.into_iter().chain(tail.iter().copied()).fold(lowest, pick)
}

/// The float types of the CPU kernels, with the `exp` and `erf` they use.
pub(crate) trait Float: candle_core::WithDType + super::scratch::Scratch + Send + Sync {
    fn exp(self) -> Self;
    fn erf(self) -> Self;
}

/// f32 uses the vectorisable [`exp_f32`] (within 2 ulp) and [`erf_f32`]; f64, the exact
/// `f64::exp` and candle's `erf_f64` that the finite-difference tests rely on.
impl Float for f32 {
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }

    #[inline(always)]
    fn erf(self) -> Self {
        erf_f32(self)
    }
}

impl Float for f64 {
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }

    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive finite f32.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_f32_within_two_ulp() {
        let mut worst = 0;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let exact = (x as f64).exp() as f32;
            let u = ulps(exp_f32(x), exact);
            assert!(u <= 2, "exp({x}) = {} vs {exact}: {u} ulp", exp_f32(x));
            worst = worst.max(u);
            x += 0.001_37;
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(worst >= 1, "the sweep should meet rounding differences");
    }

    #[test]
    fn exp_f32_clamps_and_keeps_nan() {
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-1e30), exp_f32(-87.0));
        assert!(exp_f32(-1e30) > 0.0);
        assert_eq!(exp_f32(1e30), exp_f32(88.0));
        assert!(exp_f32(f32::INFINITY).is_finite());
    }

    #[test]
    fn erf_f32_within_5e7() {
        let mut worst = 0f64;
        let mut x = -10.0f32;
        while x <= 10.0 {
            let exact = candle_core::cpu::erf::erf_f64(x as f64);
            let err = (erf_f32(x) as f64 - exact).abs();
            assert!(err <= 5e-7, "erf({x}) = {} vs {exact}", erf_f32(x));
            worst = worst.max(err);
            x += 0.000_731;
        }
        assert!(worst > 1e-8, "the sweep should meet the approximation's error");
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(-30.0), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
    }

    struct ExpAll<'a>(&'a mut [f32]);

    impl pulp::WithSimd for ExpAll<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            for v in self.0.iter_mut() {
                *v = exp_f32(*v);
            }
        }
    }

    #[test]
    fn dispatched_kernel_matches_the_plain_loop() {
        let v: Vec<f32> = (0..1003).map(|i| i as f32 * 0.173 - 87.5).collect();
        let mut fast = v.clone();
        dispatch(ExpAll(&mut fast));
        for (f, &x) in fast.iter().zip(&v) {
            assert_eq!(f.to_bits(), exp_f32(x).to_bits(), "exp({x})");
        }
    }
}
