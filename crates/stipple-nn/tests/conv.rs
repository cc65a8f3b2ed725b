//! `stipple_nn::ops::conv2d` (im2col + GEMM custom op) against candle's own `Tensor::conv2d`:
//! forward values and both gradients (candle's autograd as reference) on awkward shapes, a
//! finite-difference check in f64, non-contiguous inputs, and the `Conv2d` layer's parameters.

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

/// Non-square images, channel counts that are not multiples of 8, batch 1 and 3 (with two or
/// more threads batch 1 parallelises inside the GEMM, batch 3 over samples), 1×1 and 3×3
/// kernels, stride 1 and 2, padding 0 and 1.
const CASES: &[Case] = &[
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
];

/// Forward of ours vs candle's, then `d/dx, d/dw` of `Σ y·r` vs candle's autograd.
fn check_against_candle(t: Case, dtype: DType, tol: f64) -> Result<()> {
    let x = Var::from_tensor(&det(&[t.b, t.c, t.h, t.w], 1, dtype)?)?;
    let w = Var::from_tensor(&det(&[t.o, t.c, t.k, t.k], 2, dtype)?)?;
    let ours = conv2d(&x, &w, t.stride, t.pad)?;
    let reference = x.conv2d(&w, t.pad, t.stride, 1, 1)?;
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
    let reference_for_grad = xr.conv2d(&w, 0, s, 1, 1)?;
    assert!(max_abs_diff(&reference_for_grad, &reference)? < tol * scale);

    let r = det(ours.dims(), 3, dtype)?;
    let g_ours = (ours * &r)?.sum_all()?.backward()?;
    let g_ref = (reference_for_grad * &r)?.sum_all()?.backward()?;
    for (name, v) in [("x", &x), ("w", &w)] {
        let a = g_ours.get(v).unwrap_or_else(|| panic!("{t:?}: no gradient for {name}"));
        let b = g_ref.get(v).expect("candle gradient");
        let d = max_abs_diff(a, b)?;
        let scale = max_abs(b)?.max(1.0);
        assert!(d < tol * scale, "{t:?}: d/d{name} differs by {d:e} (scale {scale})");
    }
    Ok(())
}

#[test]
fn forward_and_gradients_match_candle_f32() -> Result<()> {
    for &t in CASES {
        check_against_candle(t, DType::F32, 1e-5)?;
    }
    Ok(())
}

#[test]
fn forward_and_gradients_match_candle_f64() -> Result<()> {
    for &t in CASES {
        check_against_candle(t, DType::F64, 1e-12)?;
    }
    Ok(())
}

#[test]
fn non_contiguous_inputs() -> Result<()> {
    // x stored as (B, C, W, H) and transposed; w stored as (C, O, k, k) and transposed.
    let x = det(&[2, 5, 6, 7], 4, DType::F32)?.transpose(2, 3)?;
    let w = det(&[5, 3, 3, 3], 5, DType::F32)?.transpose(0, 1)?;
    assert!(!x.is_contiguous() && !w.is_contiguous());
    let ours = conv2d(&x, &w, 1, 1)?;
    let reference = x.contiguous()?.conv2d(&w.contiguous()?, 1, 1, 1, 1)?;
    assert!(max_abs_diff(&ours, &reference)? < 1e-5);
    Ok(())
}

/// Central differences of `L = Σ y·r` in f64 against the analytic gradients, for every input
/// and weight entry of a tiny stride-2, padded case.
#[test]
fn gradients_match_finite_differences_f64() -> Result<()> {
    let (stride, pad) = (2, 1);
    let x0 = det(&[2, 3, 5, 4], 6, DType::F64)?;
    let w0 = det(&[2, 3, 3, 3], 7, DType::F64)?;
    let r = det(&[2, 2, 3, 2], 8, DType::F64)?;
    let loss = |x: &Tensor, w: &Tensor| -> Result<f64> { (conv2d(x, w, stride, pad)? * &r)?.sum_all()?.to_scalar::<f64>() };

    let x = Var::from_tensor(&x0)?;
    let w = Var::from_tensor(&w0)?;
    let grads = (conv2d(&x, &w, stride, pad)? * &r)?.sum_all()?.backward()?;
    let eps = 1e-6;
    for (which, v0) in [(0, &x0), (1, &w0)] {
        let analytic = grads.get(if which == 0 { &x } else { &w }).unwrap().flatten_all()?.to_vec1::<f64>()?;
        let base = v0.flatten_all()?.to_vec1::<f64>()?;
        for i in 0..base.len() {
            let bump = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let t = Tensor::from_vec(v, v0.dims(), &Device::Cpu)?;
                if which == 0 { loss(&t, &w0) } else { loss(&x0, &t) }
            };
            let numeric = (bump(eps)? - bump(-eps)?) / (2.0 * eps);
            assert!(
                (numeric - analytic[i]).abs() < 1e-7,
                "arg {which} entry {i}: numeric {numeric} vs analytic {}",
                analytic[i]
            );
        }
    }
    Ok(())
}

/// Same test in f32 with a step and tolerance sized for single precision.
#[test]
fn gradients_match_finite_differences_f32() -> Result<()> {
    let x0 = det(&[1, 2, 4, 5], 9, DType::F32)?;
    let w0 = det(&[3, 2, 3, 3], 10, DType::F32)?;
    let r = det(&[1, 3, 4, 5], 11, DType::F32)?;
    let loss = |x: &Tensor, w: &Tensor| -> Result<f64> {
        (conv2d(x, w, 1, 1)?.to_dtype(DType::F64)? * r.to_dtype(DType::F64)?)?.sum_all()?.to_scalar::<f64>()
    };
    let w = Var::from_tensor(&w0)?;
    let grads = (conv2d(&x0, &w, 1, 1)? * &r)?.sum_all()?.backward()?;
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
    Ok(())
}
