//! The CPU's GEMM peak as Stipple reaches it.

use std::time::Instant;

use serde::Serialize;

use crate::median;

/// Best and median GFLOP/s of an `n × n × n` f32 GEMM.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmPeak {
    pub n: usize,
    pub runs: usize,
    pub best_gflops: f64,
    pub median_gflops: f64,
    pub implementation: String,
}

/// Times a 2048³ f32 GEMM of the `gemm` crate (the GEMM of candle's CPU matmul and of
/// `stipple_nn::ops::conv2d`) on `threads` threads: one untimed run, then 5 timed ones.
pub fn gemm_peak(threads: usize) -> GemmPeak {
    gemm_peak_of_size(2048, 5, threads)
}

fn gemm_peak_of_size(n: usize, runs: usize, threads: usize) -> GemmPeak {
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32 - 48.0) / 97.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 89) as f32 - 44.0) / 89.0).collect();
    let mut c = vec![0f32; n * n];
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let mut once = || {
        let t0 = Instant::now();
        // SAFETY: a, b and c are n×n row-major buffers (column stride 1, row stride n) that
        // outlive the call; c does not alias a or b.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0f32,
                1f32,
                false,
                false,
                false,
                par,
            )
        };
        t0.elapsed().as_secs_f64()
    };
    once();
    let times: Vec<f64> = (0..runs).map(|_| once()).collect();
    let flop = 2.0 * (n * n * n) as f64;
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    GemmPeak {
        n,
        runs,
        best_gflops: flop / best / 1e9,
        median_gflops: flop / median(&times) / 1e9,
        implementation: "gemm crate 0.19 (f32)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_gemm_reports_a_finite_positive_rate_best_at_least_median() {
        let p = gemm_peak_of_size(64, 3, 1);
        assert_eq!((p.n, p.runs), (64, 3));
        assert!(p.best_gflops.is_finite() && p.best_gflops > 0.0, "{p:?}");
        assert!(p.best_gflops >= p.median_gflops, "{p:?}");
    }
}
