//! Seeded dropout: p = 0 is the identity, the same seed repeats exactly, seeds differ.

mod common;

use common::*;
use stipple_nn::dropout::dropout_mask;
use stipple_nn::{UNetCond, UNetConfig};

#[test]
fn p_zero_train_equals_inference() {
    let (net, _) = fresh(&UNetConfig::tiny()); // dropout 0.0
    let (x, t) = (input(2, 3, 8, 1), timesteps(&[5.0, 50.0]));
    let a = flat(&net.forward(&x, &t, None).unwrap());
    let b = flat(&net.forward_train(&x, &t, &UNetCond::default(), 123).unwrap());
    assert_eq!(a, b);
}

#[test]
fn same_seed_same_output_different_seeds_differ() {
    let cfg = UNetConfig { dropout: 0.2, ..UNetConfig::tiny() };
    let (net, _) = fresh(&cfg);
    let (x, t) = (input(2, 3, 8, 1), timesteps(&[5.0, 50.0]));
    let a = flat(&net.forward_train(&x, &t, &UNetCond::default(), 7).unwrap());
    let b = flat(&net.forward_train(&x, &t, &UNetCond::default(), 7).unwrap());
    let c = flat(&net.forward_train(&x, &t, &UNetCond::default(), 8).unwrap());
    let inference = flat(&net.forward(&x, &t, None).unwrap());
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, inference);
    // Inference ignores dropout entirely.
    assert_eq!(inference, flat(&net.forward(&x, &t, None).unwrap()));
}

#[test]
fn mask_statistics_and_scaling() {
    let p = 0.3;
    let m = dropout_mask(100_000, p, 42, 1);
    let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
    assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
    assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    // Layers and seeds give different masks; the mask is a pure function of its inputs.
    assert_ne!(dropout_mask(64, p, 42, 1), dropout_mask(64, p, 42, 2));
    assert_ne!(dropout_mask(64, p, 42, 1), dropout_mask(64, p, 43, 1));
    assert_eq!(dropout_mask(64, p, 42, 1), dropout_mask(64, p, 42, 1));
}
