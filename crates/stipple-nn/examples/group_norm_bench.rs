//! Forward and backward times of GroupNorm → SiLU with 32 groups, batch 32:
//! `candle_nn::GroupNorm` + `silu` against `stipple_nn::ops::group_norm(…, silu = true)`.
//!
//! `cargo run --release -p stipple-nn --example group_norm_bench`
//!
//! The backward column times `loss.backward()` for `loss = Σ GN(x)·r`, so it includes the
//! gradient of the loss itself and candle's bookkeeping; the `none` row (`y = x·1`) shows that
//! share. `bwd op` times the fused backward kernel alone.

use std::time::Instant;

use candle_core::{Device, Module, Result, Tensor, Var};
use stipple_nn::ops::group_norm::GroupNormBackward;

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
    let dev = Device::Cpu;
    let (b, groups, eps, reps) = (32, 32, 1e-5, 15);
    println!("threads: {}", candle_core::utils::get_num_threads());
    println!("{:<18} {:>7} {:>10} {:>10} {:>10}", "case", "impl", "fwd ms", "bwd ms", "fwd+bwd ms");
    for (c, hw) in [(64, 16), (128, 8)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, hw, hw), &dev)?)?;
        let gamma = Var::from_tensor(&(Tensor::randn(0f32, 1., c, &dev)? + 1.0)?)?;
        let beta = Var::from_tensor(&Tensor::randn(0f32, 1., c, &dev)?)?;
        let r = Tensor::randn(0f32, 1., (b, c, hw, hw), &dev)?;
        let stock = candle_nn::GroupNorm::new(gamma.as_tensor().clone(), beta.as_tensor().clone(), c, groups, eps)?;
        // "none": y = x·1, the cost of the loss Σ y·r and of candle's backward pass around the op.
        type Gn<'a> = Box<dyn Fn() -> Result<Tensor> + 'a>;
        let impls: [(&str, Gn); 3] = [
            ("none", Box::new(|| x.as_tensor() * 1.0)),
            ("candle", Box::new(|| stock.forward(&x)?.silu())),
            ("fused", Box::new(|| stipple_nn::ops::group_norm(&x, &gamma, &beta, groups, eps, true))),
        ];
        for (name, gn) in impls {
            let fwd = time(reps, || gn().map(|_| ()))?;
            // Backward only: the graph (GN, then Σ y·r) is built outside the timed region.
            let mut bwd_times = Vec::new();
            for _ in 0..reps + 1 {
                let loss = (gn()? * &r)?.sum_all()?;
                let start = Instant::now();
                let g = loss.backward()?;
                bwd_times.push(start.elapsed().as_secs_f64());
                assert!(g.get(&x).is_some());
            }
            bwd_times.remove(0);
            bwd_times.sort_by(f64::total_cmp);
            let bwd = bwd_times[reps / 2];
            println!(
                "{:<18} {:>7} {:>10.3} {:>10.3} {:>10.3}",
                format!("({b}, {c}, {hw}, {hw})"),
                name,
                fwd * 1e3,
                bwd * 1e3,
                (fwd + bwd) * 1e3
            );
        }
        let op = GroupNormBackward { num_groups: groups, eps, silu: true, dropout: None };
        let params = Tensor::cat(&[gamma.as_tensor(), beta.as_tensor()], 0)?;
        let bwd_op = time(reps, || x.apply_op3_no_bwd(&r, &params, &op).map(|_| ()))?;
        println!("{:<18} {:>7} {:>10} {:>10.3}", format!("({b}, {c}, {hw}, {hw})"), "bwd op", "", bwd_op * 1e3);
    }
    Ok(())
}
