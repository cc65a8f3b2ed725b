//! `ops::conv2d_normalized` (GroupNorm, SiLU and a convolution in one pass, at inference) gives
//! the same bits as `group_norm` followed by `conv2d`, on 1 and 3 threads; it declines (returns
//! `None`) where it does not apply, and the `Conv2d` layer's `forward_after_norm` then takes
//! the two ops.

mod common;

use candle_core::{DType, Result, Tensor, Var};
use common::det;
use stipple_nn::ops::conv2d::direct_kernels_available;
use stipple_nn::ops::{conv2d, conv2d_normalized, group_norm, Conv2d, GroupNorm};

/// `(b, c, o, h, w, groups, per-sample bias)`: maps narrower than 8 pixels (tiles of samples),
/// 16×16 and non-square maps, one and several samples, 1 and 4 channels per group, a shared
/// `(O)` and a per-sample `(B, O)` bias (a ResNet block's time embedding).
const CASES: &[(usize, usize, usize, usize, usize, usize, bool)] = &[
    (3, 32, 32, 4, 4, 8, false),
    (5, 64, 48, 6, 5, 16, true),
    (2, 32, 64, 16, 16, 32, true),
    (1, 48, 32, 11, 13, 12, false),
    (4, 16, 16, 9, 10, 4, true),
    // Maps under 64 pixels, normalised 16 values at a time across the planes' boundaries.
    (6, 32, 32, 2, 2, 8, true),
    (2, 48, 32, 3, 3, 12, true),
    // Layers Winograd computes: F(4×4) on 64×64 maps, F(2×2) on 32×32 and on 16×16 with many
    // channels; F(4×4) over 66 rows (a partial last row of tiles).
    (1, 128, 128, 64, 64, 32, false),
    (2, 256, 128, 32, 32, 32, true),
    (2, 640, 1280, 16, 16, 32, true),
    (1, 128, 128, 66, 64, 32, false),
];

fn inputs(b: usize, c: usize, o: usize, h: usize, w: usize, per_sample: bool) -> Result<[Tensor; 5]> {
    // An offset and a spread per channel, as activations have.
    let x = (det(&[b, c, h, w], 1, DType::F32)? * 3.0)?.broadcast_add(&det(&[1, c, 1, 1], 2, DType::F32)?)?;
    let gamma = (det(&[c], 3, DType::F32)? + 1.0)?;
    let beta = det(&[c], 4, DType::F32)?;
    let weight = (det(&[o, c, 3, 3], 5, DType::F32)? * 0.1)?;
    let bias = if per_sample { det(&[b, o], 6, DType::F32)? } else { det(&[o], 6, DType::F32)? };
    Ok([x, gamma, beta, weight, bias])
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn same_bits_as_group_norm_then_conv2d() -> Result<()> {
    if !direct_kernels_available() {
        return Ok(()); // some cases need the AVX-512 direct kernel
    }
    let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool");
    for &(b, c, o, h, w, groups, per_sample) in CASES {
        let [x, gamma, beta, weight, bias] = inputs(b, c, o, h, w, per_sample)?;
        for silu in [true, false] {
            let expected = conv2d(&group_norm(&x, &gamma, &beta, groups, 1e-5, silu)?, &weight, Some(&bias), 1, 1)?;
            for threads in [1, 3] {
                let fused = pool(threads).install(|| conv2d_normalized(&x, &gamma, &beta, groups, 1e-5, silu, &weight, Some(&bias), 1, 1))?;
                let fused = fused.expect("the direct or the Winograd kernel computes these layers");
                assert_eq!(fused.dims(), expected.dims());
                assert!(bits(&fused)? == bits(&expected)?, "({b}, {c}, {o}, {h}, {w}), {groups} groups, silu {silu}, {threads} threads: the bits differ");
            }
        }
    }
    Ok(())
}

#[test]
fn declines_where_it_does_not_apply() -> Result<()> {
    let [x, gamma, beta, weight, bias] = inputs(2, 32, 32, 8, 8, false)?;
    let fused = |x: &Tensor, w: &Tensor, stride| conv2d_normalized(x, &gamma, &beta, 8, 1e-5, true, w, Some(&bias), stride, 1);
    // Gradients wanted: the fused op has no backward pass.
    let var = Var::from_tensor(&x)?;
    assert!(fused(var.as_tensor(), &weight, 1)?.is_none());
    // Output channels not in vectors of 16, and f64: no direct kernel.
    let w20 = weight.narrow(0, 0, 20)?;
    let b20 = bias.narrow(0, 0, 20)?;
    assert!(conv2d_normalized(&x, &gamma, &beta, 8, 1e-5, true, &w20, Some(&b20), 1, 1)?.is_none());
    let x64 = x.to_dtype(DType::F64)?;
    assert!(fused(&x64, &weight.to_dtype(DType::F64)?, 1)?.is_none());
    // A layer im2col + GEMM computes: a large weight on 8×8 maps of 2 samples.
    let [xw, gw, bw, ww, biasw] = inputs(2, 1280, 1280, 8, 8, false)?;
    assert!(conv2d_normalized(&xw, &gw, &bw, 32, 1e-5, true, &ww, Some(&biasw), 1, 1)?.is_none());
    Ok(())
}

/// The layer method gives the two ops' bits whichever path it takes, with and without a
/// per-sample shift.
#[test]
fn layer_forward_after_norm_matches_the_two_ops() -> Result<()> {
    for &(b, c, o, h, w, groups, _) in CASES.iter().chain(&[(1, 24, 20, 5, 6, 4, false)]) {
        let [x, gamma, beta, weight, bias] = inputs(b, c, o, h, w, false)?;
        let norm = GroupNorm::from_parts(gamma, beta, groups, 1e-5)?;
        let conv = Conv2d::from_parts(weight, Some(bias), 1, 1);
        let shift = det(&[b, o], 7, DType::F32)?;
        let normalised = norm.forward_silu(&x)?;
        let expected = [conv.forward_shifted(&normalised, &shift)?, candle_core::Module::forward(&conv, &normalised)?];
        let got = [conv.forward_after_norm(&norm, &x, Some(&shift))?, conv.forward_after_norm(&norm, &x, None)?];
        for (e, g) in expected.iter().zip(&got) {
            assert!(bits(e)? == bits(g)?, "({b}, {c}, {o}, {h}, {w}): the bits differ");
        }
    }
    Ok(())
}
