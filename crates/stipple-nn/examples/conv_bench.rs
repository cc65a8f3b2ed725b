//! Forward and backward times of a 3×3, padding-1 convolution, batch 32: candle's
//! `Tensor::conv2d` against `stipple_nn::ops::conv2d`.
//!
//! `cargo run --release -p stipple-nn --example conv_bench [-- --ours-only] [C:HW[:B] ...]` (the
//! layers as channels, map size and batch, 32 unless given; a default list otherwise)
//! (`STIPPLE_CONV_PARALLEL=batch|gemm` forces the threading plan of ours.)

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use stipple_nn::ops::conv2d::{Conv2dBackwardInput, Conv2dBackwardWeight};

/// Median seconds of `reps` runs of `f` after one warm-up run.
fn time(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[reps / 2])
}

fn main() -> Result<()> {
    stipple_nn::process::configure();
    let ours_only = std::env::args().any(|a| a == "--ours-only");
    let dev = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());
    println!("{:<22} {:>6} {:>10} {:>10} {:>8} {:>8} {:>6}", "case", "impl", "fwd s", "bwd s", "fwd GF/s", "bwd GF/s", "bwd/fwd");
    let given: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let mut f = a.split(':').map(|v| v.parse::<usize>().ok());
            Some((f.next()??, f.next()??, f.next().map_or(Some(32), |b| b)?))
        })
        .collect();
    let defaults = [(32, 16), (64, 8), (64, 4), (64, 16), (128, 8), (128, 4)].map(|(c, hw)| (c, hw, 32));
    let layers = if given.is_empty() { defaults.to_vec() } else { given };
    for (c, hw, b) in layers {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, hw, hw), &dev)?)?;
        let w = Var::from_tensor(&(Tensor::randn(0f32, 1., (c, c, 3, 3), &dev)? * 0.05)?)?;
        let r = Tensor::randn(0f32, 1., (b, c, hw, hw), &dev)?;
        let flops = 2.0 * (b * c * c * 9 * hw * hw) as f64;
        type Conv = fn(&Tensor, &Tensor) -> Result<Tensor>;
        let impls: [(&str, Conv); 2] = [
            ("candle", |x, w| x.conv2d(w, 1, 1, 1, 1)),
            ("ours", |x, w| stipple_nn::ops::conv2d(x, w, None, 1, 1)),
        ];
        for (name, conv) in impls {
            if ours_only && name == "candle" {
                continue;
            }
            let reps = if name == "candle" { 3 } else { 7 };
            let fwd = time(reps, || conv(&x, &w).map(|_| ()))?;
            // Backward only: the graph (conv, then Σ y·r) is built outside the timed region.
            let mut bwd_times = Vec::new();
            for _ in 0..reps + 1 {
                let loss = (conv(&x, &w)? * &r)?.sum_all()?;
                let start = Instant::now();
                let g = loss.backward()?;
                bwd_times.push(start.elapsed().as_secs_f64());
                assert!(g.get(&x).is_some() && g.get(&w).is_some());
            }
            bwd_times.remove(0);
            bwd_times.sort_by(f64::total_cmp);
            let bwd = bwd_times[reps / 2];
            println!(
                "{:<22} {:>6} {:>10.4} {:>10.4} {:>8.1} {:>8.1} {:>6.2}",
                format!("{c}->{c} {hw}x{hw} b{b}"),
                name,
                fwd,
                bwd,
                flops / fwd / 1e9,
                2.0 * flops / bwd / 1e9,
                bwd / fwd
            );
        }
        // Ours, backward kernels alone (what the conv costs inside `backward()`).
        let dy = Tensor::randn(0f32, 1., (b, c, hw, hw), &dev)?;
        let (stride, padding) = (1, 1);
        let kin = time(7, || dy.apply_op2_no_bwd(&w, &Conv2dBackwardInput { stride, padding, h: hw, w: hw }).map(|_| ()))?;
        let kw = time(7, || x.apply_op2_no_bwd(&dy, &Conv2dBackwardWeight { stride, padding, kh: 3, kw: 3 }).map(|_| ()))?;
        // candle's autograd bookkeeping for the same loss without a convolution.
        let yv = Var::from_tensor(&dy)?;
        let overhead = time(7, || (yv.as_tensor() * &r)?.sum_all()?.backward().map(|_| ()))?;
        println!(
            "{:<22} {:>6} dx {:.4} s + dw {:.4} s = {:.4} s ({:.1} GF/s); autograd overhead w/o conv {:.4} s",
            "", "ours", kin, kw, kin + kw, 2.0 * flops / (kin + kw) / 1e9, overhead
        );
    }
    Ok(())
}
