//! `stipple_nn::ops::conv1d` (sums of strided GEMMs, a custom op) against candle's own
//! `Tensor::conv1d` (plus a broadcast addition of the bias) and the same convolution written
//! out in candle's basic ops: forward values and the gradients (candle's autograd through the
//! written-out convolution as reference) over a grid of shapes, strides, paddings and dilations,
//! without a bias, with a per-channel `(O)` bias and with a per-sample `(B, O)` bias, in f32
//! and f64; central finite differences in f64; non-contiguous inputs; the `Conv1d` layer.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{Conv1dConfig, VarBuilder, VarMap};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::conv1d;

#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    c: usize,
    o: usize,
    l: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
}

#[allow(clippy::too_many_arguments)]
const fn case(b: usize, c: usize, o: usize, l: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Case {
    Case { b, c, o, l, k, stride, pad, dil }
}

impl Case {
    fn cfg(&self) -> Conv1dConfig {
        Conv1dConfig { padding: self.pad, stride: self.stride, dilation: self.dil, ..Default::default() }
    }
}

/// Batches of 1, 2, 3 and 5 (with two or more threads split unevenly), channel counts that are
/// not multiples of 8, kernels 1, 2, 3 and 5, strides 1–3 with lengths that they do not
/// divide, paddings 0 to larger than the kernel's reach, dilations 1, 2, 4 and 16 (DiffWave's
/// "same" layers `k = 3, p = d`, and a dilation whose taps reach past a short input), and
/// sequences longer than one task's chunk of positions (several tasks per sample, for the
/// output and for the input gradient).
const CASES: &[Case] = &[
    case(2, 3, 4, 7, 3, 1, 1, 1),
    case(1, 1, 5, 9, 1, 1, 0, 1),
    case(3, 5, 1, 11, 1, 2, 0, 1),
    case(2, 4, 6, 10, 3, 2, 1, 1),
    case(5, 3, 7, 13, 5, 3, 2, 1),
    case(1, 6, 3, 8, 2, 1, 0, 1),
    case(2, 3, 5, 12, 3, 1, 2, 2),
    case(3, 7, 5, 20, 3, 1, 4, 4),
    case(2, 5, 10, 9, 3, 1, 16, 16),
    case(1, 4, 4, 17, 3, 2, 3, 3),
    case(2, 3, 3, 15, 5, 3, 1, 2),
    case(3, 2, 4, 5, 3, 1, 5, 1),
    case(2, 2, 3, 6, 4, 2, 3, 2),
    case(1, 3, 300, 700, 3, 1, 2, 2),
    case(2, 260, 3, 600, 3, 1, 1, 1),
    case(3, 260, 2, 650, 3, 2, 4, 4),
    case(1, 16, 32, 5000, 3, 1, 8, 8),
];

/// The bias variants of [`conv1d`].
#[derive(Debug, Clone, Copy)]
enum Bias {
    None,
    /// `(O)`, shared by the samples.
    Channel,
    /// `(B, O)`.
    Sample,
}

const BIASES: [Bias; 3] = [Bias::None, Bias::Channel, Bias::Sample];

/// The bias variable of a variant, and the same values shaped to broadcast over `(B, O, Lo)`.
fn bias_for(kind: Bias, b: usize, o: usize, seed: u64, dtype: DType) -> Result<Option<(Var, Tensor)>> {
    let shape: &[usize] = match kind {
        Bias::None => return Ok(None),
        Bias::Channel => &[o],
        Bias::Sample => &[b, o],
    };
    let v = Var::from_tensor(&det(shape, seed, dtype)?)?;
    let bcast = match kind {
        Bias::Sample => v.reshape((b, o, 1))?,
        _ => v.reshape((1, o, 1))?,
    };
    Ok(Some((v, bcast)))
}

fn plus(y: Tensor, bias: &Option<(Var, Tensor)>) -> Result<Tensor> {
    match bias {
        Some((_, bcast)) => y.broadcast_add(bcast),
        None => Ok(y),
    }
}

/// The convolution written out in candle's basic differentiable ops, one tap at a time:
/// `y = Σ_j W_j · x_pad[:, :, j·d + s·t]` (an `index_select` of the zero-padded input and a
/// broadcast matmul), plus the bias.
///
/// The gradients of candle 0.11's own `conv1d` cannot serve as the reference: its CPU kernel
/// ignores the strides of a non-contiguous kernel, and its weight gradient is a `conv1d`
/// whose kernel is the transposed `dy`, so `d/dw` comes out wrong whenever `dy` is not
/// constant (the forward pass with a contiguous kernel is right and is checked as well).
fn by_taps(x: &Tensor, w: &Tensor, t: Case) -> Result<Tensor> {
    let xp = x.pad_with_zeros(2, t.pad, t.pad)?;
    let lo = (t.l + 2 * t.pad - t.dil * (t.k - 1) - 1) / t.stride + 1;
    let mut y: Option<Tensor> = None;
    for j in 0..t.k {
        let idx: Vec<u32> = (0..lo).map(|i| (j * t.dil + i * t.stride) as u32).collect();
        let xj = xp.index_select(&Tensor::new(idx, x.device())?, 2)?; // (B, C, Lo)
        let wj = w.narrow(2, j, 1)?.squeeze(2)?; // (O, C)
        let yj = wj.broadcast_matmul(&xj)?; // (B, O, Lo)
        y = Some(match y {
            Some(y) => (y + yj)?,
            None => yj,
        });
    }
    Ok(y.expect("k ≥ 1"))
}

/// Forward of ours vs candle's `conv1d` and [`by_taps`], then `d/dx, d/dw, d/dbias` of
/// `Σ y·r` vs candle's autograd through [`by_taps`].
fn check_against_candle(t: Case, kind: Bias, dtype: DType, tol: f64) -> Result<()> {
    let x = Var::from_tensor(&det(&[t.b, t.c, t.l], 1, dtype)?)?;
    let w = Var::from_tensor(&det(&[t.o, t.c, t.k], 2, dtype)?)?;
    let bias = bias_for(kind, t.b, t.o, 13, dtype)?;
    let ours = conv1d(&x, &w, bias.as_ref().map(|(v, _)| v.as_tensor()), &t.cfg())?;
    let candle = plus(x.conv1d(&w, t.pad, t.stride, t.dil, 1)?, &bias)?;
    let reference = plus(by_taps(&x, &w, t)?, &bias)?;
    let scale = max_abs(&reference)?.max(1.0);
    for (name, r) in [("candle's conv1d", &candle), ("the sum over taps", &reference)] {
        let d = max_abs_diff(&ours, r)?;
        assert!(d < tol * scale, "{t:?}: forward differs from {name} by {d:e} (scale {scale})");
    }

    let r = det(ours.dims(), 3, dtype)?;
    let g_ours = (ours * &r)?.sum_all()?.backward()?;
    let g_ref = (reference * &r)?.sum_all()?.backward()?;
    let mut vars = vec![("x", &x), ("w", &w)];
    if let Some((v, _)) = &bias {
        vars.push(("bias", v));
    }
    for (name, v) in vars {
        let a = g_ours.get(v).unwrap_or_else(|| panic!("{t:?} {kind:?}: no gradient for {name}"));
        let b = g_ref.get(v).expect("reference gradient");
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
fn rejects_bad_shapes_and_settings() -> Result<()> {
    let x = det(&[2, 3, 8], 1, DType::F32)?;
    let w = det(&[4, 3, 3], 2, DType::F32)?;
    for shape in [&[3][..], &[2, 3], &[1, 4], &[2, 4, 1]] {
        let bias = det(shape, 3, DType::F32)?;
        assert!(conv1d(&x, &w, Some(&bias), &Conv1dConfig::default()).is_err(), "bias {shape:?} accepted");
    }
    let cfg = |stride, padding, dilation| Conv1dConfig { stride, padding, dilation, ..Default::default() };
    // Stride or dilation 0, a dilated kernel longer than the padded input, mismatched channels.
    for bad in [cfg(0, 0, 1), cfg(1, 0, 0), cfg(1, 0, 4), cfg(1, 1, 5)] {
        assert!(conv1d(&x, &w, None, &bad).is_err(), "{bad:?} accepted");
    }
    assert!(conv1d(&x, &det(&[4, 2, 3], 2, DType::F32)?, None, &Conv1dConfig::default()).is_err());
    // Reaching exactly the padded input is fine: span 1 + 2·3 = 7 ≤ 8.
    assert_eq!(conv1d(&x, &w, None, &cfg(1, 0, 3))?.dims(), [2, 4, 2]);
    Ok(())
}

#[test]
fn non_contiguous_inputs() -> Result<()> {
    // x stored as (B, L, C) and transposed; w stored as (C, O, k) and transposed.
    let x = det(&[2, 9, 5], 4, DType::F32)?.transpose(1, 2)?;
    let w = det(&[5, 3, 3], 5, DType::F32)?.transpose(0, 1)?;
    assert!(!x.is_contiguous() && !w.is_contiguous());
    let cfg = Conv1dConfig { padding: 2, dilation: 2, ..Default::default() };
    let ours = conv1d(&x, &w, None, &cfg)?;
    let reference = x.contiguous()?.conv1d(&w.contiguous()?, 2, 1, 2, 1)?;
    assert!(max_abs_diff(&ours, &reference)? < 1e-5);
    Ok(())
}

/// Groups other than 1 go to candle's convolution (same values as candle's).
#[test]
fn grouped_convolutions_use_candle() -> Result<()> {
    let x = det(&[2, 4, 9], 4, DType::F32)?;
    let w = det(&[6, 2, 3], 5, DType::F32)?;
    let cfg = Conv1dConfig { padding: 1, groups: 2, ..Default::default() };
    let ours = conv1d(&x, &w, None, &cfg)?;
    assert_eq!(max_abs_diff(&ours, &x.conv1d(&w, 1, 1, 1, 2)?)?, 0.0);
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
/// weight and bias entry, on a strided dilated padded case and a DiffWave-like "same" one,
/// with each bias variant. `L` is linear in each argument, so the difference is exact up to
/// rounding.
#[test]
fn gradients_match_finite_differences_f64() -> Result<()> {
    for t in [case(2, 3, 2, 11, 3, 2, 3, 2), case(2, 2, 3, 9, 3, 1, 4, 4)] {
        for (kind, bias_shape) in [(Bias::None, &[1][..]), (Bias::Channel, &[t.o][..]), (Bias::Sample, &[t.b, t.o][..])] {
            let has_bias = !matches!(kind, Bias::None);
            let x0 = det(&[t.b, t.c, t.l], 6, DType::F64)?;
            let w0 = det(&[t.o, t.c, t.k], 7, DType::F64)?;
            let b0 = det(bias_shape, 14, DType::F64)?;
            let y_dims = conv1d(&x0, &w0, None, &t.cfg())?.dims().to_vec();
            let r = det(&y_dims, 8, DType::F64)?;
            let loss = |args: [&Tensor; 3]| -> Result<f64> {
                let bias = has_bias.then_some(args[2]);
                (conv1d(args[0], args[1], bias, &t.cfg())? * &r)?.sum_all()?.to_scalar::<f64>()
            };
            let vars = [Var::from_tensor(&x0)?, Var::from_tensor(&w0)?, Var::from_tensor(&b0)?];
            let bias = has_bias.then_some(vars[2].as_tensor());
            let grads = (conv1d(&vars[0], &vars[1], bias, &t.cfg())? * &r)?.sum_all()?.backward()?;
            let eps = 1e-6;
            let base = [&x0, &w0, &b0];
            for (which, var) in vars.iter().enumerate().take(if has_bias { 3 } else { 2 }) {
                let analytic = grads.get(var).unwrap().flatten_all()?.to_vec1::<f64>()?;
                for (i, &a) in analytic.iter().enumerate() {
                    let numeric = (bumped(base, which, i, eps, &loss)? - bumped(base, which, i, -eps, &loss)?) / (2.0 * eps);
                    assert!((numeric - a).abs() < 1e-8, "{t:?} {kind:?}: arg {which} entry {i}: numeric {numeric} vs analytic {a}");
                }
            }
        }
    }
    Ok(())
}

/// The layer: `candle_nn::conv1d`'s parameter names and shapes, the same output as
/// `candle_nn::Conv1d` on the same parameters, and `forward_shifted` = forward + shift.
#[test]
fn layer_matches_candle_nn() -> Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let cfg = Conv1dConfig { padding: 2, dilation: 2, ..Default::default() };
    let ours = stipple_nn::conv1d::conv1d(5, 7, 3, cfg, vb.pp("conv"))?;
    let mut names: Vec<(String, Vec<usize>)> = vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.dims().to_vec())).collect();
    names.sort();
    assert_eq!(names, [("conv.bias".to_string(), vec![7]), ("conv.weight".to_string(), vec![7, 5, 3])]);
    let theirs = candle_nn::Conv1d::new(ours.weight().clone(), ours.bias().cloned(), cfg);
    let x = det(&[3, 5, 10], 9, DType::F32)?;
    let y = ours.forward(&x)?;
    assert!(max_abs_diff(&y, &theirs.forward(&x)?)? < 1e-5);
    let shift = det(&[3, 7], 10, DType::F32)?;
    let shifted = ours.forward_shifted(&x, &shift)?;
    assert!(max_abs_diff(&shifted, &y.broadcast_add(&shift.unsqueeze(2)?)?)? < 1e-5);
    let plain = stipple_nn::conv1d::conv1d_no_bias(5, 7, 3, cfg, vb.pp("plain"))?;
    assert!(plain.bias().is_none());
    assert_eq!(plain.forward(&x)?.dims(), [3, 7, 10]);
    Ok(())
}

/// `conv1d_add(x, w, bias, a)` against `conv1d(x, w, bias) + a` (checked above): values and
/// the gradients w.r.t. all four operands, with and without a bias, in f32 and f64.
#[test]
fn conv1d_add_matches_conv1d_plus_addend() -> Result<()> {
    use stipple_nn::ops::conv1d::conv1d_add;
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
        for t in [CASES[3], CASES[7], CASES[9], CASES[13]] {
            for with_bias in [false, true] {
                let x = Var::from_tensor(&det(&[t.b, t.c, t.l], 1, dtype)?)?;
                let w = Var::from_tensor(&det(&[t.o, t.c, t.k], 2, dtype)?)?;
                let bias = Var::from_tensor(&det(&[t.o], 3, dtype)?)?;
                let bias = with_bias.then_some(bias.as_tensor());
                let plain = conv1d(&x, &w, bias, &t.cfg())?;
                let a = Var::from_tensor(&det(plain.dims(), 4, dtype)?)?;
                let ours = conv1d_add(&x, &w, bias, &a, &t.cfg())?;
                let reference = (plain + a.as_tensor())?;
                let scale = max_abs(&reference)?.max(1.0);
                assert!(max_abs_diff(&ours, &reference)? < tol * scale, "{t:?}: forward");
                let r = det(ours.dims(), 5, dtype)?;
                let g_ours = (ours * &r)?.sum_all()?.backward()?;
                let g_ref = (reference * &r)?.sum_all()?.backward()?;
                let mut vars = vec![("x", x.as_tensor()), ("w", w.as_tensor()), ("addend", a.as_tensor())];
                vars.extend(bias.map(|b| ("bias", b)));
                for (name, v) in vars {
                    let (ga, gb) = (g_ours.get(v).expect("our gradient"), g_ref.get(v).expect("reference gradient"));
                    let d = max_abs_diff(ga, gb)?;
                    assert!(d < tol * max_abs(gb)?.max(1.0), "{t:?} bias {with_bias}: d/d{name} differs by {d:e}");
                }
            }
        }
    }
    let (x, w) = (det(&[2, 3, 8], 1, DType::F32)?, det(&[4, 3, 3], 2, DType::F32)?);
    assert!(conv1d_add(&x, &w, None, &det(&[2, 4, 7], 3, DType::F32)?, &Conv1dConfig::default()).is_err(), "addend of the wrong length");
    let grouped = Conv1dConfig { groups: 3, ..Default::default() };
    assert!(conv1d_add(&det(&[2, 3, 8], 1, DType::F32)?, &det(&[3, 1, 1], 2, DType::F32)?, None, &det(&[2, 3, 8], 3, DType::F32)?, &grouped).is_err());
    Ok(())
}

/// The same inputs give the same bits on one thread and on several: every output and gradient
/// is summed in an order fixed by the shapes alone (so that training repeats itself on another
/// machine), in f32 and f64.
#[test]
fn results_do_not_depend_on_the_threads() -> Result<()> {
    let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool");
    let (one, three) = (pool(1), pool(3));
    for dtype in [DType::F32, DType::F64] {
        for &t in CASES {
            let run = || -> Result<Vec<f64>> {
                let x = Var::from_tensor(&det(&[t.b, t.c, t.l], 1, dtype)?)?;
                let w = Var::from_tensor(&det(&[t.o, t.c, t.k], 2, dtype)?)?;
                let y = conv1d(&x, &w, None, &t.cfg())?;
                let g = (&y * &det(y.dims(), 3, dtype)?)?.sum_all()?.backward()?;
                let parts = [y.flatten_all()?, g.get(&x).expect("dx").flatten_all()?, g.get(&w).expect("dw").flatten_all()?];
                Tensor::cat(&parts, 0)?.to_dtype(DType::F64)?.to_vec1()
            };
            let (a, b) = (one.install(run)?, three.install(run)?);
            assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()), "{dtype:?} {t:?}: differs between one and three threads");
        }
    }
    Ok(())
}
