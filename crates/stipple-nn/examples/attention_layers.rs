//! Times Stipple's attention op (`ops::attention::attention`, inference) on the shapes of
//! Stable Diffusion's self-attention layers at batch 2: SD 1.5's 64×64 level (4096 tokens, 320
//! channels, 8 heads) and SDXL's 64×64 and 32×32 levels (640 channels and 10 heads, 1280 and
//! 20). Prints the fastest of 5 runs per shape and its GFLOP/s (`QKᵀ` and the weighted sum,
//! 2·N·M·C multiply-adds per batch element).
//!
//! Usage: `attention_layers` (threads from `RAYON_NUM_THREADS`).

use std::time::Instant;

use candle_core::{Device, Tensor};

fn main() -> candle_core::Result<()> {
    stipple_nn::process::configure();
    stipple_nn::process::on_workers(run)
}

fn run() -> candle_core::Result<()> {
    for &(n, c, heads) in &[(4096usize, 320usize, 8usize), (4096, 640, 10), (1024, 1280, 20)] {
        let [q, k, v] = [0; 3].map(|_| Tensor::randn(0f32, 1., (2, n, c), &Device::Cpu));
        let (q, k, v) = (q?, k?, v?);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            stipple_nn::ops::attention::attention(&q, &k, &v, heads, None)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let flops = 2.0 * 2.0 * (n * n * c) as f64 * 2.0;
        println!("n={n} c={c} heads={heads}: {:.2} ms  {:.0} GFLOP/s", best * 1e3, flops / best / 1e9);
    }
    Ok(())
}
