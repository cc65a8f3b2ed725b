//! Times Stipple's 1-D convolution and DiffWave on the CPU, the Stipple half of
//! `bench/reference/conv1d_bench.py` (which runs the PyTorch twin and prints the table).
//!
//! Usage: `diffwave_bench BATCH LENGTH CHANNELS LAYERS CYCLE REPS`. Prints one JSON object
//! per measurement with the fastest of `REPS` runs, in milliseconds:
//! - `conv_forward`, `conv_backward`: DiffWave's dilated convolution `C → 2C`, kernel 3,
//!   dilation 2^(CYCLE−1) (the widest), on `(BATCH, C, LENGTH)`; the backward pass computes
//!   the input, weight and bias gradients;
//! - `diffwave_forward`: the network on `(BATCH, 1, LENGTH)` (inference, no graph kept);
//! - `diffwave_train_step`: forward, the ε-prediction MSE loss and its backward pass (the
//!   optimizer's update is left out on both sides).

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use stipple_nn::ops::conv1d::{Conv1dBackwardInput, Conv1dBackwardWeight, Conv1dOp};
use stipple_nn::{DiffWave, DiffWaveConfig};

/// The fastest of `reps` runs of `f`, in milliseconds.
fn fastest(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best * 1e3)
}

fn main() -> Result<()> {
    stipple_nn::process::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: diffwave_bench BATCH LENGTH CHANNELS LAYERS CYCLE REPS";
    let number = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok()).unwrap_or_else(|| panic!("{usage}"));
    let [b, l, c, layers, cycle, reps] = [0, 1, 2, 3, 4, 5].map(number);
    let dev = Device::Cpu;
    let report = |name: &str, ms: f64| println!(r#"{{"name": "{name}", "ms": {ms:.3}}}"#);

    let dilation = 1 << (cycle - 1);
    let (stride, padding) = (1, dilation);
    let x = Tensor::randn(0f32, 1., (b, c, l), &dev)?;
    let w = Tensor::randn(0f32, 0.1, (2 * c, c, 3), &dev)?;
    let bias = Tensor::randn(0f32, 1., 2 * c, &dev)?;
    let dy = Tensor::randn(0f32, 1., (b, 2 * c, l), &dev)?;
    report("conv_forward", fastest(reps, || x.apply_op3_no_bwd(&w, &bias, &Conv1dOp { stride, padding, dilation }).map(drop))?);
    report(
        "conv_backward",
        fastest(reps, || {
            let dx = dy.apply_op2_no_bwd(&w, &Conv1dBackwardInput { stride, padding, dilation, l })?;
            let dw = x.apply_op2_no_bwd(&dy, &Conv1dBackwardWeight { stride, padding, dilation, k: 3 })?;
            let db = dy.sum((0, 2))?;
            drop((dx, dw, db));
            Ok(())
        })?,
    );

    let cfg = DiffWaveConfig { residual_layers: layers, residual_channels: c, dilation_cycle_length: cycle, ..DiffWaveConfig::base() };
    let vm = VarMap::new();
    let net = DiffWave::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &cfg)?;
    let audio = Tensor::randn(0f32, 0.5, (b, 1, l), &dev)?;
    let noise = Tensor::randn(0f32, 1., (b, 1, l), &dev)?;
    let t = Tensor::from_vec((0..b).map(|i| (i * 37 % 50) as f32).collect::<Vec<_>>(), b, &dev)?;
    // Inference: the same network on detached weights, so no graph is kept.
    let frozen = DiffWave::new(VarBuilder::from_tensors(vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect(), DType::F32, &dev), &cfg)?;
    report("diffwave_forward", fastest(reps, || frozen.forward(&audio, &t, None).map(drop))?);
    let x_t = ((&audio * 0.8)? + (&noise * 0.6)?)?;
    report(
        "diffwave_train_step",
        fastest(reps, || {
            let loss = (net.forward(&x_t, &t, None)? - &noise)?.sqr()?.mean_all()?;
            drop(loss.backward()?);
            Ok(())
        })?,
    );
    Ok(())
}
