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

/// The layer (a custom op that never builds its mask) multiplies by exactly `dropout_mask`,
/// forward and backward, in f32 and f64, across several rayon tasks; other dtypes take the
/// mask-tensor path with the same mask.
#[test]
fn layer_applies_exactly_the_mask() -> candle_core::Result<()> {
    use candle_core::{DType, Device, Tensor, Var};
    use stipple_nn::dropout::{layer_id, Dropout, Mode};
    let (n, p, seed) = (40_000, 0.3, 11);
    let layer = Dropout::new(p, "down_blocks.0.resnets.1");
    let mask = dropout_mask(n, p, seed, layer_id("down_blocks.0.resnets.1"));
    let values: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    for dtype in [DType::F32, DType::F64, DType::BF16] {
        let x = Var::from_tensor(&Tensor::from_vec(values.clone(), (4, n / 4), &Device::Cpu)?.to_dtype(dtype)?)?;
        let m = Tensor::from_vec(mask.clone(), (4, n / 4), &Device::Cpu)?.to_dtype(dtype)?;
        let y = layer.forward(&x, Mode::Train { seed })?;
        let expect = x.as_tensor().mul(&m)?;
        let as_f64 = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
        assert_eq!(as_f64(&y)?, as_f64(&expect)?, "{dtype:?}: forward");
        let r = Tensor::from_vec(values.iter().map(|v| v * 2.0 + 1.0).collect::<Vec<_>>(), (4, n / 4), &Device::Cpu)?.to_dtype(dtype)?;
        let grads = (&y * &r)?.sum_all()?.backward()?;
        assert_eq!(as_f64(grads.get(&x).expect("gradient"))?, as_f64(&(&r * &m)?)?, "{dtype:?}: gradient");
    }
    Ok(())
}

/// The dropped positions of one mask, recorded from the first implementation (2026-11), so
/// that a faster kernel cannot silently change which elements a resumed run drops.
#[test]
fn mask_is_unchanged_since_it_was_recorded() {
    let m = dropout_mask(4096, 0.3, 42, 1);
    let dropped: Vec<usize> = m.iter().enumerate().filter(|(_, &v)| v == 0.0).map(|(i, _)| i).take(16).collect();
    let count = m.iter().filter(|&&v| v == 0.0).count();
    assert_eq!(dropped, [0, 2, 4, 6, 10, 11, 13, 14, 17, 18, 19, 20, 26, 29, 30, 32]);
    assert_eq!(count, 1207);
}
