use std::time::Instant;
use candle_core::{Device, Tensor};
fn main() -> candle_core::Result<()> {
    stipple_nn::process::configure();
    for &(n, m, c, heads) in &[(4096usize, 4096usize, 320usize, 8usize), (4096, 4096, 640, 10), (1024, 1024, 1280, 20)] {
        let q = Tensor::randn(0f32, 1., (2, n, c), &Device::Cpu)?;
        let k = Tensor::randn(0f32, 1., (2, m, c), &Device::Cpu)?;
        let v = Tensor::randn(0f32, 1., (2, m, c), &Device::Cpu)?;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let _ = stipple_nn::ops::attention::attention(&q, &k, &v, heads, None)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let flops = 2.0 * 2.0 * (n * m * c) as f64 * 2.0;
        println!("n={n} m={m} c={c} h={heads}: {:.2} ms  {:.0} GFLOP/s", best * 1e3, flops / best / 1e9);
    }
    Ok(())
}
