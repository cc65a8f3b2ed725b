//! Per-token cross-attention maps (DAAM, Tang et al. 2022): shape, sign and normalisation of
//! the maps, a case whose answer is known, and the recorder leaving the network's output
//! bit-identical.

mod common;

use candle_core::{DType, Device, Tensor};
use stipple_nn::{CrossAttentionRecorder, UNetCond, UNetConfig};

/// Two tokens, one head of width 2: the keys point along the two axes, the left half of a
/// 2×4 map queries along the first axis and the right half along the second, so token 0
/// owns the left half and token 1 the right half; upsampled ×2 the owner shows the same.
#[test]
fn keys_that_make_one_token_dominate_show_in_its_map() {
    let dev = Device::Cpu;
    let k = Tensor::new(&[[[8f32, 0.0], [0.0, 8.0]]], &dev).unwrap(); // (1, M=2, C=2)
    let (h, w) = (2, 4);
    let q: Vec<f32> = (0..h * w).flat_map(|i| if i % w < w / 2 { [1.0, 0.0] } else { [0.0, 1.0] }).collect();
    let q = Tensor::from_vec(q, (1, h * w, 2), &dev).unwrap(); // (1, N=8, C=2)
    let rec = CrossAttentionRecorder::new(1, 4, 8);
    rec.record(&q, &k, 1, (h, w)).unwrap();
    let maps = rec.maps().unwrap().unwrap();
    assert_eq!(maps.dims(), &[1, 2, 4, 8]);
    let m = maps.get(0).unwrap().to_vec3::<f32>().unwrap();
    // softmax([8/√2, 0]) puts ≈ 0.9965 on the matching token.
    let strong = 1.0 / (1.0 + (-8.0f32 / 2f32.sqrt()).exp());
    for (row, (t0, t1)) in m[0].iter().zip(&m[1]).enumerate() {
        // Columns 0–2 and 5–7 sample only their own half (columns 3 and 4 mix the two).
        for col in [0, 1, 2] {
            assert!((t0[col] - strong).abs() < 1e-5, "token 0 at ({row}, {col}): {}", t0[col]);
            assert!((t1[col] - (1.0 - strong)).abs() < 1e-5);
        }
        for col in [5, 6, 7] {
            assert!((t1[col] - strong).abs() < 1e-5, "token 1 at ({row}, {col}): {}", t1[col]);
        }
        assert!(t0[3] > t1[3] && t1[4] > t0[4]);
    }
}

#[test]
fn recorder_needs_the_rows_and_pixels_it_was_made_for() {
    let dev = Device::Cpu;
    let q = Tensor::zeros((1, 6, 4), DType::F32, &dev).unwrap();
    let k = Tensor::zeros((1, 3, 4), DType::F32, &dev).unwrap();
    assert!(CrossAttentionRecorder::new(2, 4, 4).record(&q, &k, 2, (2, 3)).is_err(), "two rows of a batch of one");
    assert!(CrossAttentionRecorder::new(1, 4, 4).record(&q, &k, 2, (2, 2)).is_err(), "6 queries are not 2×2 pixels");
    let rec = CrossAttentionRecorder::new(1, 4, 4);
    assert!(rec.maps().unwrap().is_none());
    rec.record(&q, &k, 2, (2, 3)).unwrap();
    // Equal scores: every token gets 1/3 everywhere.
    let m = common::flat(&rec.maps().unwrap().unwrap());
    assert!(m.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6), "{m:?}");
}

/// A text U-Net with a recorder: the same output, bit for bit; one map per token and image,
/// non-negative, summing to 1 over the tokens at every pixel, averaged over every
/// cross-attention layer of every call.
#[test]
fn unet_maps_have_the_image_shape_and_leave_the_output_alone() {
    let dev = Device::Cpu;
    let cfg = UNetConfig::tiny().with_text(16).unwrap();
    let (net, _vm) = common::fresh(&cfg);
    let (b, m) = (2, 5);
    let states = Tensor::from_vec(common::values(b * m * 16, 3), (b, m, 16), &dev).unwrap();
    let cond = UNetCond { class_labels: None, encoder_hidden_states: Some(states), observed: None };
    let x = common::input(b, 3, 8, 7);
    let t = common::timesteps(&[10.0, 900.0]);
    let plain = net.forward_cond(&x, &t, &cond).unwrap();
    // Record the first image only, as a guided batch (conditional rows first) is recorded.
    let rec = CrossAttentionRecorder::new(1, 8, 8);
    let recorded = net.forward_recorded(&x, &t, &cond, &rec).unwrap();
    assert_eq!(common::flat(&plain), common::flat(&recorded), "recording changed the output");
    let per_call = rec.calls();
    assert!(per_call >= 2, "the tiny text U-Net has cross-attention at several places, recorded {per_call}");
    net.forward_recorded(&x, &t, &cond, &rec).unwrap();
    assert_eq!(rec.calls(), 2 * per_call);
    let maps = rec.maps().unwrap().unwrap();
    assert_eq!(maps.dims(), &[1, m, 8, 8]);
    assert!(common::flat(&maps).iter().all(|&v| v >= 0.0));
    let total = common::flat(&maps.sum(1).unwrap());
    assert!(total.iter().all(|s| (s - 1.0).abs() < 1e-5), "per-pixel sums over tokens: {total:?}");
    // Different prompts attend differently: the second image's maps differ from the first's.
    let both = CrossAttentionRecorder::new(2, 8, 8);
    net.forward_recorded(&x, &t, &cond, &both).unwrap();
    let both = both.maps().unwrap().unwrap();
    assert!(common::max_abs_diff(&both.get(0).unwrap(), &both.get(1).unwrap()).unwrap() > 1e-6);
}
