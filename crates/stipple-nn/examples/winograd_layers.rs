//! Times the two passes that Winograd's algorithms compute, the forward pass and the gradient
//! w.r.t. the input, of 3×3 stride-1 "same" layers, to choose between the direct kernels,
//! F(2×2, 3×3) and F(4×4, 3×3) (`bench/winograd_layers.sh` runs it once per choice, set by
//! `STIPPLE_CONV_WINOGRAD=none|f2x2|f4x4`).
//!
//! Usage: `winograd_layers BATCH REPS LAYER...` with `LAYER = C,O,H` (`C → O` channels on an
//! `H×H` map). Prints one JSON object per layer with the fastest of `REPS` runs of each pass:
//! wall time and the process's CPU time (all threads), in milliseconds.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use stipple_nn::ops::conv2d::{Conv2dBackwardInput, Conv2dOp};

/// This process's user + system CPU time in seconds (`/proc/self/stat`, clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The fastest of `reps` runs of `f`: (wall, CPU) seconds, each minimised separately.
fn time(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        f()?;
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(cpu_seconds() - c);
    }
    Ok((wall, cpu))
}

fn main() -> Result<()> {
    stipple_nn::process::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: winograd_layers BATCH REPS C,O,H ...";
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("{usage}: {s:?} is not a number"));
    let [batch, reps] = [0, 1].map(|i| number(args.get(i).expect(usage)));
    for layer in &args[2..] {
        let v: Vec<usize> = layer.split(',').map(number).collect();
        let [c, o, h] = v[..] else { panic!("{usage}: {layer:?} is not three numbers") };
        let x = Tensor::randn(0f32, 1., (batch, c, h, h), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 0.1, (o, c, 3, 3), &Device::Cpu)?;
        let bias = Tensor::randn(0f32, 1., o, &Device::Cpu)?;
        let dy = Tensor::randn(0f32, 1., (batch, o, h, h), &Device::Cpu)?;
        let (stride, padding) = (1, 1);
        let forward = time(reps, || x.apply_op3_no_bwd(&w, &bias, &Conv2dOp { stride, padding }).map(drop))?;
        let input_gradient = time(reps, || dy.apply_op2_no_bwd(&w, &Conv2dBackwardInput { stride, padding, h, w: h }).map(drop))?;
        let ms = |s: f64| s * 1e3;
        println!(
            r#"{{"layer": "{layer}", "forward_ms": {:.2}, "forward_cpu_ms": {:.0}, "input_gradient_ms": {:.2}, "input_gradient_cpu_ms": {:.0}}}"#,
            ms(forward.0),
            ms(forward.1),
            ms(input_gradient.0),
            ms(input_gradient.1)
        );
    }
    Ok(())
}
