//! `stipple_nn::ops::conv2d` (im2col + GEMM custom op) against candle's own `Tensor::conv2d`
//! (plus a broadcast addition of the bias): forward values and the gradients (candle's
//! autograd as reference) on awkward shapes without a bias, with a per-channel `(O)` bias and
//! with a per-sample `(B, O)` bias, a finite-difference check in f64, non-contiguous inputs,
//! and the `Conv2d` layer's parameters.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::{conv2d, Conv2d};

#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

#[allow(clippy::too_many_arguments)]
const fn case(b: usize, c: usize, o: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Case {
    Case { b, c, o, h, w, k, stride, pad }
}

/// Non-square images, channel counts that are not multiples of 8, batch 1, 3 and 5 (with two or
/// more threads batch 1 parallelises inside the GEMM, batches 3 and 5 over samples, split
/// unevenly over two threads), 1×1, 3×3 and 5×5
/// kernels, stride 1 and 2, padding 0, 1 and 2; the "same"-padded stride-1 cases (the shifted
/// copies of `im2col_same_stride1`) include images narrower and shorter than the padding. The
/// last three have maps of 32×32 pixels or more, where "same" convolutions are sums of shifted
/// GEMMs over a padded grid instead.
const CASES: &[Case] = &[
    case(2, 3, 4, 1, 2, 5, 1, 2),
    case(2, 3, 5, 4, 1, 3, 1, 1),
    case(1, 4, 3, 6, 5, 5, 1, 2),
    case(1, 3, 5, 7, 5, 3, 1, 1),
    case(3, 3, 5, 7, 5, 3, 1, 1),
    case(3, 5, 13, 7, 5, 3, 2, 1),
    case(1, 13, 5, 5, 7, 3, 2, 1),
    case(3, 13, 3, 7, 5, 3, 1, 0),
    case(1, 5, 13, 8, 9, 3, 2, 0),
    case(3, 13, 5, 7, 5, 1, 1, 0),
    case(1, 5, 3, 5, 7, 1, 1, 0),
    case(3, 5, 13, 7, 5, 1, 2, 0),
    case(1, 3, 5, 7, 5, 1, 1, 1),
    case(3, 5, 3, 6, 6, 1, 2, 1),
    case(3, 16, 24, 9, 11, 3, 1, 1),
    case(5, 6, 7, 4, 3, 3, 1, 1),
    case(5, 4, 3, 5, 4, 1, 1, 0),
    case(5, 3, 4, 6, 5, 3, 2, 1),
    case(2, 3, 5, 33, 32, 3, 1, 1),
    case(1, 4, 6, 32, 40, 5, 1, 2),
    case(3, 6, 17, 32, 33, 3, 1, 1),
    // Channel counts in vectors of 16: the direct kernels on CPUs with AVX-512 (blocks of 32
    // and 16 channels, rows of 1–11 pixels in tiles of at most 8, batch 1 split by channel
    // blocks, strides 1 and 2, 3×3 and 5×5, maps below and above 32×32).
    case(1, 16, 32, 5, 7, 3, 1, 1),
    case(3, 32, 48, 9, 11, 3, 1, 1),
    case(2, 5, 16, 9, 10, 3, 2, 1),
    case(2, 16, 32, 8, 8, 3, 2, 0),
    case(3, 16, 16, 6, 13, 5, 1, 2),
    case(1, 16, 16, 3, 1, 3, 1, 1),
    case(2, 3, 32, 33, 34, 3, 1, 1),
    case(3, 48, 16, 32, 32, 3, 1, 1),
    // Maps narrower than 8 pixels: register tiles of one pixel of up to 8 samples (with two
    // threads, groups of 3 + 2, 5 + 4 and 8 + 2 samples on the first thread).
    case(5, 16, 32, 4, 5, 3, 1, 1),
    case(9, 32, 16, 3, 4, 3, 1, 1),
    case(19, 16, 16, 4, 3, 3, 1, 1),
    case(5, 16, 32, 7, 6, 3, 2, 1),
];

/// The bias variants of [`conv2d`].
#[derive(Debug, Clone, Copy)]
enum Bias {
    None,
    /// `(O)`, shared by the samples.
    Channel,
    /// `(B, O)`.
    Sample,
}

const BIASES: [Bias; 3] = [Bias::None, Bias::Channel, Bias::Sample];

/// The bias variable of a variant, and the same values shaped to broadcast over `(B, O, H, W)`.
fn bias_for(kind: Bias, b: usize, o: usize, seed: u64, dtype: DType) -> Result<Option<(Var, Tensor)>> {
    let shape: &[usize] = match kind {
        Bias::None => return Ok(None),
        Bias::Channel => &[o],
        Bias::Sample => &[b, o],
    };
    let v = Var::from_tensor(&det(shape, seed, dtype)?)?;
    let bcast = match kind {
        Bias::Sample => v.reshape((b, o, 1, 1))?,
        _ => v.reshape((1, o, 1, 1))?,
    };
    Ok(Some((v, bcast)))
}

/// Adds the broadcast bias, if any.
fn plus(y: Tensor, bias: &Option<(Var, Tensor)>) -> Result<Tensor> {
    match bias {
        Some((_, bcast)) => y.broadcast_add(bcast),
        None => Ok(y),
    }
}

/// Forward of ours vs candle's, then `d/dx, d/dw, d/dbias` of `Σ y·r` vs candle's autograd.
fn check_against_candle(t: Case, kind: Bias, dtype: DType, tol: f64) -> Result<()> {
    let x = Var::from_tensor(&det(&[t.b, t.c, t.h, t.w], 1, dtype)?)?;
    let w = Var::from_tensor(&det(&[t.o, t.c, t.k, t.k], 2, dtype)?)?;
    let bias = bias_for(kind, t.b, t.o, 13, dtype)?;
    let ours = conv2d(&x, &w, bias.as_ref().map(|(v, _)| v.as_tensor()), t.stride, t.pad)?;
    let reference = plus(x.conv2d(&w, t.pad, t.stride, 1, 1)?, &bias)?;
    let d = max_abs_diff(&ours, &reference)?;
    let scale = max_abs(&reference)?.max(1.0);
    assert!(d < tol * scale, "{t:?}: forward differs by {d:e} (scale {scale})");

    // candle's own conv2d gradient w.r.t. the input has the wrong shape when `(H + 2p − k)` is
    // not a multiple of the stride (its conv_transpose2d gets no output padding), so the
    // reference gradient goes through explicit zero padding and a crop of the rows and columns
    // the kernel never reaches, then an unpadded candle convolution whose sizes divide evenly.
    let (p, s, k) = (t.pad, t.stride, t.k);
    let (rh, rw) = ((t.h + 2 * p - k) % s, (t.w + 2 * p - k) % s);
    let xr = x.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?;
    let xr = xr.narrow(2, 0, t.h + 2 * p - rh)?.narrow(3, 0, t.w + 2 * p - rw)?;
    let reference_for_grad = plus(xr.conv2d(&w, 0, s, 1, 1)?, &bias)?;
    assert!(max_abs_diff(&reference_for_grad, &reference)? < tol * scale);

    let r = det(ours.dims(), 3, dtype)?;
    let g_ours = (ours * &r)?.sum_all()?.backward()?;
    let g_ref = (reference_for_grad * &r)?.sum_all()?.backward()?;
    let mut vars = vec![("x", &x), ("w", &w)];
    if let Some((v, _)) = &bias {
        vars.push(("bias", v));
    }
    for (name, v) in vars {
        let a = g_ours.get(v).unwrap_or_else(|| panic!("{t:?} {kind:?}: no gradient for {name}"));
        let b = g_ref.get(v).expect("candle gradient");
        assert_eq!(a.dims(), v.dims(), "{t:?} {kind:?}: d/d{name} has the wrong shape");
        let d = max_abs_diff(a, b)?;
        let scale = max_abs(b)?.max(1.0);
        assert!(d < tol * scale, "{t:?} {kind:?}: d/d{name} differs by {d:e} (scale {scale})");
    }
    Ok(())
}

#[test]
fn forward_and_gradients_match_candle_f32() -> Result<()> {
    for &t in CASES {
        for kind in BIASES {
            check_against_candle(t, kind, DType::F32, 1e-5)?;
        }
    }
    Ok(())
}

#[test]
fn forward_and_gradients_match_candle_f64() -> Result<()> {
    for &t in CASES {
        for kind in BIASES {
            check_against_candle(t, kind, DType::F64, 1e-12)?;
        }
    }
    Ok(())
}

#[test]
fn rejects_a_bias_of_the_wrong_shape() -> Result<()> {
    let x = det(&[2, 3, 5, 5], 1, DType::F32)?;
    let w = det(&[4, 3, 3, 3], 2, DType::F32)?;
    for shape in [&[3][..], &[2, 3], &[1, 4], &[2, 4, 1]] {
        let bias = det(shape, 3, DType::F32)?;
        assert!(conv2d(&x, &w, Some(&bias), 1, 1).is_err(), "bias {shape:?} accepted");
    }
    Ok(())
}

#[test]
fn non_contiguous_inputs() -> Result<()> {
    // x stored as (B, C, W, H) and transposed; w stored as (C, O, k, k) and transposed.
    let x = det(&[2, 5, 6, 7], 4, DType::F32)?.transpose(2, 3)?;
    let w = det(&[5, 3, 3, 3], 5, DType::F32)?.transpose(0, 1)?;
    assert!(!x.is_contiguous() && !w.is_contiguous());
    let ours = conv2d(&x, &w, None, 1, 1)?;
    let reference = x.contiguous()?.conv2d(&w.contiguous()?, 1, 1, 1, 1)?;
    assert!(max_abs_diff(&ours, &reference)? < 1e-5);
    Ok(())
}

/// `loss(base)` with entry `i` of argument `which` moved by `delta`.
fn bumped(base: [&Tensor; 3], which: usize, i: usize, delta: f64, loss: &impl Fn([&Tensor; 3]) -> Result<f64>) -> Result<f64> {
    let mut v = base[which].flatten_all()?.to_vec1::<f64>()?;
    v[i] += delta;
    let t = Tensor::from_vec(v, base[which].dims(), &Device::Cpu)?;
    let mut args = base;
    args[which] = &t;
    loss(args)
}

/// Central differences of `L = Σ y·r` in f64 against the analytic gradients, for every input,
/// weight and bias entry of a tiny stride-2, padded case, with each bias variant.
#[test]
fn gradients_match_finite_differences_f64() -> Result<()> {
    let (stride, pad) = (2, 1);
    for (kind, bias_shape) in [(Bias::None, &[1][..]), (Bias::Channel, &[2][..]), (Bias::Sample, &[2, 2][..])] {
        let has_bias = !matches!(kind, Bias::None);
        let x0 = det(&[2, 3, 5, 4], 6, DType::F64)?;
        let w0 = det(&[2, 3, 3, 3], 7, DType::F64)?;
        let b0 = det(bias_shape, 14, DType::F64)?;
        let r = det(&[2, 2, 3, 2], 8, DType::F64)?;
        let loss = |args: [&Tensor; 3]| -> Result<f64> {
            let bias = has_bias.then_some(args[2]);
            (conv2d(args[0], args[1], bias, stride, pad)? * &r)?.sum_all()?.to_scalar::<f64>()
        };

        let vars = [Var::from_tensor(&x0)?, Var::from_tensor(&w0)?, Var::from_tensor(&b0)?];
        let bias = has_bias.then_some(vars[2].as_tensor());
        let grads = (conv2d(&vars[0], &vars[1], bias, stride, pad)? * &r)?.sum_all()?.backward()?;
        let eps = 1e-6;
        let base = [&x0, &w0, &b0];
        for (which, var) in vars.iter().enumerate().take(if has_bias { 3 } else { 2 }) {
            let analytic = grads.get(var).unwrap().flatten_all()?.to_vec1::<f64>()?;
            for (i, &a) in analytic.iter().enumerate() {
                let numeric = (bumped(base, which, i, eps, &loss)? - bumped(base, which, i, -eps, &loss)?) / (2.0 * eps);
                assert!((numeric - a).abs() < 1e-7, "{kind:?}: arg {which} entry {i}: numeric {numeric} vs analytic {a}");
            }
        }
    }
    Ok(())
}

/// Central differences in f64 at sampled entries of a map large enough for the shifted-GEMM
/// kernels (33×32, 3×3, padding 1), with a per-sample bias. `L = Σ y·r` is linear in each
/// argument, so the difference is exact up to rounding.
#[test]
fn gradients_match_finite_differences_on_a_large_map_f64() -> Result<()> {
    let (b, c, o, h, w) = (2, 3, 4, 33, 32);
    let x0 = det(&[b, c, h, w], 15, DType::F64)?;
    let w0 = det(&[o, c, 3, 3], 16, DType::F64)?;
    let b0 = det(&[b, o], 17, DType::F64)?;
    let r = det(&[b, o, h, w], 18, DType::F64)?;
    let loss = |args: [&Tensor; 3]| -> Result<f64> { (conv2d(args[0], args[1], Some(args[2]), 1, 1)? * &r)?.sum_all()?.to_scalar::<f64>() };
    let vars = [Var::from_tensor(&x0)?, Var::from_tensor(&w0)?, Var::from_tensor(&b0)?];
    let grads = (conv2d(&vars[0], &vars[1], Some(vars[2].as_tensor()), 1, 1)? * &r)?.sum_all()?.backward()?;
    let base = [&x0, &w0, &b0];
    for (which, var) in vars.iter().enumerate() {
        let analytic = grads.get(var).unwrap().flatten_all()?.to_vec1::<f64>()?;
        let n = analytic.len();
        // Every weight and bias entry; for the input, the corners and borders of both images
        // (where the padding matters) and a stride through the interior.
        let entries: Vec<usize> = if which == 0 {
            let corners = [0, w - 1, (h - 1) * w, h * w - 1, h * w, c * h * w - 1, c * h * w, n - 1];
            corners.into_iter().chain((0..n).step_by(97)).collect()
        } else {
            (0..n).collect()
        };
        for i in entries {
            let numeric = (bumped(base, which, i, 1e-3, &loss)? - bumped(base, which, i, -1e-3, &loss)?) / 2e-3;
            let tol = 1e-9 * numeric.abs().max(1.0);
            assert!((numeric - analytic[i]).abs() < tol, "arg {which} entry {i}: numeric {numeric} vs analytic {}", analytic[i]);
        }
    }
    Ok(())
}

/// Only operands that track operations get a gradient: a plain input (like the network's
/// noisy image) gets none, and the weight's is still candle's; likewise frozen weights.
#[test]
fn no_gradient_for_an_input_that_needs_none() -> Result<()> {
    let x = det(&[2, 3, 6, 5], 19, DType::F64)?;
    let w = Var::from_tensor(&det(&[4, 3, 3, 3], 20, DType::F64)?)?;
    let r = det(&[2, 4, 6, 5], 21, DType::F64)?;
    let grads = (conv2d(&x, &w, None, 1, 1)? * &r)?.sum_all()?.backward()?;
    assert!(grads.get(&x).is_none(), "a gradient was computed for an input that tracks nothing");
    let reference = (x.conv2d(&w, 1, 1, 1, 1)? * &r)?.sum_all()?.backward()?;
    assert!(max_abs_diff(grads.get(&w).unwrap(), reference.get(&w).unwrap())? < 1e-12);
    // And the other way round: frozen weights get none, the input's gradient is candle's.
    let x = Var::from_tensor(&x)?;
    let w = w.as_tensor().detach();
    let grads = (conv2d(&x, &w, None, 1, 1)? * &r)?.sum_all()?.backward()?;
    assert!(grads.get(&w).is_none(), "a gradient was computed for a weight that tracks nothing");
    let reference = (x.conv2d(&w, 1, 1, 1, 1)? * &r)?.sum_all()?.backward()?;
    assert!(max_abs_diff(grads.get(&x).unwrap(), reference.get(&x).unwrap())? < 1e-12);
    Ok(())
}

/// Same test in f32 with a step and tolerance sized for single precision.
#[test]
fn gradients_match_finite_differences_f32() -> Result<()> {
    let x0 = det(&[1, 2, 4, 5], 9, DType::F32)?;
    let w0 = det(&[3, 2, 3, 3], 10, DType::F32)?;
    let r = det(&[1, 3, 4, 5], 11, DType::F32)?;
    let loss = |x: &Tensor, w: &Tensor| -> Result<f64> {
        (conv2d(x, w, None, 1, 1)?.to_dtype(DType::F64)? * r.to_dtype(DType::F64)?)?.sum_all()?.to_scalar::<f64>()
    };
    let w = Var::from_tensor(&w0)?;
    let grads = (conv2d(&x0, &w, None, 1, 1)? * &r)?.sum_all()?.backward()?;
    let analytic = grads.get(&w).unwrap().flatten_all()?.to_vec1::<f32>()?;
    let base = w0.flatten_all()?.to_vec1::<f32>()?;
    let eps = 1e-2f32;
    for i in 0..base.len() {
        let bump = |delta: f32| -> Result<f64> {
            let mut v = base.clone();
            v[i] += delta;
            loss(&x0, &Tensor::from_vec(v, w0.dims(), &Device::Cpu)?)
        };
        // L is linear in w, so the central difference is exact up to f32 rounding.
        let numeric = (bump(eps)? - bump(-eps)?) / (2.0 * eps as f64);
        assert!((numeric - analytic[i] as f64).abs() < 2e-3, "entry {i}: numeric {numeric} vs analytic {}", analytic[i]);
    }
    Ok(())
}

#[test]
fn layer_has_candle_nn_names_shapes_and_output() -> Result<()> {
    let ours_map = VarMap::new();
    let theirs_map = VarMap::new();
    let dev = Device::Cpu;
    let ours = Conv2d::new(VarBuilder::from_varmap(&ours_map, DType::F32, &dev).pp("c"), 5, 7, 3, 2, 1)?;
    let cfg = candle_nn::Conv2dConfig { padding: 1, stride: 2, ..Default::default() };
    candle_nn::conv2d(5, 7, 3, cfg, VarBuilder::from_varmap(&theirs_map, DType::F32, &dev).pp("c"))?;

    let names = |m: &VarMap| {
        let mut v: Vec<(String, Vec<usize>)> =
            m.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.dims().to_vec())).collect();
        v.sort();
        v
    };
    assert_eq!(names(&ours_map), names(&theirs_map));
    assert_eq!(names(&ours_map), vec![("c.bias".into(), vec![7]), ("c.weight".into(), vec![7, 5, 3, 3])]);
    // Bias initialised uniformly in ±1/√fan_in like candle-nn.
    assert!(max_abs(ours.bias().unwrap())? <= 1.0 / 5f64.sqrt());

    // Same parameters → same output (bias included).
    let theirs = candle_nn::Conv2d::new(ours.weight().clone(), ours.bias().cloned(), cfg);
    let x = det(&[2, 5, 9, 6], 12, DType::F32)?;
    assert!(max_abs_diff(&ours.forward(&x)?, &theirs.forward(&x)?)? < 1e-5);

    // `forward_shifted` adds a (B, O) shift on top of the layer's own bias.
    let shift = det(&[2, 7], 15, DType::F32)?;
    let expected = theirs.forward(&x)?.broadcast_add(&shift.reshape((2, 7, 1, 1))?)?;
    assert!(max_abs_diff(&ours.forward_shifted(&x, &shift)?, &expected)? < 1e-5);
    Ok(())
}

/// Whether this CPU has the instruction sets of the direct kernels: (AVX-512F, AVX2 + FMA).
fn vector_sets() -> (bool, bool) {
    #[cfg(target_arch = "x86_64")]
    return (
        std::is_x86_feature_detected!("avx512f"),
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    (false, false)
}

/// On a CPU with AVX-512F, or with AVX2 + FMA, the f32 convolutions take the direct kernels
/// (which the cases with channel counts in multiples of 16 above then check), unless
/// `STIPPLE_CONV_DIRECT=none` turns them off.
#[test]
fn direct_kernels_run_where_the_cpu_has_avx512_or_avx2() {
    let (avx512, avx2) = vector_sets();
    let off = std::env::var("STIPPLE_CONV_DIRECT").as_deref() == Ok("none");
    assert_eq!(stipple_nn::ops::conv2d::direct_kernels_available(), (avx512 || avx2) && !off);
}

/// On a CPU with AVX-512F the tests of this file run the AVX-512 kernels; this runs all of them
/// again in a child process with `STIPPLE_CONV_DIRECT=avx2`, so that the AVX2 kernels are
/// checked against candle on that CPU too (on a CPU with AVX2 but not AVX-512 they are the
/// kernels the tests run anyway).
#[test]
fn every_test_again_on_the_avx2_kernels() {
    let (avx512, avx2) = vector_sets();
    if !(avx512 && avx2) || std::env::var_os("STIPPLE_CONV_DIRECT").is_some() {
        return;
    }
    let me = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(me)
        .env("STIPPLE_CONV_DIRECT", "avx2")
        .args(["--skip", "every_test_again_on_the_avx2_kernels"])
        .output()
        .expect("the test binary runs again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the tests failed on the AVX2 kernels:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("test blocked_direct_kernels_match_candle_f32 ... ok"), "{text}");
}

/// Shapes for the cache blocking of the direct kernels (f32, AVX-512 or AVX2): input channels over
/// several depth blocks of 32 with a smaller last one (48, 80), output channels in blocks of 32
/// and 16, maps of odd sizes that take several bands of output rows (a band holds 256 outputs:
/// 37 rows of 20 pixels are bands of 13, 13 and 11 rows), strides 1 and 2, 3×3 and 5×5, a map
/// narrower than 8 pixels (tiles of samples over several depth blocks), batch 1 (the output
/// channel blocks split over the threads) and batches 2, 3 and 5 (samples over the threads);
/// the gradient w.r.t. the input of the stride-1 cases goes through the same kernel from `O`
/// channels (80: three depth blocks). Rows end in tiles of every width from 1 to 7 pixels
/// (tiles of at most 8 with AVX-512, 6 with AVX2), and 7 samples make tiles of 7 or 4 and 3.
/// AVX2's depth blocks are of 256 channels on maps of up to 32×32: 272 and 288 input channels
/// (forward, and the gradient w.r.t. the input from 288 output channels) take two there, with
/// tiles of pixels and of samples.
const BLOCKED: &[Case] = &[
    case(1, 32, 48, 9, 15, 3, 1, 1),
    case(2, 48, 32, 6, 14, 3, 1, 1),
    case(1, 16, 32, 5, 11, 3, 1, 1),
    case(7, 32, 32, 4, 4, 3, 1, 1),
    case(1, 80, 48, 11, 13, 3, 1, 1),
    case(3, 48, 32, 9, 10, 3, 1, 1),
    case(2, 48, 32, 37, 20, 3, 1, 1),
    case(1, 40, 32, 40, 34, 3, 2, 1),
    case(1, 32, 80, 12, 9, 3, 1, 1),
    case(2, 48, 16, 10, 12, 5, 1, 2),
    case(5, 48, 32, 5, 6, 3, 1, 1),
    case(3, 64, 48, 4, 3, 3, 1, 1),
    case(2, 288, 32, 9, 10, 3, 1, 1),
    case(5, 272, 16, 5, 6, 3, 1, 1),
    case(1, 32, 288, 9, 10, 3, 1, 1),
];

#[test]
fn blocked_direct_kernels_match_candle_f32() -> Result<()> {
    for &t in BLOCKED {
        for kind in BIASES {
            check_against_candle(t, kind, DType::F32, 1e-5)?;
        }
    }
    Ok(())
}

/// The forward pass and both gradients of one case, as flat f32 values.
fn conv_values(t: Case) -> Result<Vec<Vec<f32>>> {
    let x = Var::from_tensor(&det(&[t.b, t.c, t.h, t.w], 1, DType::F32)?)?;
    let w = Var::from_tensor(&det(&[t.o, t.c, t.k, t.k], 2, DType::F32)?)?;
    let bias = det(&[t.b, t.o], 13, DType::F32)?;
    let y = conv2d(&x, &w, Some(&bias), t.stride, t.pad)?;
    let r = det(y.dims(), 3, DType::F32)?;
    let grads = (&y * &r)?.sum_all()?.backward()?;
    [&y, grads.get(&x).expect("d/dx"), grads.get(&w).expect("d/dw")].iter().map(|t| t.flatten_all()?.to_vec1::<f32>()).collect()
}

/// The same inputs give the same bits whether the work runs on one thread or several: every
/// output of the forward pass and of the input gradient is summed in a fixed order, whichever
/// thread computes it, and the weight gradient's partial sums over the samples are grouped by
/// the shapes alone (so that training repeats itself on another number of threads). The cases
/// cover the direct kernels, Winograd, the shifted GEMMs (with the direct and the shifted weight
/// gradient), im2col and 1×1 layers, with more samples than the weight gradient has partial
/// sums.
#[test]
fn results_do_not_depend_on_the_threads() -> Result<()> {
    let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool");
    let pools = [pool(1), pool(3), pool(4)];
    let others = [
        case(1, 64, 64, 20, 18, 3, 1, 1),
        case(9, 48, 32, 5, 6, 3, 1, 1),
        case(5, 12, 20, 9, 7, 3, 2, 1),
        case(3, 8, 12, 32, 33, 3, 1, 1),
        case(3, 32, 48, 32, 32, 3, 1, 1),
        case(3, 128, 32, 32, 32, 3, 1, 1),
        case(5, 32, 24, 6, 6, 1, 1, 0),
    ];
    for &t in BLOCKED.iter().chain(WINOGRAD).chain(WINOGRAD_F4X4).chain(&others) {
        let single = pools[0].install(|| conv_values(t))?;
        for (threads, p) in [3, 4].iter().zip(&pools[1..]) {
            let multi = p.install(|| conv_values(t))?;
            for (name, (a, b)) in ["y", "dx", "dw"].iter().zip(single.iter().zip(&multi)) {
                let same = a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{t:?}: {name} differs between one and {threads} threads");
            }
        }
    }
    Ok(())
}

/// Stride-1 "same" 3×3 convolutions on maps of 32×32 pixels or more (below 64×64) with at
/// least 128 and 256 channels (the fewer and the more of input and output), which Winograd's
/// F(2×2, 3×3) computes in f32 (forward and the gradient w.r.t. the input): odd map sizes
/// (partial tiles at the right and bottom), batch 1 and 2.
const WINOGRAD: &[Case] = &[case(1, 256, 128, 33, 35, 3, 1, 1), case(2, 128, 256, 32, 32, 3, 1, 1)];

#[test]
fn winograd_matches_candle_f32() -> Result<()> {
    for &t in WINOGRAD {
        for kind in BIASES {
            check_against_candle(t, kind, DType::F32, 1e-5)?;
        }
    }
    Ok(())
}

/// The rounding error of the Winograd path against the convolution in f64, in units of the
/// largest `Σ |w|·|x|` over the outputs (the scale of a dot product's rounding error; the
/// worst-case bound of recursive summation is `γ_n = n·u/(1 − n·u)` times it, `n = 9·C`, `u =
/// 2⁻²⁴`, 1.4·10⁻⁴ for C = 256): at most 10⁻⁶, and at most 4 times the error of candle's f32
/// im2col + GEMM on the same data. (Lavin and Gray, CVPR 2016, report F(2×2, 3×3) in f32 as
/// accurate as direct convolution; the transforms' coefficients are 0, ±½ and ±1.)
#[test]
fn winograd_rounding_error_against_f64() -> Result<()> {
    for &t in WINOGRAD {
        let (ours, candle) = forward_errors(t)?;
        assert!(ours <= 1e-6 && ours <= 4.0 * candle, "{t:?}: error {ours:e} of Σ|w||x| (candle's f32: {candle:e})");
    }
    Ok(())
}

/// The forward errors of Stipple's f32 `conv2d` and of candle's f32 convolution against the
/// convolution in f64, in units of the largest `Σ |w|·|x|` over the outputs (see
/// [`winograd_rounding_error_against_f64`]).
fn forward_errors(t: Case) -> Result<(f64, f64)> {
    let x = det(&[t.b, t.c, t.h, t.w], 1, DType::F32)?;
    let w = det(&[t.o, t.c, t.k, t.k], 2, DType::F32)?;
    let exact = x.to_dtype(DType::F64)?.conv2d(&w.to_dtype(DType::F64)?, 1, 1, 1, 1)?;
    let scale = max_abs(&x.to_dtype(DType::F64)?.abs()?.conv2d(&w.to_dtype(DType::F64)?.abs()?, 1, 1, 1, 1)?)?;
    let error = |y: Tensor| -> Result<f64> { Ok(max_abs_diff(&y.to_dtype(DType::F64)?, &exact)? / scale) };
    Ok((error(conv2d(&x, &w, None, 1, 1)?)?, error(x.conv2d(&w, 1, 1, 1, 1)?)?))
}

/// A 16×16-class map with many channels, whose forward pass (only) F(2×2, 3×3) computes
/// (`WINOGRAD_FORWARD_MIN_*` in geometry.rs): as accurate as on the larger maps. The gradient
/// w.r.t. the input stays with the direct kernels (the candle comparisons above cover them).
#[test]
fn wide_small_map_forward_rounding_error_against_f64() -> Result<()> {
    let t = case(1, 640, 1280, 16, 17, 3, 1, 1);
    let (ours, candle) = forward_errors(t)?;
    assert!(ours <= 1e-6 && ours <= 4.0 * candle, "{t:?}: error {ours:e} of Σ|w||x| (candle's f32: {candle:e})");
    Ok(())
}

/// The same on maps of 64×64 pixels or more, which F(4×4, 3×3) computes: map sizes of 1, 2
/// and 3 pixels more than a multiple of the tile's 4 (partial tiles), batch 1 and 2.
const WINOGRAD_F4X4: &[Case] = &[case(1, 256, 128, 65, 67, 3, 1, 1), case(2, 128, 256, 66, 64, 3, 1, 1)];

#[test]
fn winograd_f4x4_matches_candle_f32() -> Result<()> {
    for &t in WINOGRAD_F4X4 {
        for kind in BIASES {
            check_against_candle(t, kind, DType::F32, 1e-5)?;
        }
    }
    Ok(())
}

/// The rounding error of F(4×4, 3×3) against the convolution in f64, in the units of
/// [`winograd_rounding_error_against_f64`]: at most 10⁻⁶. (Measured 7.9·10⁻⁷ and 7.1·10⁻⁷ on
/// these two cases, about ten times the error of candle's f32 im2col + GEMM on the F(2×2, 3×3)
/// cases, where F(2×2, 3×3) is within 1.3 times it: the GEMMs' rounding errors over the transformed tiles reach the
/// outputs multiplied by `Aᵀ`'s entries up to 8. With Lavin and Gray's points 0, ±1, ±2, ∞
/// instead of these, a NumPy model of the computation, tests/reference/winograd_points.py,
/// gave 2.6 times the error.)
#[test]
fn winograd_f4x4_rounding_error_against_f64() -> Result<()> {
    for &t in WINOGRAD_F4X4 {
        let x = det(&[t.b, t.c, t.h, t.w], 1, DType::F32)?;
        let w = det(&[t.o, t.c, t.k, t.k], 2, DType::F32)?;
        let exact = x.to_dtype(DType::F64)?.conv2d(&w.to_dtype(DType::F64)?, 1, 1, 1, 1)?;
        let scale = max_abs(&x.to_dtype(DType::F64)?.abs()?.conv2d(&w.to_dtype(DType::F64)?.abs()?, 1, 1, 1, 1)?)?;
        let ours = max_abs_diff(&conv2d(&x, &w, None, 1, 1)?.to_dtype(DType::F64)?, &exact)? / scale;
        assert!(ours <= 1e-6, "{t:?}: error {ours:e} of Σ|w||x|");
    }
    Ok(())
}
