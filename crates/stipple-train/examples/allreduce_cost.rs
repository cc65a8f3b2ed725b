//! The communication cost of one data-parallel training step: the gradient all-reduce of
//! `stipple_train::all_reduce_gradients` (flatten, bucketed MPI all-reduce, unflatten) for
//! the networks of the bench presets, and the bare bucketed all-reduce of flat buffers.
//! Run under mpirun (figures in docs/SCALING.md):
//!
//! ```text
//! cargo build -p stipple-train --features mpi --example allreduce_cost
//! mpirun -np 2 target/debug/examples/allreduce_cost [RUNS]
//! ```

use std::time::{Duration, Instant};

use candle_core::{Device, Var};
use candle_nn::VarMap;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::{UNet2D, UNetConfig};
use stipple_train::{all_reduce_gradients, Collective, MpiWorld, BUCKET_FLOATS};

/// Median seconds of `runs` calls of `f` after one warm-up call.
fn median_seconds(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(10), |r| r.parse())?;
    let world = MpiWorld::init(Duration::from_secs(600))?;
    let n = world.size() as f64;
    let root = world.rank() == 0;
    let report = |what: &str, floats: usize, seconds: f64| {
        if root {
            let bytes = 4.0 * floats as f64;
            // Ring all-reduce: each rank sends and receives 2(N−1)/N of the buffer.
            let bus = 2.0 * (n - 1.0) / n * bytes / seconds / 1e9;
            println!("{what:<28} {floats:>12} floats {:>9.1} MB {:>9.2} ms  bus {bus:>6.2} GB/s", bytes / 1e6, seconds * 1e3);
        }
    };
    if root {
        println!("{} ranks, {runs} runs each (median), buckets of {BUCKET_FLOATS} floats", world.size());
    }
    for (name, cfg) in [("emoji16", UNetConfig::emoji16()), ("bench-unet16/32/64", UNetConfig::bench_unet32())] {
        let varmap = VarMap::new();
        UNet2D::new(seeded_var_builder(&varmap, 0, &Device::Cpu), &cfg)?;
        let vars: Vec<Var> = varmap.all_vars();
        let refs: Vec<&Var> = vars.iter().collect();
        // A gradient for every variable (of Σ w: all ones), as a training step leaves them.
        let loss = vars.iter().map(|v| v.as_tensor().sum_all()).reduce(|a, b| a? + b?).unwrap()?;
        let mut grads = loss.backward()?;
        let floats = vars.iter().map(|v| v.elem_count()).sum();
        // Each call replaces the gradients by their mean, the same store serves every run.
        let seconds = median_seconds(runs, || all_reduce_gradients(&world, &refs, &mut grads).unwrap());
        report(&format!("{name} gradients"), floats, seconds);
    }
    for floats in [1 << 20, 1 << 22, 1 << 24, 1 << 26] {
        let mut buf = vec![1f32; floats];
        let seconds = median_seconds(runs, || {
            for bucket in buf.chunks_mut(BUCKET_FLOATS) {
                world.all_reduce_mean(bucket).unwrap();
            }
        });
        report("flat buffer", floats, seconds);
    }
    Ok(())
}
