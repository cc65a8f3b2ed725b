//! Times single convolution layers of Stipple's `conv2d` op: forward, and backward (input,
//! weight and bias gradients), the per-layer half of `bench/conv_layers.sh`, whose PyTorch
//! twin is `bench/reference/conv_layers.py`.
//!
//! Usage: `conv_layers BATCH REPS LAYER...` with `LAYER = count,C,O,H,k,stride` (a `k×k`
//! kernel with padding `k/2` on an `H×H` map; `count` only travels to the output). Prints one
//! JSON object per layer with the fastest of `REPS` runs of each pass, in milliseconds.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use stipple_nn::ops::conv2d::{Conv2dBackward, Conv2dBiasGrad, Conv2dOp};

fn main() -> Result<()> {
    stipple_nn::process::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: conv_layers BATCH REPS count,C,O,H,k,stride ...";
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("{usage}: {s:?} is not a number"));
    let [batch, reps] = [0, 1].map(|i| number(args.get(i).expect(usage)));
    for layer in &args[2..] {
        let v: Vec<usize> = layer.split(',').map(number).collect();
        let [count, c, o, h, k, stride] = v[..] else { panic!("{usage}: {layer:?} is not six numbers") };
        let padding = k / 2;
        let ho = (h + 2 * padding - k) / stride + 1;
        let x = Tensor::randn(0f32, 1., (batch, c, h, h), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 0.1, (o, c, k, k), &Device::Cpu)?;
        let bias = Tensor::randn(0f32, 1., o, &Device::Cpu)?;
        let dy = Tensor::randn(0f32, 1., (batch, o, ho, ho), &Device::Cpu)?;
        let (mut forward, mut backward) = (f64::MAX, f64::MAX);
        for _ in 0..reps {
            let t = Instant::now();
            drop(x.apply_op3_no_bwd(&w, &bias, &Conv2dOp { stride, padding })?);
            forward = forward.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let grads = x.apply_op3_no_bwd(&w, &dy, &Conv2dBackward { stride, padding })?;
            drop((grads, dy.apply_op1_no_bwd(&Conv2dBiasGrad)?.sum(0)?));
            backward = backward.min(t.elapsed().as_secs_f64());
        }
        println!(r#"{{"layer": "{layer}", "count": {count}, "forward_ms": {:.3}, "backward_ms": {:.3}}}"#, forward * 1e3, backward * 1e3);
    }
    Ok(())
}
